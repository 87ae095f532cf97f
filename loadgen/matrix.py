"""The batch × instances matrix (AIXPRT's question, asked of the served model): for each server configuration
(max_batch_size × instance count × max_queue_delay_ms) start a local server, measure, stop it.

Per configuration, three measurements (each a full load test with warm-up and validity):
  1. low-load latency: closed loop, 1 user, no think time (MLPerf SingleStream-like) — the latency tax a
     configuration puts on a lone request (e.g. max_queue_delay_ms);
  2. max throughput: closed loop with enough users to fill every batch on every instance twice over
     (users = max(4, ceil(2 × max_batch_size × instances / items_per_request)), capped) — items/s achieved;
  3. peak under the SLO: open-loop peak search (loadgen.peak) starting at half the closed-loop rate.

The server runs as a subprocess on 127.0.0.1 and a free port, configured only through the environment
(INFERLOAD_MODEL_NAMES, INFERLOAD_OVERRIDES — see server/settings.py) by loadgen.serverproc.ServerProcess,
and is always stopped.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Callable

from loadgen.analysis import generator_limited
from loadgen.peak import find_peak
from loadgen.sweep import percentile_of, summarize_point, write_json

RunFn = Callable[[Any], dict]
MAX_THROUGHPUT_USERS_CAP = 64


def matrix_configs(batch_sizes: list[int], instances: list[int], delays_ms: list[float]) -> list[dict]:
    return [{"max_batch_size": b, "instances": n, "max_queue_delay_ms": d}
            for n, b, d in itertools.product(instances, batch_sizes, delays_ms)]


def config_label(cfg: dict) -> str:
    return f"b{cfg['max_batch_size']}·i{cfg['instances']}·d{cfg['max_queue_delay_ms']:g}ms"


def overrides_for(cfg: dict) -> dict:
    """Model-config overrides (merged over config.toml by the server) for one matrix cell."""
    return {
        "max_batch_size": int(cfg["max_batch_size"]),
        "batching": {"max_queue_delay_ms": float(cfg["max_queue_delay_ms"]), "preferred_batch_sizes": []},
        "instances": {"count": int(cfg["instances"])},
    }


def min_valid_rate(duration_s: float, percentile: float = 99) -> float:
    """Lowest open-loop rate whose run can be VALID: the analysis gates on p99 (and the chosen percentile)
    needing >= 10 samples beyond it, so rate x duration must reach that many successes."""
    try:
        from loadgen.analysis import required_samples
    except ImportError:  # pragma: no cover - engine not installed
        def required_samples(p: float) -> int:
            return math.ceil(round(10 / (1 - p / 100), 6))
    need = max(required_samples(99.0), required_samples(float(percentile)))
    return need / float(duration_s)


def throughput_users(cfg: dict, items_per_request: int = 1, cap: int = MAX_THROUGHPUT_USERS_CAP) -> int:
    need = math.ceil(2 * cfg["max_batch_size"] * cfg["instances"] / max(1, items_per_request))
    return int(min(cap, max(4, need)))


def measure_config(
    base_scenario: Any,
    run: RunFn,
    cfg: dict,
    target: str,
    out_dir: Path,
    *,
    slo_ms: float,
    percentile: float = 99,
    precision: float = 0.1,
    max_probes: int = 8,
    low_load: bool = True,
    on_event: Callable[[str], None] | None = None,
) -> dict:
    """The three measurements of one cell (see module docstring); writes each run's result JSON."""
    say = on_event or (lambda _m: None)
    label = config_label(cfg)
    cell_dir = Path(out_dir) / label.replace("·", "_")
    items_per_req = int(getattr(base_scenario, "batch", 1) or 1)
    base = base_scenario.model_copy(update={"target": target})
    row: dict[str, Any] = {**cfg, "label": label, "dir": cell_dir.name}

    def one(name: str, update: dict) -> dict:
        res = run(base.model_copy(update=update))
        write_json(cell_dir / f"{name}.json", res)
        return res

    if low_load:
        say(f"{label}: low-load latency (closed loop, 1 user)")
        r = one("low-load", {"mode": "closed", "users": 1, "rate_rps": None, "think_time_ms": 0})
        row["low_load"] = summarize_point(r, f"{cell_dir.name}/low-load.json")

    users = throughput_users(cfg, items_per_req)
    say(f"{label}: max throughput (closed loop, {users} users)")
    r = one("max-throughput", {"mode": "closed", "users": users, "rate_rps": None, "think_time_ms": 0})
    mt = summarize_point(r, f"{cell_dir.name}/max-throughput.json")
    row["max_throughput"] = mt
    row["max_throughput_users"] = users
    row["max_items_per_s"] = mt.get("items_per_s") or (mt.get("achieved_rps") or 0) * items_per_req

    probe_rows: list[dict] = []

    def measure(rate: float) -> tuple[bool, dict]:
        i = len(probe_rows)
        say(f"{label}: peak probe {i + 1} at {rate:.1f} req/s")
        res = one(f"probe-{i:03d}", {"mode": "open", "rate_rps": rate, "users": None})
        if generator_limited(res):  # says nothing about the server: measure once more
            say(f"{label}: probe {i + 1} INCONCLUSIVE (the generator fell short); measuring again")
            res = one(f"probe-{i:03d}-retry", {"mode": "open", "rate_rps": rate, "users": None,
                                               "seed": base.seed + 1})
            name = f"probe-{i:03d}-retry"
        else:
            name = f"probe-{i:03d}"
        pr = summarize_point(res, f"{cell_dir.name}/{name}.json", i)
        probe_rows.append(pr)
        return probe_passes(pr, slo_ms, percentile)

    floor = min_valid_rate(base.duration_s, percentile)
    start = max(1.0, floor, 0.5 * (mt.get("achieved_rps") or 2.0))
    if floor > (mt.get("achieved_rps") or 0):
        say(f"{label}: note: a VALID run at {base.duration_s:g}s needs >= {floor:.0f} req/s (sample count), above "
            f"the closed-loop max; run longer (--duration) for a peak")
    peak = find_peak(measure, start_rps=start, precision=precision, growth=1.5, max_probes=max_probes,
                     min_rps=min(floor, start) if floor > 0 else None)
    row["peak"] = peak.to_dict()  # each probe's info = its summary row + the pass/fail reason
    row["peak_rps"] = peak.peak_rps
    row["peak_items_per_s"] = None if peak.peak_rps is None else peak.peak_rps * items_per_req
    at_peak = next((pr for pr in probe_rows if peak.peak_rps is not None and pr["offered_rps"] == peak.peak_rps), None)
    row["p99_at_peak_ms"] = None if at_peak is None else at_peak.get("p99_ms")
    return row


def probe_passes(row: dict, slo_ms: float, percentile: float = 99) -> tuple[bool, dict]:
    """A probe passes on a VALID run whose chosen percentile meets the SLO."""
    lat = percentile_of(row, percentile)
    info = dict(row)
    if not row.get("valid"):
        info["reason"] = "INVALID run: " + "; ".join(row.get("invalid_reasons") or ["no reason given"])
        return False, info
    if lat is None:
        info["reason"] = f"no p{percentile:g} measured"
        return False, info
    if lat > slo_ms:
        info["reason"] = f"p{percentile:g} {lat:.1f} ms > SLO {slo_ms:g} ms"
        return False, info
    info["reason"] = f"p{percentile:g} {lat:.1f} ms <= SLO {slo_ms:g} ms"
    return True, info


def choose_best(rows: list[dict]) -> dict:
    """Best cell for latency at low load, for peak under the SLO, and for throughput (labels or None)."""
    ok = [r for r in rows if not r.get("error")]

    def key_low(r: dict) -> float:
        ll = r.get("low_load") or {}
        return ll.get("p99_ms") if ll.get("valid") and ll.get("p99_ms") is not None else math.inf

    best: dict[str, Any] = {"latency": None, "peak": None, "throughput": None}
    cands = [r for r in ok if key_low(r) < math.inf]
    if cands:
        best["latency"] = min(cands, key=key_low)["label"]
    cands = [r for r in ok if r.get("peak_rps")]
    if cands:
        best["peak"] = max(cands, key=lambda r: (r["peak_rps"], -(r.get("p99_at_peak_ms") or 0)))["label"]
    cands = [r for r in ok if r.get("max_items_per_s")]
    if cands:
        best["throughput"] = max(cands, key=lambda r: r["max_items_per_s"])["label"]
    return best
