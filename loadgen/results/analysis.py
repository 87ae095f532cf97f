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
from typing import Any, Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.results.confidence import DEFAULT_CONFIDENCE, judge, min_queries, upper_rank

PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
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


GENERATOR_CODES = frozenset({"schedule_short", "lag_material", "generator_cpu"})
"""INVALID reasons that lie with the load generator, not the server: such a run says nothing about the server
(a search measures that point again, then reports it as generator-limited, never as a server failure)."""
LAG_MATERIAL_SHARE = 0.10


def reason(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def reason_list(items: Iterable[Any]) -> list[dict[str, str]]:
    """Reasons as {code, message}; a bare string (a schema-1 result, a runner note) gets code 'note'."""
    return [dict(x) if isinstance(x, dict) else reason("note", str(x)) for x in items or []]


def reason_codes(result: dict[str, Any], key: str = "invalid_reasons") -> list[str]:
    return [r["code"] for r in reason_list(result.get(key) or [])]


def reason_text(reasons: Iterable[Any], sep: str = "; ") -> str:
    return sep.join(r["message"] for r in reason_list(reasons))


def generator_limited(result: dict[str, Any]) -> bool:
    """An INVALID run whose every reason lies with the load generator (GENERATOR_CODES), not the server."""
    codes = reason_codes(result)
    return (not result.get("valid")) and bool(codes) and all(c in GENERATOR_CODES for c in codes)


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
        out[name] = None if k is None else us_to_ms(value_at_rank(h, k))  # type: ignore[arg-type]
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
) -> dict[str, Any]:
    """The SLO verdict with `confidence`: failed requests count as over the bound (a failure never meets a
    latency SLO). Returns the verdict dict of loadgen.results.confidence.judge plus the estimate and its UCB."""
    n_ok = 0 if succ is None else succ.get_total_count()
    n = n_ok + failed
    over = count_over(succ, bound_ms * 1000.0) + failed
    v = judge(n, over, percentile, confidence, bound_label=f"{bound_ms:g} ms").to_dict()
    est = ucb = None
    if n_ok:
        est = us_to_ms(values_at_percentiles(succ, [percentile])[percentile])  # type: ignore[arg-type]
    k = upper_rank(n, percentile / 100.0, confidence) if n else None
    if k is not None:
        ucb = us_to_ms(value_at_rank(succ, k)) if k <= n_ok else math.inf  # type: ignore[arg-type]
    v.update(bound_ms=bound_ms, estimate_ms=est, ucb_ms=None if ucb == math.inf else ucb,
             ucb_is_failure=ucb == math.inf, failures_counted_over=failed)
    return v


def lag_effect(
    mode: str,
    *,
    lag: HdrHistogram | None,
    succ: HdrHistogram | None,
    lag_free: HdrHistogram | None,
    failed: int,
    slo: dict[str, Any] | None,
    percentile: float = 99.0,
    confidence: float = DEFAULT_CONFIDENCE,
    floor_ms: float = 2.0,
) -> dict[str, Any]:
    """Could the generator's lateness change the answer? Latency runs from the scheduled instant, so a late
    send only makes a result pessimistic; the same requests timed from their actual send ('lag-free') are the
    optimistic side. The lateness is *material* when:
      - with an SLO: the verdict from the lag-free latencies differs from the one from the schedule;
      - without one: the judged percentile from the schedule exceeds the lag-free one by more than 10% *and* by
        more than `floor_ms` (the late threshold, 2 ms): below that, the difference is within what any client's
        own wake-ups and network stack add on a VM, so it cannot be told from client overhead.
    Closed loop: no schedule, never material."""
    out: dict[str, Any] = {"material": False, "message": None}
    if mode != "open" or lag is None or lag.get_total_count() == 0 or succ is None or not succ.get_total_count():
        return out
    lag_p99 = us_to_ms(values_at_percentiles(lag, [99.0])[99.0])
    out["lag_p99_ms"] = lag_p99
    name = f"p{percentile:g}"
    if slo is not None:
        free = judge_slo(lag_free, failed, slo["bound_ms"], percentile, confidence)
        out["lag_free_verdict"] = free["verdict"]
        if free["verdict"] != slo["verdict"]:
            out["material"] = True
            out["message"] = (f"judged from the actual send instants the {name} verdict would be "
                              f"'{free['verdict']}' instead of '{slo['verdict']}' (lag p99 {lag_p99:g} ms): the "
                              "generator's lateness could change the answer")
        return out
    sched = values_at_percentiles(succ, [percentile])[percentile]
    free_v = values_at_percentiles(lag_free, [percentile])[percentile] if lag_free is not None else sched
    out["lag_free_ms"] = us_to_ms(free_v)
    if sched > (1.0 + LAG_MATERIAL_SHARE) * free_v and sched - free_v > floor_ms * 1000.0:
        out["material"] = True
        out["message"] = (f"{name} from the schedule ({us_to_ms(sched):g} ms) exceeds {name} from the actual send "
                          f"instants ({us_to_ms(free_v):g} ms) by more than {LAG_MATERIAL_SHARE:.0%} and {floor_ms:g} ms (lag p99 "
                          f"{lag_p99:g} ms): the generator's lateness is a material share of the latency")
    return out


def validity(
    *,
    mode: str,
    duration_s: float,
    completed: int,
    failed: int,
    errors: dict[str, int],
    unbounded: list[str],
    target_rate_rps: float | None,
    achieved_rate_rps: float,
    delayed_fraction: float,
    dropped: int,
    max_in_flight: int | None,
    cpu_max_percent: float | None,
    scheduled: int | None = None,
    late_threshold_ms: float = 2.0,
    lag: dict[str, Any] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[bool, list[dict[str, str]], list[dict[str, str]]]:
    """Return (valid, invalid_reasons, warnings) as {code, message} lists; every failing rule adds a reason.
    A rule makes a run INVALID only when what it detects can change the answer (module docstring)."""
    reasons: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    if duration_s < MIN_DURATION_S:
        reasons.append(reason("window_too_short",
                              f"measurement window {duration_s:g} s is shorter than the minimum {MIN_DURATION_S:g} s"))
    if completed == 0:
        reasons.append(reason("no_successes", "no successful requests in the measurement window"))
    if unbounded and completed > 0:
        k = len(unbounded)
        need = {p: min_queries(PERCENTILES[p] / 100.0, confidence) for p in unbounded}
        warnings.append(reason(
            "percentile_unbounded",
            f"{', '.join(unbounded)} {'has' if k == 1 else 'have'} no {confidence:.0%} upper confidence bound from "
            f"{completed} successes (" + ", ".join(f"{p} needs >= {n}" for p, n in need.items())
            + "): the estimate is indicative; run longer or faster"))
    if mode == "open" and target_rate_rps:
        # The schedule is known: compare answered requests (successes and failures: the server answered) with
        # the arrivals it scheduled in the window (a Poisson schedule of rate λ has λT ± √(λT) of them).
        answered = completed + failed
        ratio = (answered / scheduled) if scheduled else (achieved_rate_rps / target_rate_rps)
        if ratio < MIN_ACHIEVED_RATIO:
            reasons.append(reason(
                "schedule_short",
                "the generator did not carry out its schedule: "
                + (f"{answered} of {scheduled} scheduled requests were answered " if scheduled else
                   f"achieved {achieved_rate_rps:.1f} req/s for a {target_rate_rps:g} req/s target ")
                + f"({ratio:.1%} < {MIN_ACHIEVED_RATIO:.0%}; {dropped} dropped)"))
        if lag is not None and lag.get("material"):
            reasons.append(reason(
                "lag_material",
                f"{lag['message']}; {delayed_fraction:.1%} of requests were sent more than {late_threshold_ms:g} ms "
                "late: add --workers, run the generator on another machine, or lower the server's CPU priority"))
        elif delayed_fraction > MAX_DELAYED_FRACTION:
            lp = (lag or {}).get("lag_p99_ms")
            warnings.append(reason(
                "late_sends",
                f"{delayed_fraction:.1%} of requests were sent more than {late_threshold_ms:g} ms after their "
                f"scheduled instant" + (f" (lag p99 {lp:g} ms)" if lp is not None else "")
                + ": latency is measured from the schedule, so this can only make the result pessimistic, and "
                "here not enough to change it"))
    if cpu_max_percent is not None and cpu_max_percent >= MAX_CPU_PERCENT:
        reasons.append(reason(
            "generator_cpu",
            f"generator CPU reached {cpu_max_percent:.0f}% (>= {MAX_CPU_PERCENT:.0f}%) of a core in a generating "
            "process: its timing cannot be trusted; add --workers or lower the load"))
    elif cpu_max_percent is None:
        warnings.append(reason("cpu_unsampled",
                               "generator CPU was not sampled (window shorter than the 1 s sampling interval?)"))
    if dropped > 0:
        reasons.append(reason(
            "client_drops",
            f"{dropped} requests dropped client-side at the in-flight cap (max_in_flight={max_in_flight}): "
            "the server cannot keep up with this rate, or raise --max-in-flight"))
    if failed > 0:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
        warnings.append(reason("failures", f"{failed} requests failed ({kinds}); failures are excluded from "
                                           "latency_ms and count as over the bound in an SLO verdict"))
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
