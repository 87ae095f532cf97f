"""Sweep orchestration (loadgen.search.sweep) with a simulated runner: files written, stop conditions, peak."""

from __future__ import annotations

import orjson

from loadgen.results.points import raw_limit_from_bench, summarize_point
from loadgen.search.sweep import auto_rates, peak_from_points, run_sweep, stop_reason
from tests.curves.fakes import fake_bench, fake_result, fake_run


def test_rate_sweep_writes_points_and_summary(tmp_path, base_scenario):
    seen = []
    doc = run_sweep(
        base_scenario,
        fake_run,
        tmp_path,
        rates=[50, 100, 300],
        slo_ms=50,
        on_point=lambda row, res: seen.append(row["offered_rps"]),
    )
    assert seen == [50, 100, 300]
    on_disk = orjson.loads((tmp_path / "sweep.json").read_bytes())
    assert on_disk["kind"] == "sweep" and on_disk["schema_version"] == 3
    assert [p["file"] for p in on_disk["points"]] == ["point-000.json", "point-001.json", "point-002.json"]
    for p in on_disk["points"]:
        res = orjson.loads((tmp_path / p["file"]).read_bytes())
        assert res["scenario"]["rate_rps"] == p["offered_rps"]
        assert {"offered_rps", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "valid", "file"} <= p.keys()
    assert on_disk["scenario"]["model"] == "tiny_classifier"
    assert doc["peak"]["rate_rps"] == 100  # 300 req/s breaks the 50 ms SLO in the simulation


def test_users_sweep_is_closed_loop(tmp_path, base_scenario):
    doc = run_sweep(base_scenario, fake_run, tmp_path, users=[1, 2, 4], slo_ms=None)
    assert [p["users"] for p in doc["points"]] == [1, 2, 4]
    assert all(p["mode"] == "closed" for p in doc["points"])
    assert any("closed loop" in n for n in doc["notes"])
    assert doc["peak"] is None


def test_auto_sweep_stops_when_slo_breaks(tmp_path, base_scenario):
    doc = run_sweep(
        base_scenario,
        fake_run,
        tmp_path,
        auto={"start_rps": 20, "factor": 2, "max_rps": None, "max_points": 12},
        slo_ms=50,
    )
    rates = [p["offered_rps"] for p in doc["points"]]
    assert rates == [20, 40, 80, 160, 320]
    assert "SLO broken" in doc["stopped"]


def test_auto_sweep_step_limit(tmp_path, base_scenario):
    doc = run_sweep(
        base_scenario,
        fake_run,
        tmp_path,
        auto={"start_rps": 5, "factor": 1.5, "max_rps": None, "max_points": 3},
        slo_ms=None,
    )
    assert len(doc["points"]) == 3 and "step limit" in doc["stopped"]


def test_stop_reasons():
    row = summarize_point(fake_result(100))
    assert stop_reason(row, 1000) is None
    assert "SLO" in stop_reason(row, 1.0)
    sat = dict(row, offered_rps=200.0, achieved_rps=150.0)
    assert "saturated" in stop_reason(sat, None)
    err = dict(row, failed=3, errors={"503": 3})
    assert "errors" in stop_reason(err, None)


def test_auto_rates_geometric():
    assert list(auto_rates(10, 2, 100, 20)) == [10, 20, 40, 80]
    assert list(auto_rates(10, 1.5, None, 3)) == [10, 15, 22.5]


def test_peak_from_points_ignores_invalid():
    pts = [summarize_point(fake_result(r, overload=r == 200), None, i) for i, r in enumerate([50, 100, 200])]
    assert peak_from_points(pts, 1000)["rate_rps"] == 100
    assert peak_from_points(pts, 0.001)["rate_rps"] is None
    assert peak_from_points(pts, None) is None


def test_raw_limit_in_requests():
    lim = raw_limit_from_bench(fake_bench(), 8)
    assert lim["items_per_s"] == 520 and lim["rps"] == 65 and lim["batch_size"] == 8
    assert raw_limit_from_bench({"results": []}) is None


def test_no_peak_says_when_points_were_only_undecided():
    from loadgen.search.sweep import peak_from_points

    pts = [
        {
            "valid": True,
            "slo_verdict": "undecided",
            "slo_bound_ms": 50.0,
            "slo_percentile": 99,
            "p99_ms": 10.0,
            "achieved_rps": 50.0,
            "offered_rps": 50.0,
        }
    ]
    peak = peak_from_points(pts, 50.0, 99)
    assert peak["rate_rps"] is None and "1 undecided" in peak["reason"] and "--duration" in peak["reason"]
    pts[0]["slo_verdict"] = "fail"
    assert "undecided" not in peak_from_points(pts, 50.0, 99)["reason"]


def test_sweep_plan_parses_one_kind_of_load_and_warns_about_undecidable_rates(base_scenario):
    import pytest

    from loadgen.search.sweep import SweepPlan

    kw = dict(start_rps=5.0, factor=1.5, max_rps=None, max_points=12)
    assert SweepPlan.parse("50,100", None, **kw).first() == {"mode": "open", "rate_rps": 50.0}
    assert SweepPlan.parse(None, "1,2", **kw).first() == {"mode": "closed", "users": 1}
    assert SweepPlan.parse("auto", None, **kw).auto["factor"] == 1.5
    for rates, users in (("5", "1"), (None, None), ("5,x", None), ("0", None)):
        with pytest.raises(ValueError):
            SweepPlan.parse(rates, users, **kw)
    # 5 s measured: a confident p99 verdict needs 459 queries, i.e. rates >= 91.8 req/s
    sc = base_scenario.model_copy(update={"duration_s": 5})
    note = SweepPlan.parse("50,100", None, **kw).undecided_note(sc, 50.0)
    assert "459" in note and "(50)" in note
    assert SweepPlan.parse("100,200", None, **kw).undecided_note(sc, 50.0) is None
    assert SweepPlan.parse("50", None, **kw).undecided_note(sc, None) is None
