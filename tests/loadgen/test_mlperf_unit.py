"""`inferload mlperf` without sockets: LoadGen's log read into the document, the document's schema, thresholds and
report, TestSettings from the options, and the SUT's issue/complete bridge with a fake transport."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from loadgen.engine.mlperf_driver import MlperfError, MlperfOptions, build_document, check_options, loadgen_settings
from loadgen.engine.mlperf_sut import AsyncSut
from loadgen.engine.scenario import Scenario
from loadgen.results import mlperf_log as L
from loadgen.results.schema import validate_document
from loadgen.results.thresholds import evaluate, exit_code, parse_thresholds


def _line(key: str, value: object, error: bool = False) -> str:
    meta = {"is_error": error, "is_warning": False}
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "time_ms": 1.0, "metadata": meta})


SINGLESTREAM = [
    _line("loadgen_version", "6.0.17 @ x"),
    _line("effective_samples_per_query", 1),
    _line("power_begin", "12-07-2026 01:36:22.540"),
    _line("power_end", "12-07-2026 01:36:25.540"),
    _line("result_validity", "VALID"),
    _line("result_min_duration_met", True),
    _line("result_min_queries_met", True),
    _line("early_stopping_met", True),
    _line(
        "early_stopping_result",
        " * Processed at least 64 queries (375).  * Early stopping 90.0th percentile estimate: 10088183",
    ),
    _line("early_stopping_latency_ss", 10088183),
    _line("result_query_count", 375),
    _line("result_qps_with_loadgen_overhead", 124.6),
    _line("result_min_latency_ns", 5172000),
    _line("result_mean_latency_ns", 8000000),
    _line("result_50.00_percentile_latency_ns", 8617000),
    _line("result_90.00_percentile_latency_ns", 9912000),
    _line("result_99.00_percentile_latency_ns", 14550000),
    _line("result_99.90_percentile_latency_ns", 18640000),
    _line("result_max_latency_ns", 18640000),
]
SERVER_INVALID = [
    _line("loadgen_version", "6.0.17 @ x"),
    _line("effective_target_qps", 130),
    _line("result_validity", "INVALID"),
    _line("result_perf_constraints_met", False),
    _line("result_min_duration_met", True),
    _line("result_min_queries_met", True),
    _line("early_stopping_met", False),
    _line("early_stopping_result", " * Run unsuccessful.  * Processed 480 queries."),
    _line("result_query_count", 480),
    _line("result_completed_samples_per_sec", 129.5),
    _line("result_99.00_percentile_latency_ns", 175000000),
    _line("num_errors", 1),
    _line("error_invalid_config", "something", error=True),
]


def _sut_summary(failed: int = 0) -> dict:
    return {
        "issue_lag_ms": {"p50": 0.1, "p90": 0.1, "p99": 0.2, "p999": 0.2, "max": 0.3, "mean": 0.1},
        "slot_wait_ms": {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0},
        "sent": 375,
        "completed": 375 - failed,
        "failed": failed,
        "failures": {"HTTP 503": failed} if failed else {},
        "waited_for_slot": 0,
        "max_in_flight_seen": 1,
    }


def _scenario() -> Scenario:
    return Scenario.build({"target": "http://127.0.0.1:9", "model": "m", "mode": "closed", "users": 1})


def _doc(lines: list[str], opts: MlperfOptions, failed: int = 0) -> dict:
    values, errors, warnings = L.parse_detail("\n".join(["garbage line", *lines]))
    return build_document(
        _scenario(), opts, values, errors, warnings, _sut_summary(failed), "2026-12-07T00:00:00+00:00", 4.0, {}, {}
    )


def test_singlestream_log_becomes_a_valid_document_in_ms():
    doc = _doc(SINGLESTREAM, MlperfOptions("singlestream"))
    validate_document(doc)
    assert doc["valid"] and doc["loadgen_result"] == "VALID" and doc["invalid_reasons"] == []
    assert doc["latency_ms"]["p90"] == pytest.approx(9.912) and doc["latency_ms"]["max"] == pytest.approx(18.64)
    assert doc["result"] == {"metric": "p90_latency_ms", "value": pytest.approx(9.912), "unit": "ms"}
    assert doc["early_stopping"]["estimate_ms"] == pytest.approx(10.088183)
    assert doc["early_stopping"]["estimate_percentile"] == 90.0
    assert doc["duration_s"] == pytest.approx(3.0) and doc["samples_per_s"] == pytest.approx(124.6)


def test_invalid_server_run_lists_every_loadgen_reason_as_codes():
    doc = _doc(SERVER_INVALID, MlperfOptions("server", target_qps=130))
    validate_document(doc)
    codes = [r["code"] for r in doc["invalid_reasons"]]
    assert not doc["valid"] and codes == ["loadgen_latency", "loadgen_early_stopping", "loadgen_errors"]
    assert "Run unsuccessful" in doc["invalid_reasons"][1]["message"]
    assert doc["result"]["value"] == 130 and doc["samples_per_s"] == pytest.approx(129.5)


def test_sut_failures_make_a_loadgen_valid_run_invalid():
    doc = _doc(SINGLESTREAM, MlperfOptions("singlestream"), failed=3)
    assert doc["loadgen_result"] == "VALID" and not doc["valid"]
    assert [r["code"] for r in doc["invalid_reasons"]] == ["sut_failures"]


def test_multistream_rate_from_the_timed_run():
    lines = [
        *SINGLESTREAM,
        _line("effective_samples_per_query", 8),
        _line("result_99.00_percentile_per_query_latency_ns", 49e6),
    ]
    doc = _doc(lines, MlperfOptions("multistream"))
    assert doc["samples_per_s"] == pytest.approx(375 * 8 / 3.0)
    assert doc["query_latency_ms"]["p99"] == pytest.approx(49.0) and doc["result"]["value"] == pytest.approx(49.0)


def test_thresholds_read_an_mlperf_document():
    doc = _doc(SINGLESTREAM, MlperfOptions("singlestream"))
    ev = evaluate(doc, parse_thresholds(["p90<20ms", "throughput>=100rps"], kind="mlperf"))
    assert exit_code(ev) == 0
    ev = evaluate(doc, parse_thresholds(["p90<5ms"], kind="mlperf"))
    assert exit_code(ev) == 1
    bad = _doc(SERVER_INVALID, MlperfOptions("server", target_qps=130))
    assert exit_code(evaluate(bad, parse_thresholds(["p99<1s"], kind="mlperf"))) == 3


def test_options_are_checked_and_mapped_onto_loadgen_settings():
    lg = pytest.importorskip("mlperf_loadgen")
    with pytest.raises(MlperfError, match="needs --target-qps"):
        check_options(MlperfOptions("server"))
    with pytest.raises(MlperfError, match="server only"):
        check_options(MlperfOptions("offline", target_qps=5, find_peak=True))
    o = MlperfOptions(
        "server",
        target_qps=120.0,
        latency_bound_ms=50,
        latency_percentile=95,
        min_duration_s=2.5,
        min_query_count=7,
        seed=9,
    )
    s = loadgen_settings(o, lg)
    assert s.scenario == lg.TestScenario.Server and s.mode == lg.TestMode.PerformanceOnly
    assert s.server_target_qps == 120.0 and s.server_target_latency_ns == 50_000_000
    assert s.server_target_latency_percentile == pytest.approx(0.95)
    assert s.min_duration_ms == 2500 and s.min_query_count == 7 and s.schedule_rng_seed == 9
    assert (
        loadgen_settings(MlperfOptions("server", target_qps=1, find_peak=True), lg).mode
        == lg.TestMode.FindPeakPerformance
    )


def test_report_renders_an_mlperf_document(tmp_path: Path):
    from rich.console import Console

    from loadgen.report.html import render_html
    from loadgen.report.terminal_mlperf import answer_line, print_mlperf
    from loadgen.results.io import load_doc, write_json

    doc = _doc(SINGLESTREAM, MlperfOptions("singlestream"))
    write_json(tmp_path / "mlperf.json", doc)
    loaded = load_doc(tmp_path)
    assert loaded.kind == "mlperf"
    page = render_html([loaded])
    assert "SingleStream p90 latency 9.912 ms" in page and "SUT issue lag" in page
    console = Console(record=True, width=120)
    print_mlperf(console, doc)
    assert answer_line(doc) in console.export_text()


class _FakeTransport:
    """A send factory whose answers come `delay_s` later on the loop; status per index."""

    def __init__(self, delay_s: float = 0.002, status: int = 200) -> None:
        self.delay_s, self.status = delay_s, status
        self.sent: list[int] = []
        self.closed = False

    async def __call__(self):
        async def send(index: int):
            self.sent.append(index)
            await asyncio.sleep(self.delay_s)
            return self.status, b"{}", lambda _n: None

        async def close() -> None:
            self.closed = True

        return send, close


def _run_sut(transport: _FakeTransport, batches: list[list[tuple[int, int]]], **kw) -> tuple[AsyncSut, list[int]]:
    done: list[int] = []
    all_done = threading.Event()
    total = sum(len(b) for b in batches)

    def complete(sid: int) -> None:
        done.append(sid)
        if len(done) == total:
            all_done.set()

    sut = AsyncSut(transport, complete, **kw).start()
    try:
        for b in batches:
            t0 = time.perf_counter()
            sut.issue(b)
            assert time.perf_counter() - t0 < 0.05, "issue() must return at once"
        assert all_done.wait(10)
    finally:
        sut.stop()
    return sut, done


def test_sut_completes_every_sample_and_measures_issue_lag():
    transport = _FakeTransport()
    sut, done = _run_sut(transport, [[(100 + i, i % 3)] for i in range(20)] + [[(200, 1), (201, 2)]])
    assert sorted(done) == sorted([100 + i for i in range(20)] + [200, 201])
    assert sorted(transport.sent) == sorted([i % 3 for i in range(20)] + [1, 2]) and transport.closed
    s = sut.stats.summary()
    assert s["sent"] == s["completed"] == 22 and s["failed"] == 0
    assert len(sut.stats.lag_ns) == 22 and 0 <= s["issue_lag_ms"]["max"] < 1000


def test_sut_counts_failures_and_still_completes_them():
    sut, done = _run_sut(_FakeTransport(status=503), [[(1, 0), (2, 1)]])
    assert sorted(done) == [1, 2] and sut.stats.summary()["failures"] == {"HTTP 503": 2}


def test_sut_in_flight_cap_makes_samples_wait_and_says_so():
    sut, _ = _run_sut(_FakeTransport(delay_s=0.01), [[(i, 0) for i in range(8)]], max_in_flight=2)
    s = sut.stats.summary()
    assert s["max_in_flight_seen"] == 2 and s["waited_for_slot"] >= 5
    assert s["slot_wait_ms"]["max"] >= 10.0 * 2


def test_find_peak_answer_and_brackets_from_loadgen_messages():
    lines = [
        *SERVER_INVALID,
        _line("generic_message", "FindPeakPerformance: Check validity of the base settings field: 60.000000"),
        _line(
            "generic_message",
            "FindPeakPerformanceBinarySearch: Testing the mid value of bounds [60.000000, 120.000000): 90.0",
        ),
        _line(
            "generic_message",
            "FindPeakPerformanceBinarySearch: Testing the mid value of bounds [60.000000, 90.000000]: 75.0",
        ),
        _line("generic_message", "FindPeakPerformance: Found peak performance field: 74.648438"),
    ]
    doc = _doc(lines, MlperfOptions("server", target_qps=60, find_peak=True))
    validate_document(doc)
    assert doc["mode"] == "find_peak" and doc["result"] == {
        "metric": "peak_qps",
        "value": 74.648438,
        "unit": "queries/s",
    }
    assert doc["find_peak"]["bisected_bounds"] == [[60.0, 120.0], [60.0, 90.0]]
    assert _doc(SINGLESTREAM, MlperfOptions("singlestream"))["find_peak"] is None


def test_coin_flip_percentile_explains_short_runs_against_long_ones():
    from loadgen.results.confidence import binom_cdf, coin_flip_percentile, max_overs_to_pass

    assert coin_flip_percentile(100, 99) is None  # 100 queries cannot show p99 at 99%
    values = [coin_flip_percentile(n, 99) for n in (459, 1100, 3750, 100_000)]
    assert all(a > b for a, b in zip(values, values[1:])) and 99.0 < values[-1] < 99.1  # tends to p99 from above
    assert values[1] == pytest.approx(99.67, abs=0.01) and values[2] == pytest.approx(99.37, abs=0.01)
    n = 1100
    q50 = 1 - values[1] / 100
    assert binom_cdf(max_overs_to_pass(n, 0.99), n, q50) == pytest.approx(0.5, abs=1e-6)  # passes as often as not


def test_demo_lines_speak_mlperf_and_skip_without_loadgen(tmp_path: Path, monkeypatch):
    import importlib.util

    from rich.console import Console

    from loadgen.commands import demo
    from loadgen.results.io import write_json

    ss = _doc(SINGLESTREAM, MlperfOptions("singlestream"))
    write_json(tmp_path / "ss.json", ss)
    text = demo.mlperf_lines([tmp_path / "ss.json", tmp_path / "missing.json"])
    assert "the camera" in text and "SingleStream p90 latency 9.912 ms" in text and text.count("\n") == 0
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    console = Console(record=True)
    assert demo._mlperf_steps(console, "http://127.0.0.1:9", "m", tmp_path, 1.0, tmp_path / "none.json") == []
    assert "skipping" in console.export_text()


def test_sut_refuses_transports_it_does_not_speak():
    from types import SimpleNamespace

    from loadgen.engine.mlperf_driver import check_transport

    check_transport(SimpleNamespace(protocol="oip", target="http://127.0.0.1:1"))
    check_transport(SimpleNamespace(protocol="http-json", target="https://h/p"))
    check_transport(SimpleNamespace(protocol="grpc", target="grpc://h:1"))
    with pytest.raises(MlperfError, match="not websocket"):
        check_transport(SimpleNamespace(protocol="websocket", target="ws://h"))
