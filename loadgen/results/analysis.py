"""Pure analysis over recorded data: percentiles, confidence bounds, rates, decomposition, validity.

No I/O, no clocks, no locust: unit-tested directly.

A verdict must be as trustworthy as the numbers behind it, and no more demanding. Latency is measured from each
request's *scheduled* instant, so a late send can only make a result pessimistic, never hide a slow server.
A run is INVALID only for a reason that can change its answer; every reason is a `{code, message}`:
- `window_too_short`: the measurement window lasted less than MIN_DURATION_S (2 s);
- `no_successes`: nothing succeeded in the window;
- `schedule_short` (open loop): fewer than 99% of the requests the schedule put in the window were answered
  (successes + failures): the offered load was not the load asked for;
- `lag_material` (open loop): the generator's lateness could change the answer — with an SLO, the verdict from
  the same requests timed from their actual send differs from the verdict from the schedule; without one, the
  judged percentile (p99) from the schedule exceeds the one from the actual send by more than 10% and more than
  the late threshold (2 ms; smaller differences are within any client's own overhead);
- `generator_cpu`: a generating process reached 90% of a core (its timing cannot be trusted);
- `client_drops`: requests were dropped at the open-loop in-flight cap (the server could not keep up).
`schedule_short`, `lag_material` and `generator_cpu` are the generator's (GENERATOR_CODES): such a run says
nothing about the server. Everything else is reported as a warning (`{code, message}` too): late sends that do
not matter (`late_sends`), failures (`failures`: the server's answer; excluded from latency, counted as over the
bound in an SLO verdict), and percentiles too thin to bound (`percentile_unbounded`).

Sufficiency is statistical (loadgen.results.confidence): every percentile gets an upper confidence bound (default 99%),
and an SLO verdict is pass / fail / undecided with that confidence, with the queries needed when undecided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.results.confidence import DEFAULT_CONFIDENCE, effective_counts, judge, upper_rank
from loadgen.results.recorded import phase_of

PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
# ---- fast HdrHistogram statistics -------------------------------------------------------------------
# The hdrh package walks its counts array in Python (~17k entries per call: ~0.1 s for a mean). These
# numpy versions read the same counts array and reproduce hdrh's definitions exactly: percentile = highest
# equivalent value of the first index whose cumulative count reaches int(p * total / 100 + 0.5) (lowest
# equivalent value for p = 0); mean/stdev over each bucket's median equivalent value.
_TABLES: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _tables(h: HdrHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = (h.counts_len, h.unit_magnitude, h.sub_bucket_half_count_magnitude, h.sub_bucket_count)
    t = _TABLES.get(key)
    if t is None:
        vals = [h.get_value_from_index(i) for i in range(h.counts_len)]
        low = np.array([h.get_lowest_equivalent_value(v) for v in vals], dtype=np.float64)
        high = np.array([h.get_highest_equivalent_value(v) for v in vals], dtype=np.float64)
        med = np.array([h._hdr_median_equiv_value(v) for v in vals], dtype=np.float64)
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


def percentile_distribution_ms(h: HdrHistogram | None) -> list[list[float | None]]:
    """[[percentile, ms], ...] (~50 points from p0 to p99.999 plus the max) for plotting."""
    if h is None or h.get_total_count() == 0:
        return []
    pts = distribution_points()
    vals = values_at_percentiles(h, pts[:-1])
    out: list[list[float | None]] = [[p, us_to_ms(vals[p])] for p in pts[:-1]]
    out.append([100.0, us_to_ms(h.get_max_value())])
    return out


def cpu_summary(samples: Iterable[Sequence[Any]]) -> dict[str, float | None]:
    """samples: [source, t_s, percent]. max and mean over every sample of every process."""
    vals = [float(s[2]) for s in samples]
    if not vals:
        return {"max": None, "mean": None}
    return {"max": round(max(vals), 1), "mean": round(sum(vals) / len(vals), 1)}


"""INVALID reasons that lie with the load generator, not the server: such a run says nothing about the server
(a search measures that point again, then reports it as generator-limited, never as a server failure)."""


# ---- percentiles with confidence ---------------------------------------------------------------------
def value_at_rank(h: HdrHistogram, rank: int) -> float:
    """The rank-th smallest recorded value (1-based), as its bucket's highest equivalent value (us)."""
    _, high, _ = _tables(h)
    cum = np.cumsum(hist_counts(h))
    i = min(int(np.searchsorted(cum, max(1, rank), side="left")), len(cum) - 1)
    return float(high[i])


def count_over(h: HdrHistogram | None, bound_us: float) -> int:
    """Samples over `bound_us`, counting a bucket as over when its highest equivalent value is (the same
    convention as the reported percentiles, so 'UCB <= bound' and 'pass' are the same event)."""
    if h is None or h.get_total_count() == 0:
        return 0
    _, high, _ = _tables(h)
    return int(hist_counts(h)[high > bound_us].sum())


def percentile_ucb_ms(h: HdrHistogram | None, confidence: float = DEFAULT_CONFIDENCE) -> dict[str, float | None]:
    """{p50: ms, ...}: an upper confidence bound on each true percentile (None: too few samples to bound it)."""
    n = 0 if h is None else h.get_total_count()
    out: dict[str, float | None] = {}
    for name, p in PERCENTILES.items():
        k = upper_rank(n, p / 100.0, confidence) if n else None
        out[name] = None if k is None else us_to_ms(value_at_rank(h, k))
    return out


def unbounded_percentiles(n: int, confidence: float = DEFAULT_CONFIDENCE) -> list[str]:
    """Percentiles that n samples cannot bound from above with `confidence` (p99 at 99% needs 459)."""
    return [name for name, p in PERCENTILES.items() if n == 0 or upper_rank(n, p / 100.0, confidence) is None]


def judge_slo(
    succ: HdrHistogram | None,
    failed: int,
    bound_ms: float,
    percentile: float = 99.0,
    confidence: float = DEFAULT_CONFIDENCE,
    design_effect: float = 1.0,
) -> dict[str, Any]:
    """The SLO verdict with `confidence`: failed requests count as over the bound (a failure never meets a
    latency SLO). Returns the verdict dict of loadgen.results.confidence.judge plus the estimate and its UCB.
    design_effect > 1: the overs came in bursts (loadgen.results.bursts); the verdict weighs n / D queries."""
    n_ok = 0 if succ is None else succ.get_total_count()
    n = n_ok + failed
    over = count_over(succ, bound_ms * 1000.0) + failed
    v = judge(n, over, percentile, confidence, bound_label=f"{bound_ms:g} ms", design_effect=design_effect).to_dict()
    est = ucb = None
    if n_ok:
        est = us_to_ms(values_at_percentiles(succ, [percentile])[percentile])
    k = _ucb_rank(n, percentile / 100.0, confidence, design_effect) if n else None
    if k is not None:
        ucb = us_to_ms(value_at_rank(succ, k)) if k <= n_ok else math.inf
    v.update(
        bound_ms=bound_ms,
        estimate_ms=est,
        ucb_ms=None if ucb == math.inf else ucb,
        ucb_is_failure=ucb == math.inf,
        failures_counted_over=failed,
    )
    return v


def _ucb_rank(n: int, p: float, confidence: float, design_effect: float) -> int | None:
    """The rank of the SLO verdict's upper confidence bound, so that pass <=> UCB <= bound also with a design effect:
    n / D effective queries allow (n_e - k_e) over, i.e. (n_e - k_e) D real ones."""
    if design_effect <= 1.0:
        return upper_rank(n, p, confidence)
    n_e, _ = effective_counts(n, 0, design_effect)
    k_e = upper_rank(n_e, p, confidence)
    return None if k_e is None else max(1, n - math.floor((n_e - k_e) * design_effect))


def timeseries_rows(
    seconds: dict[int, Any], warmup_s: float, end_s: float, bound_ms: float | None = None
) -> list[dict[str, Any]]:
    """Per-second rows {t_s, phase, offered, completed, errors, in_flight, p50_ms, p99_ms}; with an SLO bound also
    `judged` (successes scheduled in that second plus its errors) and `over_slo` (how many of them were over the bound,
    errors included), the windows loadgen.results.bursts judges bursts from."""
    if not seconds:
        return []
    rows = []
    for s in range(min(0, min(seconds)), max(seconds) + 1):
        b = seconds.get(s)
        phase = phase_of(s, warmup_s, end_s)
        p50 = p99 = None
        if b is not None and b.hist is not None and b.hist.get_total_count():
            v = values_at_percentiles(b.hist, [50.0, 99.0])
            p50, p99 = us_to_ms(v[50.0]), us_to_ms(v[99.0])
        row: dict[str, Any] = {}
        if bound_ms is not None:
            ok = b.hist.get_total_count() if b is not None and b.hist is not None else 0
            err = b.errors if b else 0
            row = {"judged": ok + err, "over_slo": count_over(b.hist if b else None, bound_ms * 1000.0) + err}
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
                **row,
            }
        )
    return rows
