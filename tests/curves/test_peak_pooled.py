"""The pooled confirmation of the peak search (loadgen.search.peak, `pooled=`): each end of the final bracket is
decided by ONE verdict over a number of runs fixed in advance. Pure: scripted outcomes and binomial counts, no sockets,
no sleeps."""

from __future__ import annotations

from loadgen.results.confidence import coin_flip_percentile, judge
from loadgen.search.peak import Probe, find_peak


class Pool:
    """pooled(rate, runs): passes iff rate <= limit; records every call (rate, runs handed over)."""

    def __init__(self, limit: float):
        self.limit = limit
        self.calls: list[tuple[float, list[Probe]]] = []

    def __call__(self, rate: float, runs: list[Probe]):
        self.calls.append((rate, list(runs)))
        ok = rate <= self.limit
        return ("pass" if ok else "fail"), {"message": f"pooled {'pass' if ok else 'fail'} at {rate:g}"}


def single(rate: float):
    """One run's verdict: passes up to 100, undecided up to 110, fails above."""
    if rate <= 100:
        return "pass", {}
    return ("undecided" if rate <= 110 else "fail"), {}


def test_each_end_is_judged_once_over_exactly_confirm_runs():
    pool = Pool(limit=104.0)
    res = find_peak(single, start_rps=50, growth=2, precision=0.05, pooled=pool, max_probes=40)
    assert res.status == "found" and res.confirm_rule == "pooled"
    judged = [rate for rate, _ in pool.calls]
    assert len(judged) == len(set(judged)) >= 2  # one verdict per rate, never re-judged with more runs
    for rate, runs in pool.calls:
        assert len(runs) == 3 and all(p.rate_rps == rate for p in runs)
        at_rate = [p for p in res.probes if p.rate_rps == rate]
        assert at_rate == runs  # nothing measured there beyond the fixed number
        assert [p.phase for p in at_rate].count("confirm") == 2  # the first came from the bracket or bisection
    # single runs pass only up to 100, the pooled verdict up to 104: the answer is the highest rate it confirmed
    assert 100 < res.peak_rps <= 104
    passed = {v.rate_rps for v in res.pooled_verdicts if v.passed}
    assert res.peak_rps in passed and res.upper_rps not in passed
    assert "pooled" in res.reason and res.to_dict()["pooled_verdicts"][0]["runs"] == 3


def test_runs_of_a_rate_that_passed_pooled_are_not_reported_as_non_monotone():
    # the two confirmation runs at 100 are undecided on their own, the pooled verdict there passes; then the rate above
    # (103.125) passes its pooled verdict too and becomes the answer: 100's runs are below it, but 100 did pass
    seen: dict[float, int] = {}

    def measure(rate: float):
        k = seen[rate] = seen.get(rate, 0) + 1
        if rate == 100:
            return ("pass" if k == 1 else "undecided"), {}
        return single(rate)

    res = find_peak(measure, start_rps=50, growth=2, precision=0.05, pooled=Pool(limit=104.0), max_probes=40)
    assert res.status == "found" and res.peak_rps == 103.125
    assert [p.outcome for p in res.probes if p.rate_rps == 100] == ["pass", "undecided", "undecided"]
    assert res.non_monotone == []


def test_the_number_of_runs_is_fixed_before_any_is_seen():
    # the first two runs at 100 pass: a majority of three is reached after two, the pooled rule measures the third
    def measure(rate: float):
        return ("pass" if rate <= 100 else "fail"), {}

    pool = Pool(limit=100.0)
    pooled = find_peak(measure, start_rps=100, growth=2, precision=0.05, pooled=pool, min_rps=1)
    majority = find_peak(measure, start_rps=100, growth=2, precision=0.05, min_rps=1)
    assert pooled.peak_rps == majority.peak_rps == 100
    assert len([p for p in pooled.probes if p.rate_rps == 100]) == 3
    assert len([p for p in majority.probes if p.rate_rps == 100]) == 2
    # confirm=1: no confirmation at all, pooled or not
    lone = find_peak(measure, start_rps=100, growth=2, precision=0.05, pooled=pool, confirm=1, min_rps=1)
    assert lone.confirm_rule == "majority" and len([p for p in lone.probes if p.rate_rps == 100]) == 1


def test_a_rate_above_that_failed_outright_is_not_pooled_again():
    def measure(rate: float):
        return ("pass" if rate <= 100 else "fail"), {}

    pool = Pool(limit=100.0)
    res = find_peak(measure, start_rps=50, growth=2, precision=0.05, pooled=pool)
    assert res.status == "found" and 95 <= res.peak_rps <= 100
    assert [rate for rate, _ in pool.calls] == [res.peak_rps]
    assert [p.phase for p in res.probes if p.rate_rps == res.upper_rps] == ["bisect"]


def counts_measure(overs: dict[float, list[int]], n: int = 1100):
    """measure() whose runs have n queries and the scripted numbers over the bound (the last one repeats; rates not
    listed: none over); outcome = the binomial verdict on p99 at 99%. pooled(): the same verdict over the runs' sum."""
    seen: dict[float, int] = {}

    def measure(rate: float):
        script = overs.get(rate, [0])
        k = seen.get(rate, 0)
        seen[rate] = k + 1
        over = script[min(k, len(script) - 1)]
        return judge(n, over, 99.0).verdict, {"n": n, "over": over}

    def pooled(rate: float, runs: list[Probe]):
        v = judge(sum(p.info["n"] for p in runs), sum(p.info["over"] for p in runs), 99.0)
        return v.verdict, {"message": v.message, "over": v.over}

    return measure, pooled


def test_a_burst_in_one_run_counts_against_the_rate_instead_of_being_outvoted():
    # at 100 req/s two runs see 3 of 1100 over the bound (a pass each) and one sees a burst of 30 (a failure): a
    # majority of verdicts confirms 100; one verdict over the 3300 queries (36 over, at most 19 allowed) does not pass
    scripted = {100.0: [3, 3, 30], 200.0: [500], 150.0: [200], 125.0: [80], 112.5: [40], 106.25: [40]}
    measure, _ = counts_measure(scripted)
    majority = find_peak(measure, start_rps=50, growth=2, precision=0.1)
    assert majority.peak_rps == 100 and majority.to_dict()["confirmed_passes"] == 2
    measure, pooled = counts_measure(scripted)
    res = find_peak(measure, start_rps=50, growth=2, precision=0.1, pooled=pooled, max_probes=40)
    assert res.status == "found" and res.peak_rps < 100
    at_100 = [v for v in res.pooled_verdicts if v.rate_rps == 100]
    assert len(at_100) == 1 and at_100[0].outcome == "undecided" and at_100[0].info["over"] == 36
    assert res.upper_rps == 100 and any(v.rate_rps == res.peak_rps and v.passed for v in res.pooled_verdicts)


def test_the_bracket_is_steered_by_runs_on_course_to_pass_the_pooled_verdict():
    # between 100 and 110 a run is undecided but on course to pass the pooled verdict (the caller says so in
    # info["steer"]); the pooled verdict passes up to 108
    def measure(rate: float):
        if rate <= 100:
            return "pass", {}
        if rate <= 110:
            return "undecided", {"steer": "pass"}
        return "fail", {}

    res = find_peak(measure, start_rps=50, growth=2, precision=0.05, pooled=Pool(limit=108.0), max_probes=40)
    assert res.status == "found" and 100 < res.peak_rps <= 108
    assert all(p.outcome == "undecided" for p in res.probes if p.rate_rps == res.peak_rps)
    # a run budget spent before confirmation reports a rate whose own verdict passed, never one only on course
    cut = find_peak(measure, start_rps=50, growth=2, precision=0.05, pooled=Pool(limit=108.0), max_probes=6)
    assert cut.status == "probe_limit" and cut.peak_rps is not None and cut.peak_rps <= 100


def test_peak_documents_state_the_rule_and_old_ones_still_read():
    from loadgen.results.schema import validate_document
    from tests.curves.peak_sim import search

    pooled = search(0, "pooled").doc
    assert pooled["confirm_rule"] == "pooled" and pooled["pooled_verdicts"]
    assert all(v["runs"] == 3 and len(v["files"]) == 3 for v in pooled["pooled_verdicts"])
    assert "ONE verdict over the first 3 runs" in pooled["method"]
    held = f"at least 2514 queries: the bound held to about p{coin_flip_percentile(3 * 838, 99.0):.2f}"
    assert any(held in n for n in pooled["notes"])
    majority = search(0, "majority").doc
    assert majority["confirm_rule"] == "majority" and majority["pooled_verdicts"] == []
    assert majority["confirmation"]["rule"] == "majority" and majority["confirmation"]["pooled"] is None
    # a document written before the pooled rule (no confirm_rule, pooled_verdicts) reads as the majority rule
    old = {k: v for k, v in majority.items() if k not in ("confirm_rule", "pooled_verdicts")}
    old["confirmation"] = {k: v for k, v in old["confirmation"].items() if k not in ("rule", "pooled")}
    model = validate_document(old)
    assert model.confirm_rule == "majority" and model.pooled_verdicts == []


def test_a_budget_spent_confirming_the_rate_above_reports_the_confirmed_answer_not_a_lucky_run_above_it():
    # measured on a real bursty server: 122.9 passed its pooled verdict, then the budget ran out at 126.1, which had
    # one bursty run (undecided) and one passing: the answer is 122.9, not 126.1
    def measure(rate: float):
        if rate <= 123:
            return "pass", {}
        if rate <= 127:
            measure.k += 1
            return ("pass" if measure.k % 2 == 0 else "undecided"), {}
        return "fail", {}

    measure.k = 0
    full = find_peak(measure, start_rps=100, growth=1.25, precision=0.025, pooled=Pool(limit=123.0), max_probes=60)
    assert full.status == "found" and full.peak_rps <= 123
    for budget in range(len(full.probes) - 1, 3, -1):
        measure.k = 0
        cut = find_peak(
            measure, start_rps=100, growth=1.25, precision=0.025, pooled=Pool(limit=123.0), max_probes=budget
        )
        assert cut.status == "probe_limit"
        confirmed = [v.rate_rps for v in cut.pooled_verdicts if v.passed]
        if confirmed:
            assert cut.peak_rps == max(confirmed) and "best confirmed rate" in cut.reason
        else:
            assert cut.peak_rps is None or cut.peak_rps <= 123


def test_the_answer_says_why_the_rate_above_it_did_not_pass_its_pooled_verdict():
    res = find_peak(single, start_rps=50, growth=2, precision=0.05, pooled=Pool(limit=100.0), max_probes=40)
    assert res.status == "found" and res.upper_rps in {v.rate_rps for v in res.pooled_verdicts}
    assert "no reason recorded" not in res.reason and f"pooled fail at {res.upper_rps:g}" in res.reason
