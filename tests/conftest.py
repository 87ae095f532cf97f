"""Test lanes. Every test runs in `make test` (CI); `make test-fast` (`pytest -m "not e2e and not timing and not slow"`) runs
the rest in about a minute on 2 cores, for the edit loop.

- `e2e`: starts something real — a server process or an in-process uvicorn, a stand-in server, the CLI in a
  subprocess (and so Locust), or an external tool (promtool, Prometheus, Chromium, mkdocs, docker-compose,
  perf_analyzer, ruff/mypy).
- `slow`: in-process and pure, but seconds long each (whole simulated searches, every plot of every report).
- `timing`: judges measured time (latency, rates, drain) against a truth or a reference measured in the same test.
  Such a test needs a quiet machine more than any other: `make test` runs this lane after everything else has run
  (on two processes, pytest-xdist `--dist loadfile`), with at most two timing modules side by side: each judges
  against a truth or reference measured in the same test, so a neighbour moves both (checked under
  ../shared/tools/noisy). Run one alone when it fails on a loaded machine.

A single test of an e2e module whose subject is a VALID verdict carries `@pytest.mark.timing` itself (a VALID verdict
judges measured lateness: with ~80 requests one late send beside a busy neighbour can decide it); the module's
other tests run theirs with `--allow-invalid`.

Under xdist a module's tests stay together in one process, in file order, so module- and session-scoped servers are
started once per process that needs them. A test may share the machine with one other module's tests: nothing
outside `timing` may depend on the machine being quiet (load runs pass `--allow-invalid` unless their verdict is
the subject; the stand-ins and servers take port 0 or a free port).

Lanes are assigned here, once, by module (a module's tests share their setup) and by the fixtures a test uses, so a
new test file lands in its lane by being listed below or by using a server fixture; `test_lanes_name_real_files`
(tests/test_lanes.py) keeps the lists honest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# In-process servers (create_app with ServerSettings()) would otherwise all try the gRPC default port 8001: tests that
# want gRPC ask for it (ServerProcess(grpc=True) takes a free port, which it always passes explicitly).
os.environ.setdefault("INFERLOAD_GRPC_PORT", "0")

ROOT = Path(__file__).resolve().parent

E2E_MODULES = frozenset(
    {
        "curves/test_chromium.py",
        "curves/test_e2e_sweep.py",
        "deploy/test_compose.py",
        "deploy/test_dashboards.py",
        "deploy/test_dashboards_live.py",
        "deploy/test_lock.py",
        "deploy/test_prometheus_config.py",
        "deploy/test_scripts.py",
        "deploy/test_k8s.py",
        "foundation/test_bench.py",
        "foundation/test_models_cli.py",
        "foundation/test_serverproc.py",
        "loadgen/test_any_server.py",
        "loadgen/test_cli.py",
        "loadgen/test_fleet.py",
        "loadgen/test_fleet_netns.py",
        "loadgen/test_grpc_run.py",
        "loadgen/test_http_json_e2e.py",
        "loadgen/test_input_data_e2e.py",
        "loadgen/test_known_answers.py",
        "loadgen/test_mlperf_e2e.py",
        "loadgen/test_overload_cli.py",
        "loadgen/test_peak_md1.py",
        "loadgen/test_shapes_cli.py",
        "server/test_admission.py",
        "server/test_drain_load.py",
        "server/test_fastpath.py",
        "server/test_grpc.py",
        "server/test_header_limit.py",
        "server/test_http.py",
        "server/test_httpproto.py",
        "server/test_infer_http.py",
        "server/test_malloc.py",
        "server/test_metrics.py",
        "server/test_openvino.py",
        "server/test_perf_analyzer.py",
        "server/test_selfcheck.py",
        "server/test_shutdown.py",
        "server/test_triton_client.py",
        "zoo/test_zoo.py",
        "test_architecture.py",
        "test_docs.py",
    }
)
TIMING_MODULES = frozenset(
    {
        "loadgen/test_known_answers.py",
        "loadgen/test_peak_md1.py",
        "server/test_drain_load.py",
    }
)
SLOW_MODULES = frozenset(
    {
        "curves/test_tune_run.py",  # whole simulated tune searches, checkpoints and resumes
        "curves/test_html_report.py",  # renders every plot of every document kind (matplotlib)
        "curves/test_compare_verdict.py",  # simulated peak and tune searches behind each comparison
    }
)
# Tests of ONNX Runtime's OpenVINO provider: they skip (with the reason) outside the OpenVINO environment; `make
# test-openvino` (CI, after `make test`) builds .venv-openvino and runs `-m openvino` there.
OPENVINO_MODULES = frozenset({"server/test_openvino.py"})
E2E_FIXTURES = frozenset({"standin", "generate", "server", "client"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts a real server, process or external tool (tests/conftest.py)")
    config.addinivalue_line("markers", "timing: judges measured time against a truth or a same-test reference")
    config.addinivalue_line("markers", "slow: in-process but seconds long (simulated searches, every plot)")
    config.addinivalue_line("markers", "openvino: needs onnxruntime-openvino (`make test-openvino`; skipped elsewhere)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        if rel in E2E_MODULES or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        if rel in TIMING_MODULES:
            item.add_marker(pytest.mark.timing)
        if rel in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if rel in OPENVINO_MODULES:
            item.add_marker(pytest.mark.openvino)
