"""Fixtures for load-generator tests: stand-in OIP servers and the generator, each in a subprocess.

The generator runs in its own process (`python -m loadgen.cli run ...`): importing locust monkey-patches
the importing process with gevent, which must never happen to the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STANDIN = HERE / "standin_server.py"


class StandIn:
    """A test server script run as a subprocess that prints "PORT <n>" when listening (the OIP stand-in by default;
    `script` names another, e.g. json_endpoint.py)."""

    def __init__(self, *args: str, script: Path = STANDIN) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", "0", "--max-lifetime-s", "120", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{script.name} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def standin() -> Iterator[Callable[..., StandIn]]:
    """standin("--service-ms", "20") -> a running stand-in server; all are stopped after the test."""
    started: list[StandIn] = []

    def start(*args: str) -> StandIn:
        s = StandIn(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def run_generator(tmp_path: Path, *args: str, timeout_s: float = 90) -> dict[str, Any]:
    """Run `inferload run` in a subprocess; return the result JSON."""
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*.json')))}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", *args, "--out", str(out), "--no-progress", "--allow-invalid"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if p.returncode != 0 or not out.exists():
        raise AssertionError(f"inferload run failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return json.loads(out.read_text())


@pytest.fixture
def generate(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    return lambda *args, **kw: run_generator(tmp_path, *args, **kw)
