"""Fixtures: a temp model repository with the tiny models, and a real `python -m server` subprocess on
127.0.0.1, one per HTTP front (tests/server/fronts.py: the fast path on, off, failed self-check, plain httptools):
every test that uses `server` or `client` is a conformance test that runs against each front.
No locust/gevent is imported in this process (tritonclient runs in a subprocess).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from loadgen.baseline.serverproc import ServerProcess
from tests.server.fronts import FRONTS, server_args
from tests.waiting import metric_value

ROOT = Path(__file__).resolve().parents[2]
TINY = ("tiny_classifier", "tiny_classifier_jpeg", "tiny_detector")

# A tiny_classifier whose queue holds one request and whose oldest request waits 300 ms for batch-mates:
# every other concurrent request meets a full queue (503 + Retry-After), deterministically.
QUEUE1_CONFIG = """
builtin = "tiny_classifier"
file = "../tiny_classifier/model.onnx"
max_batch_size = 8
[batching]
max_queue_delay_ms = 300.0
max_queue_size = 1
default_timeout_ms = 10000
[instances]
count = 1
intra_op_threads = 1
"""

# A tiny_classifier whose requests wait 600 ms in the queue: "in flight" long enough to SIGTERM the server.
SLOW_CONFIG = QUEUE1_CONFIG.replace("max_queue_delay_ms = 300.0", "max_queue_delay_ms = 600.0").replace(
    "max_queue_size = 1", "max_queue_size = 64"
)


def make_repository(root: Path, extra: dict[str, str] | None = None) -> Path:
    """Copies of the tiny model configs (+ their ONNX files if already built, to save time)."""
    repo = root / "models"
    repo.mkdir(parents=True, exist_ok=True)
    for name in TINY:
        src = ROOT / "models" / name
        dst = repo / name
        dst.mkdir(exist_ok=True)
        shutil.copy(src / "config.toml", dst / "config.toml")
        if (src / "model.onnx").exists():
            shutil.copy(src / "model.onnx", dst / "model.onnx")
    for name, text in (extra or {}).items():
        (repo / name).mkdir(exist_ok=True)
        (repo / name / "config.toml").write_text(text)
    return repo


def start_server(
    repo: Path,
    log_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    grpc: bool = False,
) -> ServerProcess:
    """`python -m server` on a free loopback port with extra flags `args`, started by the product's own
    ServerProcess (the developer's INFERLOAD_* environment is not inherited); ready when it returns. `grpc`: the
    gRPC service on a second free port (`.grpc_target`), else none."""
    return ServerProcess(
        repo,
        log_path=log_path,
        env=env,
        args=["--log-level", "warning", *args],
        clean_env=True,
        ready_timeout_s=timeout_s,
        grpc=grpc,
    ).start()


def server_metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of the server's own /metrics (None when that series is absent)."""
    return metric_value(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels)


def stop_server(sp: ServerProcess, timeout_s: float = 20.0) -> int | None:
    return sp.stop(timeout_s)


def start_front(front: str, repo: Path, log_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`start_server` with the HTTP front `front` (tests/server/fronts.py); the process has `.front`."""
    extra, front_env = server_args(front, log_path.parent)
    sp = start_server(repo, log_path, *extra, *args, env={**front_env, **(env or {})})
    sp.front = front  # type: ignore[attr-defined]
    return sp


@pytest.fixture(scope="session", params=FRONTS)
def server(request, tmp_path_factory) -> ServerProcess:
    root = tmp_path_factory.mktemp(f"server-{request.param}")
    repo = make_repository(root, {"tiny_queue1": QUEUE1_CONFIG})
    sp = start_front(request.param, repo, root / "server.log", "--max-body-bytes", str(1024 * 1024))
    yield sp
    stop_server(sp)


@pytest.fixture(scope="session")
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=20.0) as c:
        yield c
