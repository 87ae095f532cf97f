"""loadgen.results.confidence against exact binomial arithmetic (fractions) and MLPerf LoadGen's published figure."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from loadgen.results import confidence as C


def exact_cdf(t: int, n: int, q: Fraction) -> Fraction:
    return sum((math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(t + 1)), Fraction(0))


@pytest.mark.parametrize(
    "t,n,q",
    [
        (0, 459, "1/100"),
        (3, 1000, "1/100"),
        (10, 1000, "1/100"),
        (20, 1000, "1/100"),
        (5, 200, "1/20"),
        (150, 300, "1/2"),
        (0, 1, "1/2"),
        (7, 7, "1/3"),
    ],
)
def test_cdf_and_sf_are_exact(t, n, q):
    qf = Fraction(q)
    assert C.binom_cdf(t, n, float(qf)) == pytest.approx(float(exact_cdf(t, n, qf)), rel=1e-9, abs=1e-15)
    assert C.binom_sf(t, n, float(qf)) == pytest.approx(float(1 - exact_cdf(t - 1, n, qf)), rel=1e-9, abs=1e-15)


def test_mlperf_early_stopping_figure():
    # MLPerf LoadGen: with no query over the bound, 459 queries show p99 <= bound with 99% confidence
    assert C.min_queries(0.99, 0.99, 0.0) == 459
    assert C.upper_rank(458, 0.99) is None and C.upper_rank(459, 0.99) == 459
    assert 0.99**459 <= 0.01 < 0.99**458


def test_max_overs_is_the_exact_boundary():
    for n in (459, 1000, 1200, 5000):
        t = C.max_overs_to_pass(n, 0.99, 0.99)
        assert float(exact_cdf(t, n, Fraction(1, 100))) <= 0.01 < float(exact_cdf(t + 1, n, Fraction(1, 100)))


def test_upper_bound_covers_the_true_quantile_at_least_as_often_as_promised():
    # Simulation: exponential latencies, true p99 known; the UCB must cover it in >= ~99% of trials and the
    # LCB must stay below it likewise (exact for continuous distributions: coverage >= c by construction).
    rng = np.random.default_rng(7)
    n, trials = 1000, 2000
    true_p99 = -math.log(0.01)
    ku, kl = C.upper_rank(n, 0.99), C.lower_rank(n, 0.99)
    x = np.sort(rng.exponential(size=(trials, n)), axis=1)
    cover_u = float((x[:, ku - 1] >= true_p99).mean())
    cover_l = float((x[:, kl - 1] <= true_p99).mean())
    # binomial sampling error of a 99% coverage over 2000 trials: sd 0.22%; allow 3 sd
    assert cover_u >= 0.99 - 3 * math.sqrt(0.99 * 0.01 / trials)
    assert cover_l >= 0.99 - 3 * math.sqrt(0.99 * 0.01 / trials)
    assert kl < 990 < ku


def test_judge_three_ways_and_queries_needed():
    assert C.judge(1200, 4, 99).verdict == "pass"
    assert C.judge(1200, 5, 99).verdict == "undecided"
    v = C.judge(1200, 30, 99)
    assert v.verdict == "fail" and "exceeds" in v.message
    u = C.judge(100, 0, 99)
    assert u.verdict == "undecided" and u.queries_needed == 459 and "359 more" in u.message
    # an over-rate of exactly the allowed share can never be decided
    e = C.judge(1200, 12, 99)
    assert e.verdict == "undecided" and e.queries_needed is None
    # queries_needed is the first n at which the same over-rate passes
    v = C.judge(1000, 5, 99)
    need = v.queries_needed
    assert v.verdict == "undecided" and need is not None and need > 1000
    t_need = math.floor(0.005 * need + 1e-9)
    assert C.binom_cdf(t_need, need, 0.01) <= 0.01
    # to show a failure, the over-rate must clearly exceed 1%
    f = C.judge(300, 6, 99)
    assert f.verdict == "undecided" and f.queries_needed is not None and f.queries_needed > 300
    assert C.judge(f.queries_needed, math.ceil(0.02 * f.queries_needed), 99).verdict == "fail"


def test_pass_is_the_same_event_as_ucb_below_the_bound():
    rng = np.random.default_rng(3)
    for n in (460, 800, 1500):
        k = C.upper_rank(n, 0.99)
        for _ in range(50):
            x = np.sort(rng.exponential(size=n))
            bound = float(rng.choice(x[int(0.97 * n) :]))
            over = int((x > bound).sum())
            assert (C.judge(n, over, 99).verdict == "pass") == (x[k - 1] <= bound)


def test_large_counts_are_fast_and_sane():
    k = C.upper_rank(10**6, 0.99)
    assert 990_000 < k < 990_300
    assert C.lower_rank(10**6, 0.99) < 990_000
    with pytest.raises(ValueError):
        C.judge(10, 11, 99)
    with pytest.raises(ValueError):
        C.upper_rank(10, 1.5)
