"""Compare that answers a question: which of two results is better under the SLO, with bounds, not raw deltas."""

from __future__ import annotations

import pytest

from loadgen.results.comparison import (
    compare_documents,
    peak_estimate,
    run_latency_estimate,
    verdict_lines,
)
from loadgen.results.thresholds import ThresholdError
from loadgen.search.tune import Constraints, Measurement, Objective, TuneSpace, grid_search
from loadgen.search.tune_doc import tune_document
from tests.curves.fakes import fake_result


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    return {"slow": fake_result(360, seed=1), "fast": fake_result(100, seed=2), "fast2": fake_result(100, seed=3)}


def test_run_interval_brackets_the_estimate(runs):
    e = run_latency_estimate(runs["fast"], 99.0, 0.99)
    assert e.lo is not None and e.hi is not None and e.value is not None
    assert e.lo <= e.value <= e.hi
    assert e.hi >= runs["fast"]["latency_ucb_ms"]["p99"]  # 99.5% one-sided: at least the 99% bound
    bare = {k: v for k, v in runs["fast"].items() if k != "histogram_b64"}
    fb = run_latency_estimate(bare)
    assert fb.lo is None and fb.hi == runs["fast"]["latency_ucb_ms"]["p99"]


def test_runs_significantly_different_and_not(runs):
    c = compare_documents(runs["slow"], runs["fast"])
    v = c.verdicts[0]
    assert v.better == "B" and v.significant and v.delta_hi is not None and v.delta_hi < 0
    assert "lower than A's with 99% confidence" in v.message
    assert compare_documents(runs["fast"], runs["slow"]).verdicts[0].better == "A"
    same = compare_documents(runs["fast"], runs["fast2"]).verdicts[0]
    assert same.better == "neither" and "no significant difference" in same.message
    assert any("SLO p99 <= 50 ms: A pass, B pass" in n for n in compare_documents(runs["fast"], runs["fast2"]).notes)
    assert verdict_lines(c)[0] == v.message and "order-statistic" in verdict_lines(c)[1]


def test_invalid_run_is_undecidable(runs):
    bad = fake_result(400, seed=3, overload=True)
    c = compare_documents(runs["fast"], bad)
    assert c.verdicts[0].better == "undecidable" and "B is INVALID" in c.verdicts[0].message


def _peak(peak: float | None, upper: float | None, status: str = "found") -> dict:
    return {"kind": "peak", "peak_rps": peak, "upper_rps": upper, "status": status, "slo_ms": 50.0}


def test_peaks_compare_on_their_brackets():
    v = compare_documents(_peak(100, 110), _peak(120, 130)).verdicts[0]
    assert v.better == "B" and (v.delta_lo, v.delta_hi) == (10, 30) and "+10.0% .. +30.0% of A" in v.message
    assert compare_documents(_peak(120, 130), _peak(100, 110)).verdicts[0].better == "A"
    assert compare_documents(_peak(100, 110), _peak(105, 115)).verdicts[0].better == "neither"  # overlap
    # A was capped (nothing above it failed): B's higher peak does not show B is better
    assert compare_documents(_peak(100, None, "capped"), _peak(150, 160)).verdicts[0].better == "neither"
    gen = compare_documents(_peak(100, 110, "generator_limited"), _peak(150, 160)).verdicts[0]
    assert gen.better == "undecidable"
    none = compare_documents(_peak(None, 10, "never_passed"), _peak(150, 160)).verdicts[0]
    assert none.better == "undecidable"


def test_sweep_bracket_and_mixed_kinds():
    sweep = {
        "kind": "sweep",
        "peak": {"rate_rps": 200.0},
        "points": [{"offered_rps": r, "valid": True} for r in (100.0, 200.0, 300.0, 400.0)],
    }
    e = peak_estimate(sweep, "sweep")
    assert (e.value, e.lo, e.hi) == (200.0, 200.0, 300.0)
    assert compare_documents(sweep, _peak(310, 330)).verdicts[0].better == "B"
    assert compare_documents(sweep, _peak(250, 330)).verdicts[0].better == "neither"
    with pytest.raises(ThresholdError, match="cannot compare a run with a peak"):
        compare_documents(fake_result(50, seed=1), _peak(1, 2))


def test_tune_documents_compare_on_the_recommendation_range():
    space = TuneSpace(batch_sizes=(1, 8), instances=(1, 2), cpus=2)

    def doc(scale: float, wobble: float) -> dict:
        seen: dict[str, int] = {}

        def measure(c):  # a configuration's second measurement is `wobble` higher than its first
            seen[c.name] = seen.get(c.name, 0) + 1
            w = 1 + wobble * (seen[c.name] - 1)
            return Measurement(100 * scale * c.max_batch_size**0.3 * w, "found", 200.0, 5.0, 100.0)

        r = grid_search(space, measure, objective=Objective.named("throughput"), constraints=Constraints(slo_p99_ms=50))
        return tune_document(r, model="m")

    a, b = doc(1.0, 0.05), doc(1.5, 0.05)
    assert a["recommended"]["max_batch_size"] == 8
    v = compare_documents(a, b).verdicts[0]
    assert v.better == "B" and v.a.lo is not None and v.a.hi is not None and v.a.lo < v.a.hi
    close = doc(1.02, 0.05)
    assert compare_documents(a, close).verdicts[0].better == "neither"
