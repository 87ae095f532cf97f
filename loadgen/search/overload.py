"""Overload: offer load past the server's capacity in steps (1x, 1.5x, 2x, 3x) and measure how it refuses.

A server that is overloaded should keep serving what it can at full speed (goodput near capacity), refuse the
rest at once and cheaply (503 / 429 with Retry-After, in milliseconds), keep its queue within its cap and its
memory flat. No load tester reports this; `inferload overload` does, per step: goodput (successes/s), goodput
under the SLO (successes within the bound, per second), the rate of each refusal and error status, the time to a
refusal (the server's own Server-Timing and what the client saw), the server's queue depth and admitted requests
against their caps and its resident memory, both sampled from its Prometheus metrics while the step runs.

Any server: the metrics are read through loadgen.results.server_metrics' adapters (inferload, Triton, MLServer, KServe,
generic), from the scenario's `server_metrics` URL (default: target + /metrics) with the target's headers and TLS.
What a server does not export (Triton has no admission limit or process memory, MLServer no queue time) is said per
step and for the document (`server_metrics.unavailable` / `notes`), never shown as zero. Each step also carries the
server's own window averages (queue and compute ms per request, realised batch size) from counter deltas.

Like the searches, the load test is the injected `run(scenario) -> result`; the server's metrics come from an
injected `fetch(url) -> text`, so this module is tested without sockets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.engine import metrics_scrape
from loadgen.results import analysis
from loadgen.results import server_metrics as SM
from loadgen.results.io import write_json
from loadgen.results.promtext import Snapshot, parse
from loadgen.results.recorded import decode_histogram
from loadgen.results.schema import SCHEMA_VERSION
from loadgen.search.peaksearch import capacity_probe

DEFAULT_STEPS = (1.0, 1.5, 2.0, 3.0)
RunFn = Callable[[Any], dict]
Fetch = Callable[[str], str]
WATCHED = ("queue_depth", "inflight", "admission_limit", "rss_mb")
"""What the step table shows from the server's metrics (the rest of `server_metrics` is in each step's block)."""


def parse_metrics(text: str, model: str, family: str | None = None) -> dict[str, float]:
    """The instantaneous series the overload report needs, for one model, from any server family: queue depth,
    admitted (in-flight) requests, the admission limit and the process's resident memory (bytes), those exported."""
    return SM.gauges(parse(text), model, family)


def urllib_fetch(url: str) -> str:
    """GET a metrics page (no headers, system TLS); raises metrics_scrape.ScrapeError with a readable reason."""
    return metrics_scrape.fetch_text(url)


class MetricsWatcher:
    """Samples the server's metrics every `interval_s` while a step runs (a thread; a greenlet under gevent).

    `url` defaults to target + /metrics; without an injected `fetch`, pages are read with `headers` and `ssl_context`
    (the target's). `family` forces an adapter; by default the first scrape that shows one decides."""

    def __init__(
        self,
        target: str,
        model: str,
        fetch: Fetch | None = None,
        interval_s: float = 0.25,
        *,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        ssl_context: Any = None,
        family: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url or metrics_scrape.default_metrics_url(target)
        self.model, self.interval_s, self.clock = model, interval_s, clock
        self.fetch: Fetch = fetch if fetch is not None else metrics_scrape.make_fetch(headers, ssl_context)
        self.family, self._forced = family, family is not None
        self.samples: list[dict[str, float]] = []
        self.errors = 0
        self.last_error: str | None = None
        self.first: Snapshot | None = None
        self.last: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        try:
            snap = parse(self.fetch(self.url), t_s=self.clock())
        except Exception as e:
            self.errors += 1
            self.last_error = str(e) or type(e).__name__
            return
        if not snap.by_name:
            self.errors += 1
            self.last_error = f"{self.url} answered without any Prometheus sample (is it the metrics URL?)"
            return
        if not self._forced and self.family in (None, "generic"):
            self.family = SM.detect_family(snap)
        s = SM.gauges(snap, self.model, self.family)
        s["t"] = snap.t_s if snap.t_s is not None else 0.0
        self.samples.append(s)
        if self.first is None:
            self.first = snap
        self.last = snap

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

    def window(self) -> dict[str, Any] | None:
        """The server's own figures between the first and the last scrape (server_metrics.window), or None."""
        if self.first is None or self.last is None:
            return None
        return SM.window(self.first, self.last, self.model, family=self.family)

    def server_block(self) -> dict[str, Any]:
        """What this step saw of the server: its family, window figures, what it did not export and why."""
        w = self.window()
        block: dict[str, Any]
        if w is None:
            reasons = {f: "the server's metrics could not be read" for f in WATCHED}
            block = {"family": None, "figures": {}, "unavailable": list(WATCHED), "reasons": reasons}
        else:
            keys = ("family", "window_s", "figures", "basis", "unavailable", "reasons", "caveat")
            block = {k: w[k] for k in keys if k in w}
            if self.first is self.last:  # one scrape: what it lacked, but no window
                block.update(window_s=None, figures={})
        if self.last_error:
            block["scrape_error"] = self.last_error
        return block

    def summary(self) -> dict[str, Any]:
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
            "server_metrics": self.server_block(),
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


def metrics_source(
    base: Any,
    fetch: Fetch | None,
    url: str | None,
    headers: Mapping[str, str] | None,
    ssl_context: Any,
) -> tuple[str, Fetch, str | None]:
    """(url, fetch, note): an injected `fetch` as given; explicit headers / TLS context; else the scenario's own
    (metrics URL from `server_metrics`, the target's headers and TLS where they belong: metrics_scrape.source_for)."""
    if fetch is not None or headers is not None or ssl_context is not None:
        url = url or getattr(base, "server_metrics", None) or metrics_scrape.default_metrics_url(base.target)
        return url, fetch or metrics_scrape.make_fetch(headers, ssl_context), None
    src = metrics_scrape.source_for(base, url)
    return src.url, src.fetch(), src.note


def server_summary(url: str, rows: list[dict], note: str | None = None) -> dict[str, Any]:
    """The document's `server_metrics`: where they were read, the family, and what the server did not export (from
    the last step whose metrics were read)."""
    seen = [r["server_metrics"] for r in rows if (r.get("server_metrics") or {}).get("family")]
    last = seen[-1] if seen else ((rows[-1].get("server_metrics") or {}) if rows else {})
    notes = SM.unavailable_lines(list(last.get("unavailable") or []), last.get("reasons") or {})
    if note:
        notes.append(note)
    if last.get("scrape_error") and not seen:
        notes.append(f"scrape failed: {last['scrape_error']}")
    return {
        "url": SM.redact_url(url),
        "family": last.get("family"),
        "unavailable": list(last.get("unavailable") or []),
        "notes": notes,
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
    fetch: Fetch | None = None,
    metrics_url: str | None = None,
    metrics_headers: Mapping[str, str] | None = None,
    ssl_context: Any = None,
    family: str | None = None,
    metrics_interval_s: float = 0.25,
    say: Callable[[str], None] = lambda _m: None,
    on_step: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """The overload steps (module docstring). Metrics: `metrics_url` (default: the scenario's `server_metrics`, else
    target + /metrics), read with the target's headers and TLS unless `fetch` or `metrics_headers` / `ssl_context`
    are given; `family` forces the adapter (default: detected from the series)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url, fetch, note = metrics_source(base, fetch, metrics_url, metrics_headers, ssl_context)
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
            f"queue depth, admitted requests and resident memory sampled from the server's metrics every "
            f"{metrics_interval_s:g} s during the step (those it exports); its queue, compute and batch figures "
            "are window averages from counter deltas over the step, not per request"
        ),
        "server_metrics": server_summary(url, [], note),
    }
    for i, mult in enumerate(steps):
        rate = round(mult * cap, 3)
        say(f"step {i + 1}/{len(steps)}: {mult:g}x capacity = {rate:g} req/s")
        sc = base.model_copy(update={"mode": "open", "rate_rps": rate, "users": None, "slo_p99_ms": slo_ms})
        with MetricsWatcher(base.target, base.model, fetch, metrics_interval_s, url=url, family=family) as w:
            res = run(sc)
        fname = f"step-{i:02d}-{mult:g}x.json"
        write_json(out_dir / fname, res)
        row = step_row(res, mult, cap, slo_ms, w.summary(), fname)
        doc["steps"].append(row)
        doc["server_metrics"] = server_summary(url, doc["steps"], note)
        write_json(out_dir / "overload.json", doc)
        if on_step is not None:
            on_step(row)
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(out_dir / "overload.json", doc)
    return doc
