"""Pure analysis over recorded data: percentiles, distributions, rates, decomposition, validity.

No I/O, no clocks, no locust: unit-tested directly.

Validity rules (a run is VALID only if every rule holds; otherwise INVALID with every reason listed):
- the measurement window lasted at least MIN_DURATION_S (2 s) and had at least one success;
- enough samples for each *gating* percentile: a percentile p needs >= 10 samples beyond it, i.e.
  n >= 10 / (1 - p/100): p50 20, p90 100, p95 200, p99 1000. p50 and p90 always gate validity; p95 and p99
  gate it when the run is judged against a latency SLO (`slo_p99_ms` set: sweeps, peak searches), because then
  the verdict rests on them. Otherwise a short percentile (and always p99.9, which needs 10000) is still
  reported, flagged in `latency_insufficient` (marked * in tables) and warned about: it is indicative;
- open loop: achieved/target >= 0.99 (completions / requests the schedule put in the window) and delayed fraction (sent > late_threshold_ms, default 2 ms, after schedule) <= 1%;
- generator CPU (every generating process, 1 s samples in the window) stayed under 90%;
- no client-side drops (open-loop in-flight cap).
Failures (HTTP errors, timeouts) are a warning, not a validity rule: they are the server's answer. In the
open loop they also lower the achieved rate, which the achieved/target rule catches.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
GATING_PERCENTILES = ("p50", "p90")
SLO_GATING_PERCENTILES = ("p50", "p90", "p95", "p99")
MIN_TAIL_SAMPLES = 10
MIN_DURATION_S = 2.0
MIN_ACHIEVED_RATIO = 0.99
MAX_DELAYED_FRACTION = 0.01
MAX_CPU_PERCENT = 90.0
# ---- fast HdrHistogram statistics -------------------------------------------------------------------
# The hdrh package walks its counts array in Python (~17k entries per call: ~0.1 s for a mean). These
# numpy versions read the same counts array and reproduce hdrh's definitions exactly: percentile = highest
# equivalent value of the first index whose cumulative count reaches int(p * total / 100 + 0.5) (lowest
# equivalent value for p = 0); mean/stdev over each bucket's median equivalent value.
_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _tables(h: HdrHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = (h.counts_len, h.unit_magnitude, h.sub_bucket_half_count_magnitude, h.sub_bucket_count)
    t = _TABLES.get(key)
    if t is None:
        vals = [h.get_value_from_index(i) for i in range(h.counts_len)]
        low = np.array([h.get_lowest_equivalent_value(v) for v in vals], dtype=np.float64)
        high = np.array([h.get_highest_equivalent_value(v) for v in vals], dtype=np.float64)
        med = np.array([h._hdr_median_equiv_value(v) for v in vals], dtype=np.float64)  # noqa: SLF001
        t = _TABLES[key] = (low, high, med)
    return t


def hist_counts(h: HdrHistogram) -> np.ndarray:
    return np.ctypeslib.as_array(h.counts)[: h.counts_len]


def values_at_percentiles(h: HdrHistogram, percentiles: Iterable[float]) -> dict[float, float]:
    low, high, _ = _tables(h)
    cum = np.cumsum(hist_counts(h))
    total = int(cum[-1]) if len(cum) else 0
    out: dict[float, float] = {}
    for p in percentiles:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        i = min(int(np.searchsorted(cum, target, side="left")), len(cum) - 1)
        out[p] = float(high[i] if p else low[i])
    return out


def mean_stdev(h: HdrHistogram) -> tuple[float, float]:
    _, _, med = _tables(h)
    c = hist_counts(h).astype(np.float64)
    n = c.sum()
    if n == 0:
        return 0.0, 0.0
    mean = float((c * med).sum() / n)
    return mean, float(np.sqrt((c * (med - mean) ** 2).sum() / n))


def recorded_values(h: HdrHistogram) -> list[tuple[float, int]]:
    """[(highest equivalent value, count)] for every non-empty bucket."""
    _, high, _ = _tables(h)
    c = hist_counts(h)
    nz = np.nonzero(c)[0]
    return [(float(high[i]), int(c[i])) for i in nz]


CLOSED_LOOP_NOTE = (
    "Closed loop: each user waits for its answer before sending again, so a server stall is sampled once per "
    "user instead of at every instant a request would have arrived; closed-loop latency hides server stalls "
    "(coordinated omission). Use --mode open for latency under a given arrival rate."
)


def us_to_ms(v: float | int | None) -> float | None:
    return None if v is None else round(v / 1000.0, 4)


def required_samples(percentile: float) -> int:
    """Samples needed so that >= MIN_TAIL_SAMPLES lie beyond `percentile` (e.g. 99 -> 1000)."""
    if percentile >= 100:
        return math.inf  # type: ignore[return-value]
    return math.ceil(round(MIN_TAIL_SAMPLES / (1.0 - percentile / 100.0), 6))


GENERATOR_REASON_MARKERS = ("the generator fell behind its schedule", "generator CPU reached")


def generator_limited(result: dict[str, Any]) -> bool:
    """An INVALID run whose every reason lies with the load generator (late sends, its CPU), not the server:
    the measurement is inconclusive about the server, so a search may measure that point again."""
    reasons = result.get("invalid_reasons") or []
    return (not result.get("valid")) and bool(reasons) and all(
        any(m in r for m in GENERATOR_REASON_MARKERS) for r in reasons
    )


def insufficient_percentiles(n: int) -> list[str]:
    return [name for name, p in PERCENTILES.items() if n < required_samples(p)]


def latency_summary_ms(h: HdrHistogram | None) -> dict[str, float | None]:
    """{p50,p90,p95,p99,p999,max,mean,min,stdev} in ms (None when there are no samples)."""
    keys = list(PERCENTILES) + ["max", "mean", "min", "stdev"]
    if h is None or h.get_total_count() == 0:
        return {k: None for k in keys}
    vals = values_at_percentiles(h, PERCENTILES.values())
    out: dict[str, float | None] = {name: us_to_ms(vals[p]) for name, p in PERCENTILES.items()}
    mean, stdev = mean_stdev(h)
    out["max"] = us_to_ms(h.get_max_value())
    out["mean"] = us_to_ms(mean)
    out["min"] = us_to_ms(h.get_min_value())
    out["stdev"] = us_to_ms(stdev)
    return out


def p50_p99_max_ms(h: HdrHistogram | None) -> dict[str, float | None]:
    if h is None or h.get_total_count() == 0:
        return {"p50": None, "p99": None, "max": None}
    v = values_at_percentiles(h, [50.0, 99.0])
    return {"p50": us_to_ms(v[50.0]), "p99": us_to_ms(v[99.0]), "max": us_to_ms(h.get_max_value())}


def p50_p99_mean_ms(h: HdrHistogram | None) -> dict[str, float | None]:
    if h is None or h.get_total_count() == 0:
        return {"p50": None, "p99": None, "mean": None}
    v = values_at_percentiles(h, [50.0, 99.0])
    return {"p50": us_to_ms(v[50.0]), "p99": us_to_ms(v[99.0]), "mean": us_to_ms(mean_stdev(h)[0])}


def p50_mean_ms(h: HdrHistogram | None) -> dict[str, float | None]:
    if h is None or h.get_total_count() == 0:
        return {"p50": None, "mean": None}
    return {"p50": us_to_ms(values_at_percentiles(h, [50.0])[50.0]), "mean": us_to_ms(mean_stdev(h)[0])}


def distribution_points(ticks_per_half: int = 3, last: float = 99.999) -> list[float]:
    """HDR-style percentile ticks: 0, then halving the remaining distance, up to `last`, then 100."""
    pts: list[float] = []
    k = 0
    while True:
        p = 100.0 * (1.0 - 0.5 ** (k / ticks_per_half))
        if p >= last:
            break
        pts.append(round(p, 4))
        k += 1
    return pts + [last, 100.0]


def percentile_distribution_ms(h: HdrHistogram | None) -> list[list[float]]:
    """[[percentile, ms], ...] (~50 points from p0 to p99.999 plus the max) for plotting."""
    if h is None or h.get_total_count() == 0:
        return []
    pts = distribution_points()
    vals = values_at_percentiles(h, pts[:-1])
    out = [[p, us_to_ms(vals[p])] for p in pts[:-1]]
    out.append([100.0, us_to_ms(h.get_max_value())])
    return out


def cpu_summary(samples: Iterable[Iterable[Any]]) -> dict[str, float | None]:
    """samples: [source, t_s, percent]. max and mean over every sample of every process."""
    vals = [float(s[2]) for s in samples]
    if not vals:
        return {"max": None, "mean": None}
    return {"max": round(max(vals), 1), "mean": round(sum(vals) / len(vals), 1)}


def validity(
    *,
    mode: str,
    duration_s: float,
    completed: int,
    failed: int,
    errors: dict[str, int],
    insufficient: list[str],
    target_rate_rps: float | None,
    achieved_rate_rps: float,
    delayed_fraction: float,
    dropped: int,
    max_in_flight: int | None,
    cpu_max_percent: float | None,
    scheduled: int | None = None,
    late_threshold_ms: float = 2.0,
    slo_set: bool = False,
) -> tuple[bool, list[str], list[str]]:
    """Return (valid, invalid_reasons, warnings). Every failing rule contributes its own reason."""
    reasons: list[str] = []
    warnings: list[str] = []
    if duration_s < MIN_DURATION_S:
        reasons.append(f"measurement window {duration_s:g} s is shorter than the minimum {MIN_DURATION_S:g} s")
    if completed == 0:
        reasons.append("no successful requests in the measurement window")
    gates = SLO_GATING_PERCENTILES if slo_set else GATING_PERCENTILES
    gating = [p for p in insufficient if p in gates]
    if gating and completed > 0:
        need = {p: required_samples(PERCENTILES[p]) for p in gating}
        reasons.append(
            f"too few samples for {', '.join(gating)}: {completed} successes, "
            + ", ".join(f"{p} needs >= {n}" for p, n in need.items())
            + f" ({MIN_TAIL_SAMPLES} beyond the percentile); run longer or faster"
        )
    flagged = [p for p in insufficient if p not in gates]
    if flagged and completed > 0:
        warnings.append(
            f"{', '.join(flagged)} rest{'s' if len(flagged) == 1 else ''} on fewer than {MIN_TAIL_SAMPLES} samples "
            f"beyond {'it' if len(flagged) == 1 else 'them'} ({completed} successes; "
            + ", ".join(f"{p} needs >= {required_samples(PERCENTILES[p])}" for p in flagged)
            + "): treat as indicative"
            + ("" if slo_set else "; with --slo-p99-ms they gate validity")
        )
    if mode == "open" and target_rate_rps:
        # The schedule is known: compare completions with the arrivals it actually scheduled in the window
        # (a Poisson schedule of rate λ has λT ± √(λT) of them); fall back to the nominal target.
        ratio = (completed / scheduled) if scheduled else achieved_rate_rps / target_rate_rps
        if ratio < MIN_ACHIEVED_RATIO:
            reasons.append(
                f"achieved rate {achieved_rate_rps:.1f} req/s for a {target_rate_rps:g} req/s target: "
                + (f"{completed} of {scheduled} scheduled requests completed " if scheduled else "")
                + f"({ratio:.1%} < {MIN_ACHIEVED_RATIO:.0%}; {failed} failed, {dropped} dropped)"
            )
        if delayed_fraction > MAX_DELAYED_FRACTION:
            reasons.append(
                f"{delayed_fraction:.1%} of requests were sent more than {late_threshold_ms:g} ms after their scheduled instant "
                f"(> {MAX_DELAYED_FRACTION:.0%}): the generator fell behind its schedule; add --workers or lower the rate"
            )
    if cpu_max_percent is not None and cpu_max_percent >= MAX_CPU_PERCENT:
        reasons.append(
            f"generator CPU reached {cpu_max_percent:.0f}% (>= {MAX_CPU_PERCENT:.0f}%) of a core in a generating "
            f"process: its timing cannot be trusted; add --workers or lower the load"
        )
    elif cpu_max_percent is None:
        warnings.append("generator CPU was not sampled (window shorter than the 1 s sampling interval?)")
    if dropped > 0:
        reasons.append(
            f"{dropped} requests dropped client-side at the in-flight cap (max_in_flight={max_in_flight}): "
            f"the server cannot keep up with this rate, or raise --max-in-flight"
        )
    if failed > 0:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
        warnings.append(f"{failed} requests failed ({kinds}); failures are excluded from latency")
    return (not reasons), reasons, warnings


def timeseries_rows(seconds: dict[int, Any], warmup_s: float, end_s: float) -> list[dict[str, Any]]:
    """Per-second rows {t_s, phase, offered, completed, errors, in_flight, p50_ms, p99_ms}."""
    if not seconds:
        return []
    rows = []
    for s in range(min(0, min(seconds)), max(seconds) + 1):
        b = seconds.get(s)
        phase = "warmup" if s < warmup_s else ("measure" if s < end_s else "drain")
        p50 = p99 = None
        if b is not None and b.hist is not None and b.hist.get_total_count():
            v = values_at_percentiles(b.hist, [50.0, 99.0])
            p50, p99 = us_to_ms(v[50.0]), us_to_ms(v[99.0])
        rows.append(
            {
                "t_s": s,
                "phase": phase,
                "offered": b.offered if b else 0,
                "completed": b.completed if b else 0,
                "errors": b.errors if b else 0,
                "in_flight": b.in_flight if b else 0,
                "p50_ms": p50,
                "p99_ms": p99,
            }
        )
    return rows
