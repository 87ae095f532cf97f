"""loadgen.results.bursts: the design effect of queries over the bound that come in bursts (pure; no sockets, no
sleeps), and the verdict weighed by it (loadgen.results.confidence.judge, analysis.judge_slo)."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.results import bursts as B
from loadgen.results.analysis import judge_slo
from loadgen.results.confidence import judge
from loadgen.results.recorded import new_histogram, record_many


@pytest.mark.parametrize("df,exact", [(1, 6.635), (2, 9.210), (9, 21.666), (29, 49.588), (59, 87.166)])
def test_chi2_quantile_is_within_a_percent_of_the_tables(df, exact):
    assert B.chi2_quantile(0.99, df) == pytest.approx(exact, rel=0.01)


def test_dispersion_by_hand():
    # 3 of 300 over, all in one window of 100: p = 0.01, X2 = (3-1)^2/0.99 + 2 * 1/0.99 = 6/0.99, D = X2 / 2
    index, k = B.dispersion([(100, 3), (100, 0), (100, 0)])
    assert k == 3 and index == pytest.approx(6 / 0.99 / 2)
    assert B.dispersion([(100, 0), (100, 0)]) is None  # nothing over: no share to disperse
    assert B.dispersion([(100, 5)]) is None  # one window
    assert B.dispersion([(0, 0), (100, 1), (0, 0)]) is None  # empty windows do not count


def test_independent_overs_keep_the_exact_verdict_bursty_ones_are_weighed_down():
    rng = np.random.default_rng(7)
    # 200 runs of 30 one-second windows of 100 queries, each over the bound independently with p = 0.01
    flagged = sum(B.design_effect([(100, int(c)) for c in rng.binomial(100, 0.01, 30)]) > 1.0 for _ in range(200))
    assert flagged <= 8  # ~1% by construction (the test's 99% quantile); 8 of 200 would be 4%
    # the same 30 overs in three bursts of ten
    bursty = [(100, 10 if i in (3, 17, 25) else 0) for i in range(30)]
    d = B.design_effect(bursty)
    assert d > 5
    assert d == round(B.dispersion(bursty)[0], 3)  # the dispersion index, rounded once at the source


def test_a_burst_turns_a_pass_into_an_undecided_verdict_and_the_ucb_agrees():
    # 3,000 queries, 12 over a 100-ms bound: a binomial pass (at most 18 allowed); the same 12 in two seconds are
    # ~tens of independent pieces of evidence, not 3,000
    lat = [0.02] * 2988 + [0.5] * 12
    h = new_histogram()
    record_many(h, [int(x * 1e6) for x in lat])
    plain = judge_slo(h, 0, 100.0)
    assert plain["verdict"] == "pass" and plain["design_effect"] == 1.0 and plain["ucb_ms"] <= 100.0
    windows = [(100, 6 if i in (4, 20) else 0) for i in range(30)]
    d = B.design_effect(windows)
    assert d > 3
    v = judge_slo(h, 0, 100.0, design_effect=d)
    assert v["verdict"] != "pass" and v["samples"] == 3000 and v["over"] == 12
    assert v["effective_samples"] == int(3000 / d) and v["design_effect"] == pytest.approx(d, rel=1e-3)
    assert "bursts" in v["message"]
    assert v["ucb_ms"] is None or v["ucb_ms"] > 100.0  # pass <=> UCB <= bound, with the design effect too
    assert v["queries_needed"] is None or v["queries_needed"] > 3000


@pytest.mark.parametrize("n,over,d", [(5000, 10, 2.0), (5000, 30, 1.5), (20000, 100, 4.0), (800, 0, 3.0)])
def test_pass_and_ucb_agree_under_any_design_effect(n, over, d):
    h = new_histogram()
    record_many(h, [20_000] * (n - over) + [500_000] * over)
    v = judge_slo(h, 0, 100.0, design_effect=d)
    assert v["verdict"] == judge(int(n / d), -(-over * 1000 // int(d * 1000)), 99.0).verdict
    assert (v["verdict"] == "pass") == (v["ucb_ms"] is not None and v["ucb_ms"] <= 100.0)


def test_judge_refuses_a_design_effect_below_one():
    with pytest.raises(ValueError):
        judge(100, 1, 99.0, design_effect=0.5)


def test_windows_of_reads_only_measured_seconds_with_counts():
    res = {
        "timeseries": [
            {"t_s": 0, "phase": "warmup", "judged": 50, "over_slo": 9},
            {"t_s": 1, "phase": "measure", "judged": 100, "over_slo": 2},
            {"t_s": 2, "phase": "measure", "p99_ms": 3.0},  # recorded without an SLO
            {"t_s": 3, "phase": "drain", "judged": 4, "over_slo": 4},
        ]
    }
    assert B.windows_of(res) == [(100, 2)]
    assert B.windows_of({}) == []
