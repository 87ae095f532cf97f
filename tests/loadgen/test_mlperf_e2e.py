"""`inferload mlperf` end to end: MLPerf LoadGen (its own process, the CLI) drives each scenario against inferload's
server (tiny_classifier) and against a stand-in with a known service time; every document validates. The SingleStream
p90 of a fixed-service-time stand-in is judged against a plain blocking client measured in the same test (timing).

Runs are short (LoadGen's minimum duration 1 s, few queries): LoadGen's early stopping then often says INVALID (too
few queries), so these runs pass --allow-invalid and check the figures and the document, not the verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.baseline.serverproc import ServerProcess
from loadgen.results.schema import validate_document
from tests.loadgen import reference_client
from tests.server.conftest import server_metric

pytest.importorskip("mlperf_loadgen")
ROOT = Path(__file__).resolve().parents[2]
SHORT = {
    "singlestream": ["--min-duration", "1", "--min-query-count", "20"],
    "multistream": ["--min-duration", "1", "--min-query-count", "20", "--samples-per-query", "2"],
    "server": ["--min-duration", "1.5", "--min-query-count", "20", "--target-qps", "40"],
    "offline": ["--min-duration", "1", "--min-query-count", "20", "--target-qps", "100", "--max-in-flight", "8"],
}


def run_mlperf(out: Path, *args: str, timeout_s: float = 120) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "mlperf", *args, "--out", str(out), "--allow-invalid"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    doc_path = out / "mlperf.json"
    if p.returncode != 0 or not doc_path.exists():
        raise AssertionError(f"inferload mlperf failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    assert (out / "mlperf_log_summary.txt").is_file() and (out / "mlperf_log_detail.txt").is_file()
    doc = json.loads(doc_path.read_text())
    validate_document(doc)
    return doc


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("srv") / "server.log"
    with ServerProcess(ROOT / "models", model_names=["tiny_classifier"], log_path=log, ready_timeout_s=120) as srv:
        yield srv.url


def _check(doc: dict, scenario: str) -> None:
    assert doc["kind"] == "mlperf" and doc["scenario"] == scenario
    assert doc["queries"] and doc["queries"] > 0
    assert doc["sut"]["failed"] == 0 and doc["sut"]["sent"] >= doc["queries"]
    assert doc["latency_ms"]["p50"] > 0 and doc["samples_per_s"] and doc["samples_per_s"] > 0
    assert doc["sut"]["issue_lag_ms"]["p50"] is not None
    if not doc["valid"]:
        assert doc["invalid_reasons"] and all(r["code"].startswith("loadgen_") for r in doc["invalid_reasons"])


@pytest.mark.parametrize("scenario", list(SHORT))
def test_each_scenario_against_the_server(real_server: str, tmp_path: Path, scenario: str):
    doc = run_mlperf(
        tmp_path, "--scenario", scenario, "--target", real_server, "--model", "tiny_classifier", *SHORT[scenario]
    )
    _check(doc, scenario)


@pytest.mark.parametrize("scenario", ["singlestream", "server"])
def test_scenarios_over_grpc(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, scenario: str):
    """The SUT's gRPC sender (grpc.aio, OIP ModelInfer) against the server's gRPC service."""
    log = tmp_path_factory.mktemp("srv-grpc") / "server.log"
    with ServerProcess(ROOT / "models", model_names=["tiny_classifier"], log_path=log, grpc=True) as srv:
        doc = run_mlperf(
            tmp_path, "--scenario", scenario, "--protocol", "grpc", "--target", f"grpc://{srv.grpc_target}",
            "--model", "tiny_classifier", *SHORT[scenario],
        )  # fmt: skip
        n = server_metric(
            srv.url, "inferload_requests_total", model="tiny_classifier", outcome="success", protocol="grpc"
        )
    _check(doc, scenario)
    assert n is not None and n >= doc["sut"]["sent"]  # every sample went over gRPC


@pytest.mark.parametrize("scenario", list(SHORT))
def test_each_scenario_against_a_standin_with_a_known_service_time(standin, tmp_path: Path, scenario: str):
    s = standin("--service-ms", "5")
    doc = run_mlperf(tmp_path, "--scenario", scenario, "--target", s.url, "--model", "m", *SHORT[scenario])
    _check(doc, scenario)
    assert doc["latency_ms"]["min"] >= 5.0  # no answer comes before its service time
    if scenario == "multistream":
        assert doc["samples_per_query"] == 2 and doc["query_latency_ms"]["p50"] >= doc["latency_ms"]["p50"] * 0.999


def test_request_options_reach_the_server_and_asserts_exit_codes(standin, tmp_path: Path):
    s = standin("--service-ms", "1", "--prefix", "/gw", "--token", "sekret")
    token = tmp_path / "token.txt"
    token.write_text("sekret\n")
    args = ["--scenario", "singlestream", "--target", s.url + "/gw", "--model", "m", "--bearer-token-file", str(token)]
    doc = run_mlperf(tmp_path / "a", *args, *SHORT["singlestream"], "--payload", "json")
    _check(doc, "singlestream")
    assert doc["request"]["payload"] == "json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "loadgen.cli", "mlperf", *args, *SHORT["singlestream"], "--allow-invalid"]
    failed = subprocess.run([*base, "--out", str(tmp_path / "b"), "--assert", "p90<0.001ms"], env=env, cwd=ROOT)
    assert failed.returncode == 1
    usage = subprocess.run([*base[:-1], "--scenario", "server", "--out", str(tmp_path / "c")], env=env, cwd=ROOT)
    assert usage.returncode == 2  # server without --target-qps: refused before LoadGen starts


@pytest.mark.timing
def test_singlestream_p90_of_a_fixed_service_time_matches_a_plain_client(standin, tmp_path: Path):
    service_ms = 50.0
    s = standin("--service-ms", f"{service_ms:g}")
    ref = reference_client.measure(s.url, "m", n=40)
    doc = run_mlperf(
        tmp_path, "--scenario", "singlestream", "--target", s.url, "--model", "m", "--min-duration", "2",
        "--min-query-count", "64", "--expected-latency-ms", f"{service_ms:g}",
    )  # fmt: skip
    p90 = doc["latency_ms"]["p90"]
    # LoadGen's path has two thread hops per query that a blocking client has not (LoadGen's issue thread to the
    # SUT's loop, the loop's completion back to LoadGen): each a wake-up, a few ms slower beside a busy neighbour.
    # Allowed: the plain client's p90 + max(10% of the service time, 3 x its p50 - p10 spread).
    allowed = ref.p90 + max(0.1 * service_ms, 3 * ref.spread)
    lag = doc["sut"]["issue_lag_ms"]
    assert service_ms <= p90 <= allowed, (
        f"LoadGen SingleStream p90 {p90:.3f} ms; {ref.describe()}; allowed {allowed:.3f}; SUT issue lag {lag}"
    )
    assert doc["result"]["value"] == p90 and lag["p50"] < 0.05 * service_ms and lag["p99"] < 0.5 * service_ms


def test_find_peak_against_a_single_server_queue(standin, tmp_path: Path):
    """LoadGen's FindPeakPerformance against one FIFO server with a 10 ms service (capacity 100 QPS): it brackets
    from the start rate, bisects, and its answer (in the document) lies below what the queue can serve."""
    s = standin("--service-ms", "10", "--single-server")
    doc = run_mlperf(
        tmp_path, "--scenario", "server", "--find-peak", "--target", s.url, "--model", "m", "--target-qps", "40",
        "--min-duration", "1", "--min-query-count", "20", "--latency-bound-ms", "100", timeout_s=240,
    )  # fmt: skip
    assert doc["mode"] == "find_peak" and doc["find_peak"]["bisected_bounds"]
    peak = doc["result"]["value"]
    assert doc["result"]["metric"] == "peak_qps" and peak == doc["find_peak"]["peak_qps"]
    assert 40 <= peak <= 1.3 * 100.0, f"LoadGen found {peak} QPS for a 100-QPS queue"
