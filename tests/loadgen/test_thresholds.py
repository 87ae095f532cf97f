"""CI thresholds: the --assert grammar, evaluation on real result documents, exit codes, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from loadgen.results.junit import junit_xml, write_junit
from loadgen.results.thresholds import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    ThresholdError,
    evaluate,
    exit_code,
    parse_threshold,
    parse_thresholds,
)
from tests.curves.fakes import fake_result


@pytest.fixture(scope="module")
def run() -> dict:
    return fake_result(100, seed=1, slo_ms=50.0, errors=2)  # VALID, 1000 requests, 2 failed (503)


@pytest.mark.parametrize(
    "text,metric,op,bound,unit",
    [
        ("p99<50ms", "p99", "<", 50.0, "ms"),
        ("p99 < 50", "p99", "<", 50.0, ""),
        ("p95<=0.05s", "p95", "<=", 50.0, "s"),
        ("p50 < 800us", "p50", "<", 0.8, "us"),
        ("p99.9<120ms", "p99.9", "<", 120.0, "ms"),
        ("P99_UCB<50MS", "p99_ucb", "<", 50.0, "ms"),
        ("errors<0.1%", "errors", "<", 0.001, "%"),
        ("errors<=0.002", "errors", "<=", 0.002, ""),
        ("throughput>=100rps", "throughput", ">=", 100.0, "rps"),
        ("goodput > 1e2 req/s", "goodput", ">", 100.0, "req/s"),
        ("peak==250", "peak", "==", 250.0, ""),
    ],
)
def test_grammar(text, metric, op, bound, unit):
    t = parse_threshold(text)
    assert (t.metric, t.op, t.unit) == (metric, op, unit)
    assert t.bound == pytest.approx(bound)


@pytest.mark.parametrize(
    "text,match",
    [
        ("p99 50ms", "expected <metric> <op> <number>"),
        ("p99<<50", "expected <metric> <op> <number>"),
        ("p98<50ms", "unknown metric 'p98'.*p99_ucb"),
        ("latency<5", "unknown metric"),
        ("p99<50rps", "unit 'rps' does not fit p99.*allowed: ms, s, us"),
        ("throughput>5ms", "unit 'ms' does not fit throughput"),
        ("errors<5", "between 0 and 1"),
        ("errors<150%", "between 0 and 1"),
        ("", "expected"),
    ],
)
def test_parse_errors_say_what_is_allowed(text, match):
    with pytest.raises(ThresholdError, match=match):
        parse_threshold(text)


def test_evaluation_reads_the_result_fields(run):
    assert run["valid"] and run["failed"] == 2
    p99, ucb = run["latency_ms"]["p99"], run["latency_ucb_ms"]["p99"]
    n = run["completed"] + run["failed"]
    ev = evaluate(
        run,
        parse_thresholds(
            [
                f"p99<{p99 + 0.01:.4f}ms",
                f"p99<{p99 - 0.01:.4f}ms",
                f"p99_ucb<={ucb}ms",
                f"p99_ucb<{ucb}ms",
                f"errors<={2 / n:.6f}",
                "errors<0.1%",
                f"throughput>={run['achieved_rate_rps']}rps",
                "p50<1s",
                "goodput>=1rps",
            ]
        ),
    )
    assert [o.status for o in ev.outcomes] == ["pass", "fail", "pass", "fail", "pass", "fail", "pass", "pass", "pass"]
    assert ev.outcomes[0].observed == pytest.approx(p99)
    assert ev.outcomes[5].observed == pytest.approx(2 / n)
    assert "0.2%" in ev.outcomes[5].message and "< 0.1%" in ev.outcomes[5].message
    assert ev.valid and exit_code(ev) == EXIT_FAIL
    assert exit_code(evaluate(run, parse_thresholds(["p99<1s", "errors<1%"]))) == EXIT_PASS


def test_goodput_counts_successes_within_the_slo(run):
    slo = run["slo"]
    g = evaluate(run, [parse_threshold("goodput>0")]).outcomes[0].observed
    assert g == pytest.approx((slo["samples"] - slo["over"]) / run["duration_s"])
    tight = fake_result(100, seed=1, slo_ms=5.0, errors=2)  # many successes over a 5 ms bound
    g2 = evaluate(tight, [parse_threshold("goodput>0")]).outcomes[0].observed
    assert g2 < tight["achieved_rate_rps"] - 1


def test_missing_bound_fails_and_wrong_kind_is_a_usage_error(run):
    thin = fake_result(10, seed=2, duration_s=3.0, slo_ms=50.0)  # 30 samples: no p99 upper bound
    assert thin["latency_ucb_ms"]["p99"] is None
    o = evaluate(thin, [parse_threshold("p99_ucb<1000ms")]).outcomes[0]
    assert o.status == "fail" and "too few samples" in o.message
    with pytest.raises(ThresholdError, match="run document has no peak"):
        evaluate(run, [parse_threshold("peak>=10")])
    with pytest.raises(ThresholdError, match="not an inferload"):
        evaluate({"hello": 1}, [])


def test_invalid_wins_over_failed_thresholds():
    bad = fake_result(400, seed=3, slo_ms=50.0, overload=True)
    assert not bad["valid"]
    ev = evaluate(bad, parse_thresholds(["p99<0.001ms", "throughput>=1rps"]))
    assert not ev.valid and ev.failed and exit_code(ev) == EXIT_INVALID
    assert any("dropped" in r for r in ev.invalid_reasons)


def test_peak_sweep_and_tune_documents():
    peak = {"kind": "peak", "peak_rps": 120.0, "status": "found"}
    assert exit_code(evaluate(peak, [parse_threshold("peak>=100rps")])) == EXIT_PASS
    assert exit_code(evaluate(peak, [parse_threshold("peak>=150rps")])) == EXIT_FAIL
    gen = {"kind": "peak", "peak_rps": 120.0, "status": "generator_limited", "reason": "generator at 90% CPU"}
    ev = evaluate(gen, [parse_threshold("peak>=100")])
    assert exit_code(ev) == EXIT_INVALID and "generator" in ev.invalid_reasons[0]
    sweep = {
        "kind": "sweep",
        "peak": {"rate_rps": 80.0},
        "points": [{"valid": True, "achieved_rps": 90.0}, {"valid": False, "achieved_rps": 300.0}],
    }
    ev = evaluate(sweep, parse_thresholds(["peak>=80", "throughput<100"]))
    assert [o.observed for o in ev.outcomes] == [80.0, 90.0] and exit_code(ev) == EXIT_PASS
    tune = {"kind": "tune", "recommended_pooled": {"peak_rps": 55.5}}
    assert evaluate(tune, [parse_threshold("peak>50")]).outcomes[0].status == "pass"
    none = {"kind": "tune", "recommended_pooled": None}
    assert evaluate(none, [parse_threshold("peak>50")]).outcomes[0].status == "fail"
    tune["recommended_pooled"]["max_throughput_rps"] = 90.0
    assert [o.status for o in evaluate(tune, parse_thresholds(["throughput>=80", "throughput>=100"])).outcomes] == [
        "pass",
        "fail",
    ]


def test_a_metric_the_document_lacks_is_refused_before_the_run():
    assert [t.metric for t in parse_thresholds(["peak>1", "throughput>1"], kind="tune")] == ["peak", "throughput"]
    with pytest.raises(ThresholdError, match="a peak document has no p99"):
        parse_thresholds(["p99<50ms"], kind="peak")
    with pytest.raises(ThresholdError, match="a run document has no peak"):
        parse_thresholds(["errors<1%", "peak>1"], kind="run")


def test_junit_xml_round_trips(tmp_path, run):
    ev = evaluate(run, parse_thresholds(["p99<1s", "errors<0.1%"]))
    path = tmp_path / "out" / "junit.xml"
    write_junit(path, ev, source="run.json")
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert (
        suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "0"
    )
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["validity", "p99<1s", "errors<0.1%"]
    assert cases[1].find("failure") is None
    fail = cases[2].find("failure")
    assert fail is not None and "errors = 0.2%" in (fail.get("message") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"document_kind": "run", "source": "run.json"}

    bad = fake_result(400, seed=3, slo_ms=50.0, overload=True)
    root = ET.fromstring(junit_xml(evaluate(bad, parse_thresholds(["p99<1s"]))).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    err = suite.findall("testcase")[0].find("error")
    assert err is not None and (err.get("message") or "").startswith("INVALID measurement:")
