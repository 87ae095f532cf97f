"""How sure can we be about a percentile? Exact binomial statistics, pure (no I/O, no clocks).

The question a latency SLO asks is about the *true* percentile of the server's latency distribution, not the
one a finite run happened to see. Order statistics answer it without assuming any distribution:

- Each sample lies at or below the true p-quantile with probability p, independently, so the number of
  samples at or below it is Binomial(n, p). The k-th smallest sample X_(k) lies at or above the true quantile
  exactly when fewer than k samples lie below it: P(X_(k) >= q_p) = P(Bin(n, p) <= k - 1).
- **Upper confidence bound** (UCB) at confidence c: X_(k) for the smallest rank k with P(Bin(n, p) <= k - 1) >= c.
  With probability >= c the true percentile is at or below it. With too few samples no rank qualifies
  (p99 at 99% needs n >= 459): the percentile then has no upper bound yet.
- **Verdict against a bound B** (MLPerf LoadGen's early stopping): count t samples over B.
  If the true percentile sat exactly at B, overs would be Binomial(n, 1 - p). Seeing as few as t of them has
  probability P(Bin(n, 1 - p) <= t); when that is <= 1 - c the percentile meets B with confidence c ("pass").
  Symmetrically, P(Bin(n, 1 - p) >= t) <= 1 - c says it exceeds B with confidence c ("fail"). Otherwise the run
  is "undecided", and `queries_needed` says how many queries at the same over-rate would decide it.
  MLPerf's published figure: t = 0, p = 0.99, c = 0.99 needs 459 queries. Pass <=> UCB <= B (same event).

Counts can be large (10^6 samples): every tail is summed in log space over the terms that matter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import numpy as np

DEFAULT_CONFIDENCE = 0.99
Verdict = Literal["pass", "fail", "undecided"]
_MAX_QUERIES = 10**9
_SPAN_SD = 40.0


def _log_pmf(n: int, q: float, k: np.ndarray) -> np.ndarray:
    """log P(Bin(n, q) = k) for an array of k (0 <= k <= n), 0 < q < 1."""
    lg = np.vectorize(math.lgamma, otypes=[float])
    return (
        cast(np.ndarray, math.lgamma(n + 1) - lg(k + 1.0) - lg(n - k + 1.0))
        + k * math.log(q)
        + (n - k) * math.log1p(-q)
    )


def binom_cdf(t: int, n: int, q: float) -> float:
    """P(Bin(n, q) <= t), exact up to float rounding."""
    if t < 0:
        return 0.0
    if t >= n or q <= 0.0:
        return 1.0
    if q >= 1.0:
        return 0.0
    mean = n * q
    if t > mean:  # sum the shorter (upper) tail
        return max(0.0, 1.0 - binom_sf(t + 1, n, q))
    return _tail_sum(n, q, max(0, math.floor(mean - _SPAN_SD * _sd(n, q)) - 50), t)


def binom_sf(t: int, n: int, q: float) -> float:
    """P(Bin(n, q) >= t)."""
    if t <= 0:
        return 1.0
    if t > n or q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    if t <= n * q:
        return max(0.0, 1.0 - binom_cdf(t - 1, n, q))
    return _tail_sum(n, q, t, min(n, math.ceil(n * q + _SPAN_SD * _sd(n, q)) + 50))


def _sd(n: int, q: float) -> float:
    return math.sqrt(n * q * (1.0 - q))


def _tail_sum(n: int, q: float, k0: int, k1: int) -> float:
    """sum_{k=k0..k1} P(Bin(n,q) = k). Callers clip the range to mean +- _SPAN_SD sd: beyond it every term
    is below exp(-_SPAN_SD^2 / 2) of the mode, far under float resolution."""
    if k1 < k0:
        return 0.0
    lp = _log_pmf(n, q, np.arange(k0, k1 + 1, dtype=float))
    m = float(lp.max())
    return float(min(1.0, math.exp(m) * np.exp(lp - m).sum()))


def _check(p: float, confidence: float) -> tuple[float, float]:
    if not 0.0 < p < 1.0:
        raise ValueError(f"percentile fraction must be in (0, 1), got {p!r} (99th percentile = 0.99)")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}")
    return p, confidence


def upper_rank(n: int, p: float, confidence: float = DEFAULT_CONFIDENCE) -> int | None:
    """1-based rank k of the sample that bounds the true p-quantile from above with `confidence`;
    None when n samples cannot bound it (too few)."""
    _check(p, confidence)
    if n <= 0:
        return None
    # P(Bin(n,p) <= k-1) >= c  <=>  P(Bin(n,1-p) >= n-k+1) >= c  <=>  P(Bin(n,1-p) <= n-k) <= 1-c.
    t = max_overs_to_pass(n, p, confidence)
    return None if t is None else n - t


def lower_rank(n: int, p: float, confidence: float = DEFAULT_CONFIDENCE) -> int | None:
    """1-based rank k of the sample that bounds the true p-quantile from below with `confidence`
    (largest k with P(Bin(n, p) >= k) >= c); None when n samples cannot bound it."""
    _check(p, confidence)
    if n <= 0:
        return None
    # P(Bin(n,p) >= k) = P(Bin(n,1-p) <= n-k) >= c: the smallest t = n-k with cdf(t) >= c.
    t = _smallest_t_with_cdf_at_least(n, 1.0 - p, confidence)
    k = n - t
    return k if k >= 1 else None


def max_overs_to_pass(n: int, p: float, confidence: float = DEFAULT_CONFIDENCE) -> int | None:
    """The largest count t of samples over a bound with which n samples still show, with `confidence`, that
    the true p-quantile meets the bound: max t with P(Bin(n, 1-p) <= t) <= 1 - c. None if even t = 0 fails."""
    _check(p, confidence)
    q, alpha = 1.0 - p, 1.0 - confidence
    if n <= 0 or binom_cdf(0, n, q) > alpha:
        return None
    lo, hi = 0, max(1, int(n * q) + 1)  # cdf(n*q) is ~0.5 > alpha, so the answer is below n*q + 1
    while hi - lo > 1:  # invariant: cdf(lo) <= alpha < cdf(hi)
        mid = (lo + hi) // 2
        if binom_cdf(mid, n, q) <= alpha:
            lo = mid
        else:
            hi = mid
    return lo


def _smallest_t_with_cdf_at_least(n: int, q: float, level: float) -> int:
    lo, hi = -1, n  # cdf(-1) = 0 < level <= cdf(n) = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if binom_cdf(mid, n, q) >= level:
            hi = mid
        else:
            lo = mid
    return hi


def min_queries(p: float, confidence: float = DEFAULT_CONFIDENCE, over_rate: float = 0.0, start: int = 0) -> int | None:
    """Fewest queries N (> start) with which a run whose share of samples over the bound is `over_rate` passes:
    P(Bin(N, 1-p) <= floor(over_rate * N)) <= 1 - c. None when over_rate >= 1 - p (it can never pass).
    (p=0.99, c=0.99, over_rate=0 -> 459, MLPerf's figure.)"""
    _check(p, confidence)
    if over_rate >= 1.0 - p:
        return None
    return _first_n(lambda n: binom_cdf(math.floor(over_rate * n + 1e-9), n, 1.0 - p) <= 1.0 - confidence, start)


def min_queries_to_fail(
    p: float, confidence: float = DEFAULT_CONFIDENCE, over_rate: float = 1.0, start: int = 0
) -> int | None:
    """Fewest queries N with which a run whose over-bound share is `over_rate` (> 1 - p) shows with
    `confidence` that the true percentile exceeds the bound. None when over_rate <= 1 - p."""
    _check(p, confidence)
    if over_rate <= 1.0 - p:
        return None
    return _first_n(lambda n: binom_sf(math.floor(over_rate * n + 1e-9), n, 1.0 - p) <= 1.0 - confidence, start)


def _first_n(ok: Callable[[int], bool], start: int = 0) -> int | None:  # a predicate on n, monotone up to ripples
    """Smallest n > start with ok(n) (bisection after doubling; the floor in the predicates makes it ripple
    slightly, so the answer is the first n found that satisfies it, never one that does not)."""
    lo, step = start, 1
    hi = start + step
    while not ok(hi):
        lo = hi
        step *= 2
        hi = start + step
        if hi > _MAX_QUERIES:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class PercentileVerdict:
    """Whether the true p-quantile meets `bound` with `confidence`, from n samples of which `over` exceed it."""

    verdict: Verdict
    percentile: float  # e.g. 99.0
    confidence: float
    samples: int
    over: int
    max_over_to_pass: int | None  # with these n samples, at most this many may exceed the bound to pass
    queries_needed: int | None  # undecided: total queries that would decide it at the same over-rate
    message: str
    design_effect: float = 1.0  # > 1: overs in bursts, the verdict weighed n / D queries (loadgen.results.bursts)
    effective_samples: int | None = None  # n / D when design_effect > 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def effective_counts(n: int, over: int, design_effect: float) -> tuple[int, int]:
    """(queries, over the bound) that n queries with `over` over weigh as when their overs came in bursts with this
    design effect (loadgen.results.bursts): n / D and over / D, rounded against passing."""
    n_e = max(1, int(n / design_effect))
    return n_e, min(n_e, math.ceil(over / design_effect - 1e-9))


def judge(
    n: int,
    over: int,
    percentile: float,
    confidence: float = DEFAULT_CONFIDENCE,
    bound_label: str = "the bound",
    design_effect: float = 1.0,
) -> PercentileVerdict:
    """Three-way verdict (see module docstring). `percentile` in percent (99 = p99).

    design_effect D > 1 (loadgen.results.bursts: the overs came in bursts): the n queries carry the evidence of
    n / D independent ones, over / D of them over the bound; the verdict is the binomial one on those (rounded
    against passing), and `queries_needed` is in real queries."""
    if not 0 <= over <= max(n, 0):
        raise ValueError(f"over ({over}) must be between 0 and n ({n})")
    if design_effect < 1.0 or not math.isfinite(design_effect):
        raise ValueError(f"design_effect must be a finite number >= 1, got {design_effect}")
    if design_effect > 1.0 and n > 0:
        n_e, over_e = effective_counts(n, over, design_effect)
        v = judge(n_e, over_e, percentile, confidence, bound_label)
        note = (
            f" [the queries over {bound_label} came in bursts (dispersion {design_effect:.1f}x binomial across "
            f"1-s windows): judged as {n_e} independent queries with {over_e} over]"
        )
        t_pass = None if v.max_over_to_pass is None else math.floor(v.max_over_to_pass * design_effect)
        need = None if v.queries_needed is None else math.ceil(v.queries_needed * design_effect)
        return PercentileVerdict(
            v.verdict, percentile, confidence, n, over, t_pass, need, v.message + note, design_effect, n_e
        )
    p = percentile / 100.0
    _check(p, confidence)
    name = f"p{percentile:g}"
    conf = f"{confidence:.0%}" if round(confidence * 100, 6) == int(confidence * 100) else f"{confidence:.1%}"
    q, alpha = 1.0 - p, 1.0 - confidence
    t_pass = max_overs_to_pass(n, p, confidence) if n > 0 else None
    if n > 0 and binom_cdf(over, n, q) <= alpha:
        return PercentileVerdict(
            "pass",
            percentile,
            confidence,
            n,
            over,
            t_pass,
            None,
            f"{name} meets {bound_label} with {conf} confidence: {over} of {n} over it (at most {t_pass} allowed)",
        )
    if n > 0 and binom_sf(over, n, q) <= alpha:
        return PercentileVerdict(
            "fail",
            percentile,
            confidence,
            n,
            over,
            t_pass,
            None,
            f"{name} exceeds {bound_label} with {conf} confidence: {over} of {n} over it ({over / n:.2%} > {q:.2%})",
        )
    rate = over / n if n > 0 else 0.0
    need = min_queries(p, confidence, rate, n) if rate < q else min_queries_to_fail(p, confidence, rate, n)
    if need is None:
        msg = (
            f"{name} is too close to {bound_label} to decide: {over} of {n} over it ({rate:.2%}, "
            f"the bound allows {q:.2%}); no number of queries at this rate decides it"
        )
    else:
        msg = (
            f"undecided at {conf} confidence: {over} of {n} over {bound_label}"
            + (f" (at most {t_pass} allowed to pass); " if t_pass is not None else "; ")
            + f"about {need} queries at the same over-rate ({need - n} more) would decide it"
        )
    return PercentileVerdict("undecided", percentile, confidence, n, over, t_pass, need, msg)


def coin_flip_percentile(n: int, percentile: float, confidence: float = DEFAULT_CONFIDENCE) -> float | None:
    """The percentile that a run of n queries, judged against a bound on `percentile` with `confidence`, in effect
    holds to the bound: such a run passes as often as not when the *true* share over the bound is q50, the share at
    which Bin(n, q50) <= max_overs_to_pass half the time; returns 100 (1 - q50). It tends to `percentile` as n grows.
    (p99 at 99%: 1,100 queries -> ~p99.67; 3,750 queries -> ~p99.37.) None when n queries cannot pass at all.

    This is why a verdict from short runs sits below one from long runs (inferload's peak probes against a 30-s MLPerf
    LoadGen run): both are honest 99% statements, but the shorter run needs a clearer margin to make it."""
    p = percentile / 100.0
    t = max_overs_to_pass(n, p, confidence)
    if t is None:
        return None
    lo, hi = 0.0, 1.0 - p  # cdf(t; q) decreases in q: >= 0.5 at q -> 0, < 0.5 at q = 1 - p (t is below the mean)
    for _ in range(60):
        mid = (lo + hi) / 2
        if binom_cdf(t, n, mid) >= 0.5:
            lo = mid
        else:
            hi = mid
    return 100.0 * (1.0 - (lo + hi) / 2)
