"""MLPerf LoadGen's logs, read (pure: text in, dicts out; no LoadGen import, no I/O besides `read_detail`).

LoadGen writes `mlperf_log_detail.txt`, one `:::MLLOG {json}` line per event (`key`, `value`, `time_ms`,
`metadata.is_error` / `is_warning`), and `mlperf_log_summary.txt` for people. The detail log is the source: its keys
are stable across LoadGen 4-6 (`result_validity`, `result_min_duration_met`, `early_stopping_met`,
`result_90.00_percentile_latency_ns`, ...). `loadgen_section` turns them into the `mlperf` document's fields: the
verdict with LoadGen's own reasons as `{code, message}`, percentiles in ms, the early-stopping estimate, the rates.

Reason codes (one per LoadGen condition that failed):
`loadgen_min_duration`, `loadgen_min_queries`, `loadgen_latency` (Server: the measured percentile over the bound),
`loadgen_early_stopping` (too few queries, or too many over the bound, for LoadGen's confidence statement),
`loadgen_errors` (LoadGen logged errors), `loadgen_invalid` (INVALID for a reason not listed above).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PREFIX = ":::MLLOG "
_PCT_KEY = re.compile(r"^result_(\d+\.\d+)_percentile_(per_query_)?latency_ns$")
_PCT_NAMES = {"50.00": "p50", "90.00": "p90", "95.00": "p95", "97.00": "p97", "99.00": "p99", "99.90": "p999"}


def parse_detail(text: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """(last value of every key, error messages, warning messages) from the detail log's text."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        try:
            ev = json.loads(line[len(PREFIX) :])
        except ValueError:
            continue
        if not isinstance(ev, dict) or "key" not in ev:
            continue
        key, value = str(ev["key"]), ev.get("value")
        values[key] = value
        if key == "generic_message":
            values.setdefault("generic_messages", []).append(str(value))
        meta = ev.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {value}")
        elif meta.get("is_warning"):
            warnings.append(f"{key}: {value}")
    return values, errors, warnings


def read_detail(folder: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    return parse_detail((Path(folder) / "mlperf_log_detail.txt").read_text(encoding="utf-8", errors="replace"))


def _ms(ns: Any) -> float | None:
    return None if ns is None or isinstance(ns, bool) else round(float(ns) / 1e6, 6)


def _text(v: Any) -> str:
    return " ".join(str(v or "").split())


def percentiles_ms(values: dict[str, Any], per_query: bool = False) -> dict[str, float | None]:
    """{min, mean, p50, p90, p95, p97, p99, p999, max} in ms; `per_query`: MultiStream's per-query latencies."""
    q = "query_" if per_query else ""
    out: dict[str, float | None] = {
        "min": _ms(values.get(f"result_min_{q}latency_ns")),
        "mean": _ms(values.get(f"result_mean_{q}latency_ns")),
    }
    for key, value in values.items():
        m = _PCT_KEY.match(key)
        if m and bool(m.group(2)) == per_query:
            out[_PCT_NAMES.get(m.group(1), "p" + m.group(1).rstrip("0").rstrip(".").replace(".", ""))] = _ms(value)
    out["max"] = _ms(values.get(f"result_max_{q}latency_ns"))
    return out if any(v is not None for v in out.values()) else {}


def reasons(values: dict[str, Any], errors: list[str]) -> list[dict[str, str]]:
    """LoadGen's reasons for an INVALID result, each a {code, message}; [] when it said VALID."""
    out: list[dict[str, str]] = []
    invalid_text = _text(values.get("result_invalid_reason"))
    if values.get("result_min_duration_met") is False:
        out.append(
            {
                "code": "loadgen_min_duration",
                "message": "LoadGen: the run was shorter than its minimum duration"
                + (f" ({invalid_text})" if invalid_text else ""),
            }
        )
    if values.get("result_min_queries_met") is False:
        out.append({"code": "loadgen_min_queries", "message": "LoadGen: fewer queries than its minimum query count"})
    if values.get("result_perf_constraints_met") is False:
        out.append(
            {
                "code": "loadgen_latency",
                "message": "LoadGen: the measured latency percentile exceeds the target latency (reduce the target QPS)",
            }
        )
    if values.get("early_stopping_met") is False:
        out.append(
            {
                "code": "loadgen_early_stopping",
                "message": "LoadGen early stopping: " + _text(values.get("early_stopping_result")),
            }
        )
    if errors:
        out.append({"code": "loadgen_errors", "message": f"LoadGen logged {len(errors)} error(s): {errors[0]}"})
    if values.get("result_validity") == "INVALID" and not out:
        out.append(
            {"code": "loadgen_invalid", "message": "LoadGen: INVALID" + (f": {invalid_text}" if invalid_text else "")}
        )
    return out


def early_stopping(values: dict[str, Any], scenario: str) -> dict[str, Any]:
    """LoadGen's early-stopping block: met, its message and, for SingleStream / MultiStream, the percentile estimate
    (the latency LoadGen can state with 99% confidence after discarding the highest queries)."""
    est = (
        values.get("early_stopping_latency_ss")
        if scenario == "singlestream"
        else values.get("early_stopping_latency_ms")
    )
    out: dict[str, Any] = {
        "met": values.get("early_stopping_met"),
        "message": _text(values.get("early_stopping_result")) or None,
        "estimate_ms": _ms(est) if est else None,
    }
    m = re.search(
        r"Early stopping (\d+(?:\.\d+)?)th percentile estimate", str(values.get("early_stopping_result") or "")
    )
    out["estimate_percentile"] = float(m.group(1)) if m else None
    return out


_FOUND = re.compile(r"Found peak performance field: ([0-9.eE+-]+)")
_BOUNDS = re.compile(r"Testing the mid value of bounds \[([0-9.eE+-]+),\s*([0-9.eE+-]+)[)\]]")


def find_peak(values: dict[str, Any]) -> dict[str, Any] | None:
    """LoadGen's FindPeakPerformance: the QPS it found and each bracket it bisected (from its generic messages);
    None when the log holds no search."""
    msgs = values.get("generic_messages") or []
    found = [float(m.group(1)) for x in msgs if (m := _FOUND.search(x))]
    bounds = [[float(m.group(1)), float(m.group(2))] for x in msgs if (m := _BOUNDS.search(x))]
    if not found and not bounds:
        return None
    return {"peak_qps": found[-1] if found else None, "bisected_bounds": bounds}


def run_seconds(values: dict[str, Any]) -> float | None:
    """The timed run's length, from LoadGen's power_begin / power_end stamps ("MM-DD-YYYY HH:MM:SS.mmm")."""
    from datetime import datetime

    try:
        fmt = "%m-%d-%Y %H:%M:%S.%f"
        begin = datetime.strptime(str(values["power_begin"]), fmt)
        end = datetime.strptime(str(values["power_end"]), fmt)
    except (KeyError, ValueError):
        return None
    s = (end - begin).total_seconds()
    return s if s > 0 else None


def loadgen_section(values: dict[str, Any], errors: list[str], warnings: list[str], scenario: str) -> dict[str, Any]:
    """The `mlperf` document's LoadGen fields from the detail log's values."""
    samples_per_query = int(values.get("effective_samples_per_query") or 1)
    queries = values.get("result_query_count")
    rate: float | None
    if scenario == "offline":
        rate = values.get("result_samples_per_second")
    elif scenario == "server":
        rate = values.get("result_completed_samples_per_sec")
    elif scenario == "singlestream":
        rate = values.get("result_qps_with_loadgen_overhead")
    else:  # MultiStream logs no rate: samples over the timed run
        secs = run_seconds(values)
        rate = None if queries is None or not secs else int(queries) * samples_per_query / secs
    return {
        "loadgen_result": "VALID" if values.get("result_validity") == "VALID" else "INVALID",
        "loadgen_reasons": reasons(values, errors),
        "loadgen_warnings": warnings,
        "loadgen_version": str(values.get("loadgen_version") or ""),
        "duration_s": run_seconds(values),
        "queries": None if queries is None else int(queries),
        "samples_per_query": samples_per_query,
        "overlatency_queries": values.get("result_overlatency_query_count"),
        "samples_per_s": None if rate is None else float(rate),
        "scheduled_samples_per_s": values.get("result_scheduled_samples_per_sec"),
        "latency_ms": percentiles_ms(values),
        "query_latency_ms": percentiles_ms(values, per_query=True) or None,
        "early_stopping": early_stopping(values, scenario),
        "find_peak": find_peak(values),
        "effective": {k[len("effective_") :]: v for k, v in values.items() if k.startswith("effective_")},
    }
