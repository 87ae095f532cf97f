"""Pure tests: recording, exact merging, statistics, validity reasons, result schema, exporter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import generate_latest

from loadgen.engine.exporter import LoadgenMetrics
from loadgen.engine.recorder import Recorder
from loadgen.engine.scenario import Scenario
from loadgen.report.csv_report import write_csv
from loadgen.results import analysis, validity
from loadgen.results.build import build_result
from loadgen.results.recorded import RecordData, decode_histogram, encode_histogram, new_histogram

ST = 'queue;dur=2.0, compute;dur=5.0, batch;desc="4", total;dur=7.5'


def _scenario(**kw) -> Scenario:
    base = dict(target="http://127.0.0.1:1", model="m", mode="open", rate_rps=100.0, duration_s=10, warmup_s=2)
    base.update(kw)
    return Scenario(**base)


def test_merged_worker_histograms_equal_the_single_histogram_exactly():
    rng = np.random.default_rng(42)
    samples = np.clip(rng.lognormal(9.5, 1.2, 50000), 1, 59_000_000).astype(int)
    single, a, b = new_histogram(), new_histogram(), new_histogram()
    for _i, v in enumerate(samples):
        single.record_value(int(v))
        (a if rng.random() < 0.37 else b).record_value(int(v))
    merged = decode_histogram(encode_histogram(a))  # what the master receives from worker A
    merged.add(decode_histogram(encode_histogram(b)))
    pts = analysis.distribution_points()
    assert analysis.values_at_percentiles(merged, pts) == analysis.values_at_percentiles(single, pts)
    assert analysis.latency_summary_ms(merged) == analysis.latency_summary_ms(single)
    assert merged.get_total_count() == single.get_total_count() == len(samples)
    # and our numpy statistics agree with hdrh's own
    assert analysis.values_at_percentiles(single, [50.0, 99.0, 99.9]) == {
        p: float(single.get_value_at_percentile(p)) for p in (50.0, 99.0, 99.9)
    }
    assert analysis.mean_stdev(single)[0] == pytest.approx(single.get_mean_value())


def test_recorder_deltas_over_the_wire_merge_exactly():
    rng = np.random.default_rng(1)
    whole = Recorder(2, 10, "one")
    w1, w2 = Recorder(2, 10, "w1"), Recorder(2, 10, "w2")
    for i in range(3000):
        sched = float(rng.uniform(0, 13))
        lat = float(rng.exponential(0.01))
        ok = rng.random() > 0.1
        for r in (whole, w1 if i % 2 else w2):
            r.on_send(sched)
            r.record(sched, sched + 0.0001, sched + lat, ok, None if ok else "503", ST)
    total = RecordData()
    for r in (w1, w2):
        for _ in range(2):  # two reports per worker: the second is empty
            total.merge(RecordData.from_wire(json.loads(json.dumps(r.take().to_wire()))))
    ref = whole.take()
    for p in ("warmup", "measure", "drain"):
        a, b = total.phases[p], ref.phases[p]
        assert (a.sent, a.success, a.failure, a.errors, a.batch_sizes) == (
            b.sent,
            b.success,
            b.failure,
            b.errors,
            b.batch_sizes,
        )
        assert analysis.latency_summary_ms(a.hists.get("success")) == analysis.latency_summary_ms(
            b.hists.get("success")
        )


def test_phases_errors_delays_and_server_timing():
    r = Recorder(warmup_s=1, duration_s=2)
    for sched, sent, done, ok, err in [
        (0.5, 0.5, 0.51, True, None),  # warm-up
        (1.5, 1.5, 1.52, True, None),  # measure, 20 ms
        (1.6, 1.6005, 1.601, False, "500"),  # measure, failure (fast)
        (2.0, 2.003, 2.05, True, None),  # measure, sent 3 ms late -> delayed, 50 ms from schedule
        (2.999, 2.999, 3.5, True, None),  # scheduled inside: counts even though it completes after the end
        (3.0, 3.0, 3.01, True, None),  # drain
    ]:
        r.on_send(sched)
        r.record(sched, sent, done, ok, err, ST if ok else None)
    r.on_drop(2.5)
    d = r.take()
    m = d.phases["measure"]
    assert (m.sent, m.success, m.failure, m.delayed, m.dropped) == (4, 3, 1, 1, 1)
    assert m.errors == {"500": 1}
    assert m.hists["success"].get_min_value() >= 19_990  # the fast failure never enters success latency
    assert m.hists["failure"].get_total_count() == 1
    assert m.batch_sizes == {"4": 3}
    assert analysis.p50_mean_ms(m.hists["queue"])["p50"] == pytest.approx(2.0, rel=1e-3)
    assert d.phases["warmup"].success == 1 and d.phases["drain"].success == 1
    assert r.in_flight == 0


def test_unbounded_percentiles_follow_the_confidence_bound():
    # a 99% upper bound on p99 needs n >= 459 (MLPerf's early-stopping figure); p99.9 needs 4603
    assert analysis.unbounded_percentiles(458) == ["p99", "p999"]
    assert analysis.unbounded_percentiles(459) == ["p999"]
    assert analysis.unbounded_percentiles(4603) == []
    assert analysis.unbounded_percentiles(0) == list(analysis.PERCENTILES)
    pts = analysis.distribution_points()
    assert 30 <= len(pts) <= 60 and pts[0] == 0.0 and pts[-2] == 99.999 and pts[-1] == 100.0


def _validity(**kw):
    args = dict(
        mode="open",
        duration_s=10,
        completed=5000,
        failed=0,
        errors={},
        unbounded=["p999"],
        target_rate_rps=500.0,
        achieved_rate_rps=500.0,
        delayed_fraction=0.0,
        dropped=0,
        max_in_flight=100,
        cpu_max_percent=40.0,
        scheduled=5000,
    )
    args.update(kw)
    return validity.validity(**args)


def _codes(reasons):
    return [r["code"] for r in reasons]


def test_validity_valid_run_with_p999_warning_only():
    valid, reasons, warnings = _validity()
    assert valid and reasons == []
    assert _codes(warnings) == ["percentile_unbounded"] and "p999 needs >= 4603" in warnings[0]["message"]


def test_validity_lists_every_reason_as_codes():
    lag = {"material": True, "message": "the verdict would differ", "lag_p99_ms": 9.0}
    valid, reasons, _ = _validity(
        duration_s=1,
        completed=400,
        scheduled=500,
        achieved_rate_rps=50,
        delayed_fraction=0.2,
        dropped=7,
        cpu_max_percent=97.0,
        lag=lag,
    )
    assert not valid
    assert _codes(reasons) == ["window_too_short", "schedule_short", "lag_material", "generator_cpu", "client_drops"]
    assert all(r["message"] for r in reasons)


def test_late_sends_invalidate_only_when_material():
    # 20% late but the lag could not change the answer: VALID, the lateness is reported as a warning
    immaterial = {"material": False, "message": None, "lag_p99_ms": 3.1}
    valid, reasons, warnings = _validity(delayed_fraction=0.2, lag=immaterial)
    assert valid and reasons == []
    late = [w for w in warnings if w["code"] == "late_sends"]
    assert late and "20.0%" in late[0]["message"] and "3.1 ms" in late[0]["message"]
    material = {"material": True, "message": "p99 from the schedule exceeds ...", "lag_p99_ms": 30.0}
    valid, reasons, warnings = _validity(delayed_fraction=0.2, lag=material)
    assert not valid and _codes(reasons) == ["lag_material"]
    assert "late_sends" not in _codes(warnings)


def test_thin_percentiles_never_invalidate():
    valid, reasons, warnings = _validity(completed=50, scheduled=50, unbounded=["p95", "p99", "p999"])
    assert valid and reasons == []
    assert "p99 needs >= 459" in warnings[0]["message"]


def test_validity_cpu_alone_and_closed_loop_rules():
    valid, reasons, _ = _validity(cpu_max_percent=91.0)
    assert not valid and _codes(reasons) == ["generator_cpu"]
    # closed loop: no rate / delay rules
    valid, reasons, _ = _validity(mode="closed", target_rate_rps=None, achieved_rate_rps=1.0, delayed_fraction=0.5)
    assert valid, reasons


def test_schedule_judged_against_answered_requests():
    # 89 of 89 scheduled answered: valid, even though 89/3 s < 0.99 x 30 req/s
    assert _validity(completed=89, achieved_rate_rps=29.67, target_rate_rps=30, scheduled=89, unbounded=[])[0]
    # failures are the server's answer, not a short schedule: a warning (and over the bound in an SLO verdict)
    valid, reasons, warnings = _validity(
        completed=80,
        failed=9,
        errors={"503": 9},
        achieved_rate_rps=26.7,
        target_rate_rps=30,
        scheduled=89,
        unbounded=[],
    )
    assert valid and "failures" in _codes(warnings)
    valid, reasons, _ = _validity(completed=80, achieved_rate_rps=26.7, target_rate_rps=30, scheduled=89, unbounded=[])
    assert not valid and _codes(reasons) == ["schedule_short"]


def test_generator_limited_only_when_every_reason_is_the_generators():
    r = validity.reason
    late, cpu = r("lag_material", "x"), r("generator_cpu", "y")
    drops, short = r("client_drops", "z"), r("schedule_short", "w")
    assert validity.generator_limited({"valid": False, "invalid_reasons": [late, cpu, short]})
    assert not validity.generator_limited({"valid": False, "invalid_reasons": [late, drops]})
    assert not validity.generator_limited({"valid": True, "invalid_reasons": []})
    assert not validity.generator_limited({"valid": False, "invalid_reasons": []})
    # a schema-1 string reason is never taken for the generator's
    assert not validity.generator_limited({"valid": False, "invalid_reasons": ["the generator fell behind"]})
    _, reasons, _ = _validity(cpu_max_percent=95.0, lag={"material": True, "message": "m"})
    assert validity.generator_limited({"valid": False, "invalid_reasons": reasons})


def _hist(values_ms):
    h = new_histogram()
    for v in values_ms:
        h.record_value(int(v * 1000))
    return h


def test_slo_verdict_counts_failures_over_the_bound_and_matches_the_ucb():
    vals = [10.0] * 995 + [200.0] * 5  # 5 of 1000 over 100 ms
    v = analysis.judge_slo(_hist(vals), 0, 100.0)
    # with 1000 samples at 99% confidence at most 2 may exceed the bound
    assert v["verdict"] == "undecided" and v["max_over_to_pass"] == 2 and v["queries_needed"] > 1000
    assert v["ucb_ms"] > 100 and v["estimate_ms"] == pytest.approx(10.0, rel=1e-3)
    v = analysis.judge_slo(_hist([10.0] * 998 + [200.0] * 2), 0, 100.0)
    assert v["verdict"] == "pass" and v["ucb_ms"] <= 100
    # the same run with 30 failures: they count as over the bound
    v = analysis.judge_slo(_hist([10.0] * 998 + [200.0] * 2), 30, 100.0)
    assert v["verdict"] == "fail" and v["over"] == 32 and v["samples"] == 1030
    v = analysis.judge_slo(_hist([10.0] * 470), 0, 100.0)
    assert v["verdict"] == "pass"
    v = analysis.judge_slo(_hist([10.0] * 400), 0, 100.0)
    assert v["verdict"] == "undecided" and v["queries_needed"] == 459 and v["ucb_ms"] is None


def test_lag_effect_judged_by_its_effect_on_the_answer():
    n = 1000
    lag = _hist([3.0] * n)
    free = _hist([20.0] * 990 + [95.0] * 10)  # lag-free p99 95 ms
    sched = _hist([21.0] * 990 + [98.0] * 10)  # +1-3 ms of lag: p99 21 ms (5% above), tail 98 ms < 100
    slo = analysis.judge_slo(sched, 0, 100.0)
    e = validity.lag_effect("open", lag=lag, succ=sched, lag_free=free, failed=0, slo=slo)
    assert not e["material"] and e["lag_free_verdict"] == slo["verdict"]
    worse = _hist([21.0] * 980 + [103.0] * 20)  # the lag pushes 20 requests over the bound
    slo = analysis.judge_slo(worse, 0, 100.0)
    e = validity.lag_effect("open", lag=lag, succ=worse, lag_free=free, failed=0, slo=slo)
    assert e["material"] and slo["verdict"] != e["lag_free_verdict"]
    # without an SLO: material when p99 from the schedule is > 10% above the lag-free p99
    assert not validity.lag_effect("open", lag=lag, succ=sched, lag_free=free, failed=0, slo=None)["material"]
    assert validity.lag_effect(
        "open", lag=lag, succ=_hist([23.0] * 990 + [98.0] * 10), lag_free=free, failed=0, slo=None
    )["material"]
    # ... and by more than the late threshold: 0.3 ms on a 2 ms latency is within any client's own overhead
    small_free, small = _hist([2.0] * 1000), _hist([2.3] * 1000)
    assert not validity.lag_effect("open", lag=lag, succ=small, lag_free=small_free, failed=0, slo=None)["material"]
    assert validity.lag_effect("open", lag=lag, succ=small, lag_free=small_free, failed=0, slo=None, floor_ms=0.1)[
        "material"
    ]
    assert not validity.lag_effect("closed", lag=lag, succ=worse, lag_free=free, failed=0, slo=None)["material"]


def test_build_result_schema_and_csv(tmp_path):
    sc = _scenario(mode="closed", rate_rps=None, users=4, duration_s=2, warmup_s=1, slo_p99_ms=100)
    r = Recorder(1, 2)
    for i in range(300):
        t = 1 + i / 150
        r.on_send(t)
        r.record(t, t, t + 0.01 + (i % 10) / 1000, i % 50 != 0, "503", ST)
    r.on_cpu(1.5, 35.0)
    res = build_result(r.take(), sc, started_at="2026-01-01T00:00:00+00:00", server={}, machine={})
    for key in (
        "schema_version",
        "tool",
        "started_at",
        "mode",
        "target_rate_rps",
        "users",
        "duration_s",
        "warmup_s",
        "completed",
        "failed",
        "achieved_rate_rps",
        "offered_rate_rps",
        "items_per_s",
        "latency_ms",
        "latency_insufficient",
        "latency_ucb_ms",
        "confidence",
        "errors",
        "delayed_fraction",
        "dropped",
        "schedule_lag_ms",
        "server_timing_ms",
        "decomposition_ms",
        "batch_size",
        "percentiles",
        "histogram_b64",
        "timeseries",
        "generator_cpu_percent",
        "valid",
        "invalid_reasons",
        "warnings",
        "notes",
        "scenario",
        "server",
        "machine",
    ):
        assert key in res, key
    assert res["schema_version"] == 3 and res["kind"] == "run" and res["tool"] == "inferload"
    assert res["completed"] == 294 and res["errors"] == {"503": 6}
    assert res["users"] == 4 and res["target_rate_rps"] is None
    assert res["batch_size"] == {"4": 294}
    # 300 requests, 6 failed (over the bound): not enough to show p99 <= 100 ms with 99% confidence
    assert res["slo"]["verdict"] == "undecided" and res["slo"]["met"] is False and res["slo"]["p99_ms"] == 100
    assert res["slo"]["over"] == 6 and res["slo"]["samples"] == 300
    assert any("coordinated omission" in n for n in res["notes"])
    assert res["valid"] and res["latency_insufficient"] == ["p99", "p999"]
    assert res["latency_ucb_ms"]["p50"] >= res["latency_ms"]["p50"] and res["latency_ucb_ms"]["p99"] is None
    h = decode_histogram(res["histogram_b64"])
    assert h.get_total_count() == 294
    json.dumps(res)  # serialisable
    write_csv(res, tmp_path / "ts.csv")
    lines = (tmp_path / "ts.csv").read_text().splitlines()
    assert lines[0] == "t_s,phase,offered,completed,errors,in_flight,p50_ms,p99_ms"
    assert len(lines) == 1 + len(res["timeseries"])


def test_exporter_pinned_names():
    m = LoadgenMetrics()
    m.set_load(rate_rps=250, users=None)
    r = Recorder(0, 10)
    for i in range(10):
        r.on_send(i * 0.1)
        r.record(i * 0.1, i * 0.1 + 0.003, i * 0.1 + 0.02, i != 3, "503", None)  # 3 ms late: > 2 ms default
    r.on_drop(1.0)
    m.observe(r.take(), "w1")
    text = generate_latest(m.registry).decode()
    for line in (
        "inferload_loadgen_offered_requests_total 10.0",
        'inferload_loadgen_requests_total{outcome="success"} 9.0',
        'inferload_loadgen_requests_total{outcome="failure"} 1.0',
        'inferload_loadgen_errors_total{status="503"} 1.0',
        "inferload_loadgen_latency_seconds_count 9.0",
        "inferload_loadgen_in_flight 0.0",
        "inferload_loadgen_delayed_requests_total 10.0",
        "inferload_loadgen_dropped_requests_total 1.0",
        "inferload_loadgen_target_rate_rps 250.0",
        "inferload_loadgen_users 0.0",
    ):
        assert line in text, line
    assert 'inferload_loadgen_latency_seconds_bucket{le="0.0005"}' in text


def test_vectorised_recording_equals_record_value():
    from loadgen.results.recorded import HIGHEST_US, record_many

    rng = np.random.default_rng(5)
    vals = [0, 1, 2, 1023, 1024, 2047, 2048, 4095, 4096, 65535, 65536, HIGHEST_US, HIGHEST_US - 1]
    vals += [int(x) for x in rng.integers(0, HIGHEST_US, 5000)] + [
        int(x) for x in rng.lognormal(8, 2, 5000) % HIGHEST_US
    ]
    for sig in (3, 2):
        a, b = new_histogram(sig), new_histogram(sig)
        for v in vals:
            a.record_value(v)
        record_many(b, vals[:7000])
        record_many(b, vals[7000:])
        assert list(a.counts) == list(b.counts)
        assert (a.total_count, a.min_value, a.max_value) == (b.total_count, b.min_value, b.max_value)
        assert encode_histogram(a) == encode_histogram(b)


def test_late_threshold_is_configurable():
    strict, default = Recorder(0, 10, late_threshold_s=0.001), Recorder(0, 10)
    for r in (strict, default):
        for i in range(4):
            r.on_send(i * 0.1)
            r.record(i * 0.1, i * 0.1 + 0.0015, i * 0.1 + 0.02, True, None, None)  # 1.5 ms late
    assert strict.data.phases["measure"].delayed == 4
    assert default.data.phases["measure"].delayed == 0


def test_gc_pacer_disables_automatic_collection_and_restores_it():
    import gc

    from loadgen.engine.gcpacer import GcPacer

    assert gc.isenabled()
    p = GcPacer()
    p.start()
    try:
        assert not gc.isenabled()
        before = [s["collections"] for s in gc.get_stats()]
        for _ in range(GcPacer.GEN1_EVERY):
            p.tick()
        after = [s["collections"] for s in gc.get_stats()]
        # every tick collects the young generation; every GEN1_EVERY-th tick generation 1 as well; never gen 2
        assert after[0] - before[0] >= GcPacer.GEN1_EVERY - 1 and after[1] - before[1] >= 1 and after[2] == before[2]
    finally:
        p.stop()
    assert gc.isenabled()
    p.stop()  # idempotent
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that had it off keeps it off
        q = GcPacer()
        q.start()
        q.stop()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_recorder_flushes_in_bounded_chunks_without_losing_a_sample():
    from loadgen.engine.recorder import FLUSH_EVERY

    r = Recorder(0, 100)
    n = 3 * FLUSH_EVERY + 17
    longest = 0
    for i in range(n):
        t = i * 0.01
        r.on_send(t)
        r.record(t, t + 0.0001, t + 0.002 + (i % 7) / 1000, True, None, None)
        longest = max(longest, len(r.data.phases["measure"].pending["success"]))
    assert longest <= FLUSH_EVERY
    assert r.totals == {"sent": n, "done": n, "success": n, "failure": 0, "dropped": 0}
    m = r.take().phases["measure"]
    assert m.hists["success"].get_total_count() == n and m.hists["lag"].get_total_count() == n
    assert m.hists["success"].get_max_value() >= 8000  # 2 ms + 6 ms, in us
