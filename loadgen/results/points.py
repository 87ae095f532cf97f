"""A run as a row of a curve (sweep point, peak probe, matrix cell): its figures summarised for tables and plots,
read the same way by searches and reports; and the raw in-process limit read from a bench document."""

from __future__ import annotations

import math


def _lat(result: dict, key: str) -> float | None:
    v = (result.get("latency_ms") or {}).get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def summarize_point(result: dict, file: str | None = None, index: int | None = None) -> dict:
    """One row of the curve (every figure with its unit in the key)."""
    sc = result.get("scenario") or {}
    batch = sc.get("batch") or 1
    mean_batch = mean_realised_batch(result.get("batch_size") or {})
    return {
        "index": index,
        "mode": result.get("mode"),
        "offered_rps": result.get("target_rate_rps")
        if result.get("mode") == "open"
        else result.get("offered_rate_rps"),
        "users": result.get("users"),
        "achieved_rps": result.get("achieved_rate_rps"),
        "items_per_s": result.get("items_per_s"),
        "items_per_request": batch,
        "p50_ms": _lat(result, "p50"),
        "p90_ms": _lat(result, "p90"),
        "p95_ms": _lat(result, "p95"),
        "p99_ms": _lat(result, "p99"),
        "p999_ms": _lat(result, "p999"),
        "max_ms": _lat(result, "max"),
        "completed": result.get("completed"),
        "failed": result.get("failed") or 0,
        "errors": result.get("errors") or {},
        "mean_server_batch": mean_batch,
        "p99_ucb_ms": (result.get("latency_ucb_ms") or {}).get("p99"),
        "slo_verdict": (result.get("slo") or {}).get("verdict"),
        "slo_bound_ms": (result.get("slo") or {}).get("bound_ms"),
        "slo_percentile": (result.get("slo") or {}).get("percentile"),
        "valid": bool(result.get("valid")),
        "invalid_reasons": list(result.get("invalid_reasons") or []),
        "file": file,
    }


def mean_realised_batch(hist: dict) -> float | None:
    """Mean executed batch size from {"size": count} (counts are executions or requests; see result docs)."""
    total = sum(float(n) for n in hist.values())
    if total <= 0:
        return None
    return sum(float(k) * float(n) for k, n in hist.items()) / total


def percentile_of(result_or_row: dict, percentile: float) -> float | None:
    """The latency (ms) at a percentile, from a result (latency_ms / percentiles list) or a summary row."""
    key = {50: "p50", 90: "p90", 95: "p95", 99: "p99", 99.9: "p999"}.get(percentile)
    if "latency_ms" in result_or_row:
        if key:
            v = _lat(result_or_row, key)
            if v is not None:
                return v
        for pct, ms in result_or_row.get("percentiles") or []:
            if pct >= percentile:
                return float(ms)
        return None
    return result_or_row.get(f"{key}_ms") if key else None


def raw_limit_from_bench(bench: dict, items_per_request: int = 1) -> dict | None:
    """The in-process limit: max throughput_items_per_s over the bench rows, also in req/s of this scenario."""
    rows = [r for r in bench.get("results") or [] if r.get("throughput_items_per_s")]
    if not rows:
        return None
    best = max(rows, key=lambda r: r["throughput_items_per_s"])
    items = float(best["throughput_items_per_s"])
    n = max(1, int(items_per_request or 1))
    return {
        "items_per_s": items,
        "rps": items / n,
        "items_per_request": n,
        "batch_size": best.get("batch_size"),
        "instances": best.get("instances"),
        "source": "in-process ONNX Runtime baseline (loadgen.baseline.bench), max over its rows",
    }
