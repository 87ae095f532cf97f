"""Terminal summary of an `mlperf` document (LoadGen's verdict, its answer, the SUT's issue lag)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCENARIO_NAMES = {
    "singlestream": "SingleStream",
    "multistream": "MultiStream",
    "server": "Server",
    "offline": "Offline",
}


def _f(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:.4g}{(' ' + unit) if unit else ''}"


def answer_line(doc: dict[str, Any]) -> str:
    """One line in MLPerf's terms: 'SingleStream p90 8.62 ms (VALID)', 'Offline 250 samples/s (VALID)'."""
    sc = doc.get("scenario", "?")
    name = SCENARIO_NAMES.get(sc, sc)
    verdict = doc.get("loadgen_result", "?")
    res = doc.get("result") or {}
    lat = doc.get("latency_ms") or {}
    if sc in ("singlestream", "multistream"):
        es = (doc.get("early_stopping") or {}).get("estimate_ms")
        pct = (res.get("metric") or "p?").split("_")[0]
        more = f", early-stopping estimate {_f(es, 'ms')}" if es else ""
        return f"{name} {pct} latency {_f(res.get('value'), 'ms')}{more} ({verdict})"
    if sc == "server" and doc.get("mode") == "find_peak":
        return f"{name} FindPeakPerformance: {_f(res.get('value'))} QPS (last run {verdict})"
    if sc == "server":
        s = doc.get("settings") or {}
        pct = s.get("latency_percentile", 99)
        return (
            f"{name} at {_f(res.get('value'))} QPS: p{pct:g} {_f(lat.get('p' + format(pct, 'g').replace('.', '')), 'ms')} "
            f"against {_f(s.get('latency_bound_ms'), 'ms')} ({verdict})"
        )
    return f"{name} {_f(doc.get('samples_per_s'), 'samples/s')} ({verdict})"


def print_mlperf(console: Any, doc: dict[str, Any], path: Path | str | None = None) -> None:
    from rich.table import Table

    console.rule(f"[bold]MLPerf LoadGen {SCENARIO_NAMES.get(doc.get('scenario', ''), '?')}[/bold] ({doc.get('model')})")
    style = "green" if doc.get("valid") else "red"
    console.print(f"[bold {style}]{answer_line(doc)}[/bold {style}]", highlight=False)
    lat = doc.get("latency_ms") or {}
    t = Table(show_header=True, header_style="bold")
    names = [k for k in ("min", "p50", "p90", "p95", "p99", "p999", "max") if k in lat]
    for n in names:
        t.add_column(n, justify="right")
    t.add_row(*[_f(lat.get(n)) for n in names])
    console.print("latency (ms, LoadGen):", t)
    sut = doc.get("sut") or {}
    lag = sut.get("issue_lag_ms") or {}
    console.print(
        f"samples/s {_f(doc.get('samples_per_s'))} · queries {doc.get('queries')} · SUT issue lag p50/p99/max "
        f"{_f(lag.get('p50'))}/{_f(lag.get('p99'))}/{_f(lag.get('max'))} ms · SUT failures {sut.get('failed', 0)}",
        highlight=False,
    )
    es = doc.get("early_stopping") or {}
    if es.get("message"):
        console.print(f"early stopping: {es['message']}", highlight=False, markup=False)
    for r in doc.get("invalid_reasons") or []:
        console.print(f"[red]INVALID[/red] {r['code']}: {r['message']}", highlight=False)
    for w in doc.get("warnings") or []:
        console.print(f"[yellow]warning[/yellow] {w['code']}: {w['message']}", highlight=False)
    if path is not None:
        console.print(f"mlperf JSON: {path} (LoadGen's logs beside it)")
