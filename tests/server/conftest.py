"""Fixtures: a temp model repository with the tiny models, and a real `python -m server` subprocess on
127.0.0.1 (one per session). No locust/gevent is imported in this process (tritonclient runs in a subprocess).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.waiting import metric_value, wait_until

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@dataclass
class ServerProc:
    proc: subprocess.Popen
    url: str
    port: int
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def start_server(repo: Path, log_path: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> ServerProc:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOAD_")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(ROOT)
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--models", str(repo), "--port", str(port), "--log-level", "warning", *args],
        cwd=str(ROOT), env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    sp = ServerProc(proc, f"http://127.0.0.1:{port}", port, log_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} during startup:\n{sp.log()}")
        return httpx.get(f"{sp.url}/v2/health/ready", timeout=1.0).status_code == 200

    try:
        wait_until(ready, timeout_s=timeout_s, interval_s=0.1, ignore=(httpx.HTTPError,),
                   what=f"server ready ({sp.url}/v2/health/ready answering 200)", describe=sp.log)
    except BaseException:
        stop_server(sp)
        raise
    return sp


def server_metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of the server's own /metrics (None when that series is absent)."""
    return metric_value(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels)


def stop_server(sp: ServerProc, timeout_s: float = 20.0) -> int:
    if sp.proc.poll() is None:
        sp.proc.send_signal(signal.SIGTERM)
        try:
            sp.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            sp.proc.kill()
            sp.proc.wait(5)
    return sp.proc.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> ServerProc:
    root = tmp_path_factory.mktemp("server")
    repo = make_repository(root, {"tiny_queue1": QUEUE1_CONFIG})
    sp = start_server(repo, root / "server.log", "--max-body-bytes", str(1024 * 1024))
    yield sp
    stop_server(sp)


@pytest.fixture(scope="session")
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=20.0) as c:
        yield c
