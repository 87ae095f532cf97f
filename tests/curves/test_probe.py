"""One probe (loadgen.search.probe): sizing, the generator retry, the undecided extension, pooled verdicts. Pure: the
load test is a simulation built through the real Recorder and build_result (tests.curves.fakes)."""

from __future__ import annotations

import math

import pytest

from loadgen.search.probe import ProbePlan, judge_runs, probe_with_retry, sample_target
from tests.curves.fakes import fake_result


def test_sample_target_and_durations():
    assert sample_target(99, 0.99) == 838
    assert sample_target(99, 0.99, slack=0.0) == 459
    plan = ProbePlan(slo_ms=50, min_duration_s=10, max_duration_s=60)
    assert plan.duration_for(1000) == 10  # at least --duration
    assert plan.duration_for(50) == math.ceil(838 / 50)
    assert plan.duration_for(5) == 60 and plan.shortfall(5) and "300" in plan.shortfall(5)
    assert plan.shortfall(50) is None
    assert plan.lowest_rate() == pytest.approx(459 / 60)


class Script:
    """run(rate, duration, seed, tag) returning scripted results; records every call."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    def __call__(self, rate, duration_s, seed, tag):
        self.calls.append((rate, duration_s, seed, tag))
        res = self.results[min(len(self.calls) - 1, len(self.results) - 1)]
        res = res(duration_s) if callable(res) else res
        return res, f"probe{'-' + tag if tag else ''}.json"


def test_pass_on_the_first_run():
    run = Script(lambda d: fake_result(100, duration_s=d))
    outcome, info = probe_with_retry(run, 100, ProbePlan(slo_ms=50), seed=7)
    assert outcome == "pass" and len(run.calls) == 1 and run.calls[0] == (100, 10.0, 7, "")
    assert info["verdict"]["verdict"] == "pass" and info["verdict"]["samples"] == 1000
    assert info["reason"]["code"] == "pass"


def test_generator_limited_is_measured_again_then_reported_as_such():
    gl = fake_result(100, cpu_percent=97.0)
    assert [r["code"] for r in gl["invalid_reasons"]] == ["generator_cpu"]
    run = Script(gl, gl)
    outcome, info = probe_with_retry(run, 100, ProbePlan(slo_ms=50), seed=1)
    assert outcome == "generator_limited" and [c[3] for c in run.calls] == ["", "retry"]
    assert run.calls[1][2] == 2  # another seed
    assert info["generator_rps"] == pytest.approx(100, rel=0.01) and "generator" in info["reason"]["message"]
    # a retry that succeeds gives the server's verdict
    run = Script(gl, lambda d: fake_result(100, duration_s=d))
    outcome, info = probe_with_retry(run, 100, ProbePlan(slo_ms=50))
    assert outcome == "pass" and info["files"] == ["probe.json", "probe-retry.json"]


def test_server_side_invalid_is_a_failure_not_a_retry():
    run = Script(fake_result(390, overload=True))
    outcome, info = probe_with_retry(run, 390, ProbePlan(slo_ms=50))
    assert outcome == "fail" and len(run.calls) == 1 and info["reason"]["code"] == "invalid"
    assert "dropped" in info["reason"]["message"]


def test_undecided_is_extended_and_pooled():
    # 300 req/s at a bound just above the p99: too close to decide with one run
    first = fake_result(300, duration_s=10, slo_ms=50)
    bound = first["latency_ms"]["p99"] * 1.02
    plan = ProbePlan(slo_ms=bound)
    v1 = judge_runs([first], plan)
    if v1["verdict"] != "undecided":
        pytest.skip(f"the simulation decided at once ({v1['verdict']})")
    run = Script(first, lambda d: fake_result(300, duration_s=d, seed=5))
    outcome, info = probe_with_retry(run, 300, plan)
    assert [c[3] for c in run.calls] == ["", "more"]
    assert info["pooled_runs"] == 2 and info["verdict"]["samples"] > v1["samples"]
    assert outcome == info["verdict"]["verdict"]
    # without extension the verdict stays undecided
    run = Script(first)
    outcome, _ = probe_with_retry(run, 300, ProbePlan(slo_ms=bound, extend=False))
    assert outcome == "undecided" and len(run.calls) == 1


def test_failures_count_against_the_slo():
    ok = fake_result(100, slo_ms=50)
    bad = fake_result(100, slo_ms=50, errors=40)  # 4% failed: p99 cannot meet any bound
    plan = ProbePlan(slo_ms=50)
    assert judge_runs([ok], plan)["verdict"] == "pass"
    assert judge_runs([bad], plan)["verdict"] == "fail"


def test_primary_attempt_is_the_run_before_any_extension():
    from loadgen.search.probe import primary_attempt

    first, retry, more = ({"tag": t, "file": f"p-{t}.json"} for t in ("first", "retry", "more"))
    assert primary_attempt({"attempts": [first, more]}) == "p-first.json"
    assert primary_attempt({"attempts": [first, retry, more]}) == "p-retry.json"
    assert primary_attempt({}) is None


def test_a_run_on_course_to_pass_the_pooled_verdict_steers_the_bracket_up():
    from loadgen.results.confidence import judge, max_overs_to_pass
    from loadgen.search.peaksearch import steer_for

    plan = ProbePlan(slo_ms=50)
    t3 = max_overs_to_pass(3 * 1100, 0.99)
    assert t3 == 19 and max_overs_to_pass(1100, 0.99) == 3
    # 6 of 1100 over: undecided alone; three such runs (18 of 3300) would pass pooled
    v = judge(1100, 6, 99.0).to_dict()
    assert v["verdict"] == "undecided" and steer_for("undecided", v, 3, plan) == "pass"
    # 7 of 1100: three such runs (21) would not
    v = judge(1100, 7, 99.0).to_dict()
    assert v["verdict"] == "undecided" and steer_for("undecided", v, 3, plan) == "undecided"
    assert steer_for("pass", judge(1100, 0, 99.0).to_dict(), 3, plan) == "pass"
    assert steer_for("fail", judge(1100, 40, 99.0).to_dict(), 3, plan) == "fail"
    assert steer_for("undecided", None, 3, plan) == "undecided"
    # 6 of 1100 in bursts (design effect 4): three such runs weigh as 825 queries with 5 over, which cannot pass
    # (at most 1 of 825 allowed), so the run does not steer the search up as the unweighed 6 of 1100 did
    v = judge(1100, 6, 99.0, design_effect=4.0).to_dict()
    assert v["verdict"] == "undecided" and v["effective_samples"] == 275
    assert max_overs_to_pass(825, 0.99) == 1
    assert steer_for("undecided", v, 3, plan) == "undecided"
