"""The batch × instances matrix (AIXPRT's question, asked of the served model): for each server configuration
(max_batch_size × instance count × max_queue_delay_ms) start a local server, measure, stop it.

Per configuration, three measurements (each a full load test with warm-up and validity):
  1. low-load latency: closed loop, 1 user, no think time (MLPerf SingleStream-like) — the latency tax a
     configuration puts on a lone request (e.g. max_queue_delay_ms);
  2. max throughput: closed loop with enough users to fill every batch on every instance twice over
     (users = max(4, ceil(2 × max_batch_size × instances / items_per_request)), capped) — items/s achieved;
  3. peak under the SLO: the open-loop peak search of `inferload peak` (loadgen.search.peaksearch: sized probes, retries,
     bracket / bisect / confirm), with the closed-loop rate of (2) as its capacity.

The server runs as a subprocess on 127.0.0.1 and a free port, configured only through the environment
(INFERLOAD_MODEL_NAMES, INFERLOAD_OVERRIDES — see server/settings.py) by loadgen.baseline.serverproc.ServerProcess,
and is always stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.results.io import write_json
from loadgen.results.points import summarize_point
from loadgen.results.schema import SCHEMA_VERSION
from loadgen.search.peaksearch import PeakOptions, run_peak_search
from loadgen.search.sizing import sizing_for

RunFn = Callable[[Any], dict]
MAX_THROUGHPUT_USERS_CAP = 64


def matrix_configs(
    batch_sizes: list[int], instances: list[int], delays_ms: list[float], providers: list[str] | None = None
) -> list[dict]:
    """Every cell; with `providers` (ONNX Runtime execution providers: cpu, openvino, ...) each cell names one."""
    if not providers:
        return [
            {"max_batch_size": b, "instances": n, "max_queue_delay_ms": d}
            for n, b, d in itertools.product(instances, batch_sizes, delays_ms)
        ]
    return [
        {"max_batch_size": b, "instances": n, "max_queue_delay_ms": d, "provider": v}
        for v, n, b, d in itertools.product(providers, instances, batch_sizes, delays_ms)
    ]


def config_label(cfg: dict) -> str:
    prov = cfg.get("provider") or "cpu"
    return f"b{cfg['max_batch_size']}·i{cfg['instances']}·d{cfg['max_queue_delay_ms']:g}ms" + (
        "" if prov == "cpu" else f"·{prov}"
    )


def overrides_for(cfg: dict) -> dict:
    """Model-config overrides (merged over config.toml by the server) for one matrix cell."""
    inst: dict[str, Any] = {"count": int(cfg["instances"])}
    if cfg.get("provider"):
        inst["provider"] = cfg["provider"]
    return {
        "max_batch_size": int(cfg["max_batch_size"]),
        "batching": {"max_queue_delay_ms": float(cfg["max_queue_delay_ms"]), "preferred_batch_sizes": []},
        "instances": inst,
    }


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
    max_probes: int = 10,
    confirm: int = 3,
    max_probe_s: float = 60.0,
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

    cap = mt.get("achieved_rps") if mt.get("valid") else None
    opts = PeakOptions(
        slo_ms=slo_ms,
        percentile=percentile,
        precision=precision,
        max_probes=max_probes,
        confirm=confirm,
        max_probe_s=max_probe_s,
        capacity_rps=cap or None,
    )
    if cap is None:
        say(f"{label}: the max-throughput run was INVALID; the peak search probes capacity itself")
    doc = run_peak_search(base, run, cell_dir / "peak", opts, say=lambda m: say(f"{label}: {m}"))
    row["peak"] = doc
    row["peak_rps"] = doc["peak_rps"]
    row["peak_items_per_s"] = None if doc["peak_rps"] is None else doc["peak_rps"] * items_per_req
    spread = (doc.get("confirmation") or {}).get("percentile_ms") or {}
    row["p99_at_peak_ms"] = spread.get("median")  # over the runs at the peak (a majority of them passed)
    return row


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


NOTES = [
    "low load = closed loop, 1 user (MLPerf SingleStream-like)",
    "max throughput = closed loop with users = max(4, 2 x max_batch_size x instances / items per request), "
    "capped at 64: enough to fill every batch on every instance",
    "peak = the open-loop peak search of `inferload peak` (probes sized to a confident p99 verdict, retried "
    "when the generator fell short; bracket x1.25 from 60% of the closed-loop rate, bisect, confirm by "
    "majority of 3 runs)",
]

Serve = Callable[[dict, Path], AbstractContextManager[Any]]
"""serve(cfg, log_path) -> a context manager yielding a started server with `.url` (ServerProcess in the CLI)."""


@dataclass(frozen=True)
class MatrixOptions:
    slo_ms: float
    percentile: float = 99.0
    precision: float = 0.1
    max_probes: int = 10
    confirm: int = 3
    max_probe_s: float = 60.0
    low_load: bool = True
    target_rps: float | None = None
    headroom: float = 0.2


def new_matrix_doc(
    base_scenario: Any,
    model: str,
    models_dir: str,
    opts: MatrixOptions,
    *,
    baseline: dict | None,
    baseline_note: str | None,
    machine: dict,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "matrix",
        "model": model,
        "models_dir": models_dir,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "slo_ms": opts.slo_ms,
        "percentile": opts.percentile,
        "precision": opts.precision,
        "scenario": base_scenario.model_dump(mode="json"),
        "configs": [],
        "best": {},
        "baseline": baseline,
        "notes": list(NOTES),
        "machine": machine,
    }
    if baseline_note:
        doc["baseline_note"] = baseline_note
    return doc


def raw_items_per_s(baseline: dict | None, cfg: dict) -> float | None:
    raw = next(
        (
            r
            for r in (baseline or {}).get("results") or []
            if r.get("batch_size") == cfg["max_batch_size"]
            and r.get("instances") == cfg["instances"]
            and (r.get("provider") or "cpu") == (cfg.get("provider") or "cpu")
        ),
        None,
    )
    return raw.get("throughput_items_per_s") if raw else None


def run_matrix(
    doc: dict[str, Any],
    base_scenario: Any,
    run: RunFn,
    configs: list[dict],
    serve: Serve,
    out_dir: Path,
    opts: MatrixOptions,
    on_event: Callable[[str], None] | None = None,
    on_config: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Measure every configuration on its own server (one bad configuration never loses the others); rewrite
    matrix.json after each; then choose the best cells and size for `opts.target_rps`."""
    say = on_event or (lambda _m: None)
    for i, cfg in enumerate(configs):
        label = config_label(cfg)
        if on_config is not None:
            on_config(i, label)
        if base_scenario.batch > cfg["max_batch_size"]:
            doc["configs"].append({**cfg, "label": label, "error": f"--batch {base_scenario.batch} > max_batch_size"})
            continue
        log = out_dir / f"server-{label.replace('·', '_')}.log"
        try:
            with serve(cfg, log) as srv:
                on, target = on_server(base_scenario, srv)
                row = measure_config(
                    on,
                    run,
                    cfg,
                    target,
                    out_dir,
                    slo_ms=opts.slo_ms,
                    percentile=opts.percentile,
                    precision=opts.precision,
                    max_probes=opts.max_probes,
                    confirm=opts.confirm,
                    max_probe_s=opts.max_probe_s,
                    low_load=opts.low_load,
                    on_event=say,
                )
        except Exception as e:
            row = {**cfg, "label": label, "error": f"{type(e).__name__}: {e}", "server_log": log.name}
            say(f"{label}: {row['error']}")
        row["raw_items_per_s"] = raw_items_per_s(doc.get("baseline"), cfg)
        doc["configs"].append(row)
        doc["best"] = choose_best(doc["configs"])
        write_json(out_dir / "matrix.json", doc)
    doc["best"] = choose_best(doc["configs"])
    best_peak = next((r for r in doc["configs"] if r.get("label") == doc["best"].get("peak")), None) or {}
    if opts.target_rps is not None:
        curve = [p["info"] for p in (best_peak.get("peak") or {}).get("probes") or []]
        sizing = sizing_for(opts.target_rps, opts.headroom, best_peak.get("peak_rps"), curve, opts.slo_ms)
        if sizing:
            sizing["configuration"] = best_peak.get("label")
        doc["sizing"] = sizing
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(out_dir / "matrix.json", doc)
    return doc


def on_server(base: Any, srv: Any) -> tuple[Any, str]:
    """(scenario, target) of runs on a started server: its REST URL, or with protocol grpc its gRPC address (the
    server's metrics are still read from its REST port's /metrics)."""
    if getattr(base, "protocol", "oip") == "grpc":
        return base.model_copy(update={"server_metrics": f"{srv.url}/metrics"}), f"grpc://{srv.grpc_target}"
    return base, srv.url


def no_server(url: str = "http://127.0.0.1:1") -> Serve:
    """A `serve` for simulations: nothing is started, runs go to `url`."""

    class _S:
        pass

    def serve(_cfg: dict, _log: Path) -> AbstractContextManager[Any]:
        s = _S()
        s.url = url  # type: ignore[attr-defined]
        return contextlib.nullcontext(s)

    return serve
