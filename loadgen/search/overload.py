"""Overload: offer load past the server's capacity in steps (1x, 1.5x, 2x, 3x) and measure how it refuses.

A server that is overloaded should keep serving what it can at full speed (goodput near capacity), refuse the
rest at once and cheaply (503 / 429 with Retry-After, in milliseconds), keep its queue within its cap and its
memory flat. No load tester reports this; `inferload overload` does, per step: goodput (successes/s), goodput
under the SLO (successes within the bound, per second), the rate of each refusal and error status, the time to a
refusal (the server's own Server-Timing and what the client saw), the server's queue depth and admitted requests
against their caps and its resident memory, both sampled from its Prometheus metrics while the step runs.

Like the searches, the load test is the injected `run(scenario) -> result`; the server's metrics come from an
injected `fetch(url) -> text`, so this module is tested without sockets.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.results import analysis
from loadgen.results.io import write_json
from loadgen.results.recorded import decode_histogram
from loadgen.results.schema import SCHEMA_VERSION
from loadgen.search.peaksearch import capacity_probe

DEFAULT_STEPS = (1.0, 1.5, 2.0, 3.0)
RunFn = Callable[[Any], dict]
Fetch = Callable[[str], str]
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)", re.M)


def parse_metrics(text: str, model: str) -> dict[str, float]:
    """The few series the overload report needs, for one model: queue depth, admitted (in-flight) requests, the
    admission limit, and the process's resident memory (bytes)."""
    want = {
        "inferload_queue_depth": "queue_depth",
        "inferload_inflight_requests": "inflight",
        "inferload_admission_limit": "admission_limit",
        "process_resident_memory_bytes": "rss_bytes",
    }
    out: dict[str, float] = {}
    for m in _SAMPLE.finditer(text):
        key = want.get(m.group("name"))
        if key is None:
            continue
        labels = m.group("labels") or ""
        if key != "rss_bytes" and f'model="{model}"' not in labels:
            continue
        try:
            out[key] = float(m.group("value"))
        except ValueError:
            continue
    return out


def urllib_fetch(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2.0) as r:
        return r.read().decode("utf-8", "replace")


class MetricsWatcher:
    """Samples the server's /metrics every `interval_s` while a step runs (a thread; a greenlet under gevent)."""

    def __init__(self, target: str, model: str, fetch: Fetch = urllib_fetch, interval_s: float = 0.25) -> None:
        self.url = target.rstrip("/") + "/metrics"
        self.model, self.fetch, self.interval_s = model, fetch, interval_s
        self.samples: list[dict[str, float]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        try:
            s = parse_metrics(self.fetch(self.url), self.model)
        except Exception:
            self.errors += 1
            return
        s["t"] = time.monotonic()
        self.samples.append(s)

    def __enter__(self) -> MetricsWatcher:
        self.sample()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                self.sample()

        self._thread = threading.Thread(target=loop, name="metrics-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()

    def summary(self) -> dict[str, float | int | None]:
        def col(k: str) -> list[float]:
            return [s[k] for s in self.samples if k in s]

        rss = col("rss_bytes")
        mb = 1024 * 1024
        return {
            "samples": len(self.samples),
            "scrape_errors": self.errors,
            "queue_depth_max": max(col("queue_depth"), default=None),
            "inflight_max": max(col("inflight"), default=None),
            "admission_limit": max(col("admission_limit"), default=None),
            "rss_start_mb": round(rss[0] / mb, 1) if rss else None,
            "rss_max_mb": round(max(rss) / mb, 1) if rss else None,
            "rss_growth_mb": round((max(rss) - rss[0]) / mb, 1) if rss else None,
        }


def queue_cap(result: dict) -> int | None:
    """max_queue_size from the server's Triton model configuration (as the generator fetched it)."""
    cfg = (result.get("server") or {}).get("model_config") or {}
    pol = (cfg.get("dynamic_batching") or {}).get("default_queue_policy") or {}
    v = pol.get("max_queue_size")
    return int(v) if v else None


def step_row(
    result: dict, multiple: float, capacity_rps: float, slo_ms: float | None, watched: dict, file: str
) -> dict:
    """One step of the table (every figure with its unit in the key)."""
    T = float(result["duration_s"])
    ok = int(result["completed"])
    h = decode_histogram(result["histogram_b64"]) if result.get("histogram_b64") else None
    within = ok - analysis.count_over(h, slo_ms * 1000.0) if slo_ms is not None and h is not None else None
    errors = result.get("errors") or {}
    rates = {k: round(v / T, 3) for k, v in sorted(errors.items())}
    ref = result.get("refusal_ms") or {}
    return {
        "multiple": multiple,
        "offered_rps": result.get("target_rate_rps"),
        "goodput_rps": round(ok / T, 3),
        "goodput_share": round(ok / T / capacity_rps, 4) if capacity_rps else None,
        "goodput_slo_rps": None if within is None else round(within / T, 3),
        "error_rps": rates,
        "refused_rps": round(sum(v for k, v in errors.items() if k in ("429", "503")) / T, 3),
        "timeout_rps": round(errors.get("504", 0) / T, 3),
        "refusal_server_ms": (ref.get("server") or {}),
        "refusal_client_ms": (ref.get("client") or {}),
        "p50_ms": (result.get("latency_ms") or {}).get("p50"),
        "p99_ms": (result.get("latency_ms") or {}).get("p99"),
        "queue_cap": queue_cap(result),
        **watched,
        "valid": bool(result.get("valid")),
        "invalid_reasons": result.get("invalid_reasons") or [],
        "file": file,
    }


def run_overload(
    base: Any,
    run: RunFn,
    out_dir: Path,
    *,
    steps: tuple[float, ...] = DEFAULT_STEPS,
    capacity_rps: float | None = None,
    slo_ms: float | None = None,
    probe_users: int = 8,
    capacity_s: float = 5.0,
    fetch: Fetch = urllib_fetch,
    say: Callable[[str], None] = lambda _m: None,
    on_step: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    capacity = (
        {"rps": capacity_rps, "source": "given"}
        if capacity_rps
        else capacity_probe(base, run, out_dir, probe_users, capacity_s, say)
    )
    cap = float(capacity.get("rps") or 0.0)
    if cap <= 0:
        raise ValueError("the capacity probe completed nothing: is the server up and the model right?")
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "overload",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": base.model_dump(mode="json"),
        "capacity": capacity,
        "capacity_rps": cap,
        "steps_requested": list(steps),
        "slo_ms": slo_ms,
        "steps": [],
        "method": (
            "open loop (Poisson) at each multiple of the closed-loop capacity; goodput = successes/s; "
            "queue depth, admitted requests and resident memory sampled from the server's /metrics every "
            "0.25 s during the step"
        ),
    }
    for i, mult in enumerate(steps):
        rate = round(mult * cap, 3)
        say(f"step {i + 1}/{len(steps)}: {mult:g}x capacity = {rate:g} req/s")
        sc = base.model_copy(update={"mode": "open", "rate_rps": rate, "users": None, "slo_p99_ms": slo_ms})
        with MetricsWatcher(base.target, base.model, fetch) as w:
            res = run(sc)
        fname = f"step-{i:02d}-{mult:g}x.json"
        write_json(out_dir / fname, res)
        row = step_row(res, mult, cap, slo_ms, w.summary(), fname)
        doc["steps"].append(row)
        write_json(out_dir / "overload.json", doc)
        if on_step is not None:
            on_step(row)
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(out_dir / "overload.json", doc)
    return doc
