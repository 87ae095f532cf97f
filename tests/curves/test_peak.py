"""Peak search (loadgen.search.peak) on simulated latency curves: pure, no sockets, no sleeps."""

from __future__ import annotations

import random

import pytest

from loadgen.search.peak import find_peak
from tests.curves.fakes import fake_measure


def threshold_measure(threshold: float, calls: list | None = None):
    def measure(rate: float):
        if calls is not None:
            calls.append(rate)
        ok = rate <= threshold
        return ok, {"reason": f"p99 {'ok' if ok else 'too high'} at {rate:.1f}"}

    return measure


@pytest.mark.parametrize("threshold", [7.3, 123.4, 999.0])
@pytest.mark.parametrize("start", [1.0, 10.0, 5000.0])
def test_monotone_curve_found_within_precision(threshold, start):
    res = find_peak(threshold_measure(threshold), start_rps=start, precision=0.05, min_rps=0.01)
    assert res.status == "found"
    assert res.peak_rps is not None
    assert res.peak_rps <= threshold  # the answer is a rate that passed
    assert res.peak_rps >= threshold * (1 - 0.05)
    assert (res.upper_rps - res.lower_rps) / res.upper_rps <= 0.05
    assert res.upper_rps > threshold  # and the bracket's top really failed
    assert res.probes[0].rate_rps == start and res.probes[0].phase == "bracket"
    assert any(p.phase == "bisect" for p in res.probes) or res.upper_rps / res.lower_rps <= 1.05


def test_bracket_doubles_then_bisects():
    calls: list[float] = []
    res = find_peak(threshold_measure(100.0, calls), start_rps=10, precision=0.1, growth=2)
    assert calls[:5] == [10, 20, 40, 80, 160]  # bracket: x2 while passing
    assert calls[5] == 120  # then bisect between 80 and 160
    assert res.status == "found" and 90 <= res.peak_rps <= 100


def test_bracket_down_when_start_fails():
    calls: list[float] = []
    res = find_peak(threshold_measure(30.0, calls), start_rps=100, precision=0.05)
    assert calls[:3] == [100, 50, 25]
    assert res.status == "found" and 30 * 0.95 <= res.peak_rps <= 30


@pytest.mark.parametrize("seed", range(8))
def test_noisy_curve_result_within_tolerance(seed):
    rng = random.Random(seed)
    threshold = 250.0

    def measure(rate: float):
        # a noisy p99: the pass/fail boundary wobbles by ~3% from run to run
        return rate * (1 + rng.gauss(0, 0.03)) <= threshold, {}

    res = find_peak(measure, start_rps=20, precision=0.05, max_probes=30)
    assert res.status == "found"
    assert abs(res.peak_rps - threshold) / threshold <= 0.15
    # whatever the noise did, the reported peak is a probed rate that passed
    assert any(p.passed and p.rate_rps == res.peak_rps for p in res.probes)


def test_realistic_simulated_server_curve():
    # the fake server's p99 crosses 50 ms between 300 and 360 req/s (see fakes.fake_result)
    res = find_peak(fake_measure(50.0), start_rps=25, precision=0.05)
    assert res.status == "found"
    assert 200 < res.peak_rps < 360
    ok, _ = fake_measure(50.0)(res.peak_rps)
    assert ok


def test_never_passing_gives_none_with_reason():
    def measure(rate: float):
        return False, {"reason": "INVALID run: generator CPU 97% > 90%"}

    res = find_peak(measure, start_rps=16, min_rps=1, precision=0.05)
    assert res.peak_rps is None
    assert res.status == "never_passed"
    assert "generator CPU" in res.reason and "1" in res.reason
    assert min(p.rate_rps for p in res.probes) == 1
    assert res.to_dict()["peak_rps"] is None


def test_always_passing_is_capped_and_flagged():
    res = find_peak(lambda r: (True, {}), start_rps=10, max_rps=500, precision=0.05)
    assert res.peak_rps == 500
    assert res.status == "capped" and res.capped
    assert "cap" in res.reason
    assert res.probes[-1].rate_rps == 500
    assert res.to_dict()["capped"] is True


def test_probe_limit_keeps_best_bracket():
    res = find_peak(threshold_measure(100.0), start_rps=10, precision=0.001, max_probes=6)
    assert res.status == "probe_limit"
    assert len(res.probes) == 6
    assert res.peak_rps is not None and res.peak_rps <= 100


def test_probe_info_is_kept():
    res = find_peak(threshold_measure(40.0), start_rps=10, precision=0.2)
    d = res.to_dict()
    assert all("reason" in p["info"] for p in d["probes"])
    assert d["relative_gap"] <= 0.2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(start_rps=0),
        dict(start_rps=1, precision=0),
        dict(start_rps=1, growth=1),
        dict(start_rps=1, min_rps=2),
        dict(start_rps=1, max_rps=-1),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        find_peak(lambda r: (True, {}), **kwargs)


def scripted(table):
    """measure() from {rate: [outcome, outcome, ...]} consumed in order (the last one repeats)."""
    seen: dict[float, int] = {}

    def measure(rate: float):
        outs = table(rate) if callable(table) else table[rate]
        k = seen.get(rate, 0)
        seen[rate] = k + 1
        return outs[min(k, len(outs) - 1)], {"reason": f"scripted {rate:g}"}

    return measure


def test_confirmation_majority_refutes_a_lucky_pass():
    # 100 passes once by luck, then fails twice: the answer falls back to the next rate below that passed
    def table(rate):
        if rate <= 90:
            return ["pass"]
        if rate == 100:
            return ["pass", "fail", "fail"]
        return ["fail"]

    res = find_peak(scripted(table), start_rps=50, growth=2, precision=0.1, max_probes=30)
    assert res.status == "found" and res.peak_rps is not None and res.peak_rps <= 90
    assert 100 not in [c.rate_rps for c in res.confirmations]
    runs = [p for p in res.probes if p.rate_rps == res.peak_rps]
    assert len(runs) >= 2 and sum(p.passed for p in runs) * 2 > len(runs)
    assert res.to_dict()["confirmed_passes"] == sum(p.passed for p in runs)


def test_no_confirmation_needed_with_confirm_1():
    calls: list[float] = []
    res = find_peak(threshold_measure(100.0, calls), start_rps=10, precision=0.1, growth=2, confirm=1)
    assert len(calls) == len(set(calls)) and res.status == "found"


def test_low_rates_worse_than_mid_rates_the_search_looks_above_before_concluding():
    # low rates fail (idle CPUs wake slowly), mid rates pass, high rates fail
    def table(rate):
        return ["fail"] if rate < 20 or rate > 200 else ["pass"]

    res = find_peak(scripted(table), start_rps=10, growth=2, precision=0.05, min_rps=2, max_probes=40)
    assert res.status == "found" and 190 <= res.peak_rps <= 200
    assert sorted(n["rate_rps"] for n in res.non_monotone) == [2, 2.5, 5, 10]
    # still nothing anywhere: never_passed, naming the lowest rate tried
    res = find_peak(scripted(lambda r: ["fail"]), start_rps=10, growth=2, min_rps=2, max_rps=100)
    assert res.status == "never_passed" and "down to 2 req/s" in res.reason
    assert max(p.rate_rps for p in res.probes) == 80  # looked 3 steps above the start
    # a monotone curve pays nothing for this
    calls: list[float] = []
    find_peak(threshold_measure(30.0, calls), start_rps=100, precision=0.05)
    assert max(calls) == 100


def test_generator_limited_top_is_reported_as_such_never_as_a_server_failure():
    # the server would pass up to 300, but the generator cannot offer more than 120
    def table(rate):
        if rate > 120:
            return ["generator_limited"]
        return ["pass"]

    res = find_peak(scripted(table), start_rps=50, growth=2, precision=0.05, max_probes=30)
    assert res.status == "generator_limited" and res.peak_rps is not None and 114 <= res.peak_rps <= 120
    assert res.generator_ceiling_rps is not None and res.generator_ceiling_rps > 120
    assert "generator" in res.reason and "--workers" in res.reason
    everything = find_peak(scripted(lambda r: ["generator_limited"]), start_rps=50, min_rps=10)
    assert everything.status == "generator_limited" and everything.peak_rps is None


def test_undecided_is_not_a_pass():
    def table(rate):
        return ["pass"] if rate <= 50 else (["undecided"] if rate <= 80 else ["fail"])

    res = find_peak(scripted(table), start_rps=40, growth=2, precision=0.05, max_probes=30)
    assert res.status == "found" and 47.5 <= res.peak_rps <= 50


@pytest.mark.parametrize("seed", range(6))
def test_noisy_verdicts_with_confirmation_stay_close(seed):
    rng = random.Random(seed)
    threshold = 250.0

    def measure(rate: float):
        return rate * (1 + rng.gauss(0, 0.04)) <= threshold, {}

    res = find_peak(measure, start_rps=150, growth=1.25, precision=0.05, max_probes=30)
    assert res.status in ("found", "probe_limit")
    assert res.peak_rps is not None and abs(res.peak_rps - threshold) / threshold <= 0.15


def test_a_rate_above_the_answer_that_passes_by_majority_moves_the_answer_up():
    # 100 fails its first run by bad luck, then passes twice: it is judged by majority, like the answer
    def table(rate):
        if rate <= 100:
            return ["fail", "pass", "pass"] if rate == 100 else ["pass"]
        return ["fail"]

    res = find_peak(scripted(table), start_rps=50, growth=2, precision=0.05, max_probes=40)
    assert res.status == "found" and 95 <= res.peak_rps <= 100
    assert res.peak_rps == 100 or any(p.rate_rps == 100 and p.phase == "confirm" for p in res.probes)
    # the upper end of the final bracket failed by majority
    top = [p for p in res.probes if p.rate_rps == res.upper_rps]
    assert 2 * sum(p.passed for p in top) < len(top) or len(top) == 1 and not top[0].passed
    # without upper confirmation the unlucky first run at 100 would have capped the answer below it
    lone = find_peak(scripted(table), start_rps=50, growth=2, precision=0.05, max_probes=40, confirm_upper=False)
    assert lone.peak_rps < 100
