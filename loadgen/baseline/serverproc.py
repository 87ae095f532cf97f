"""Run the model server as a child process on a free loopback port: the one way `demo`, `matrix`, `tune`, the
benchmarks and the tests start a server.

The server always runs in its own process: the load generator imports locust, whose gevent monkey-patching
must never reach the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from loadgen.util.net import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """`with ServerProcess(models_dir, model_names=[...]) as srv: srv.url` — started, ready, always stopped.

    `nice` > 0 lowers the server's CPU priority: when it shares a small machine with the load generator, the
    generator then still wakes on time for its schedule (a starved generator makes open-loop runs INVALID).
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        model_names: list[str] | None = None,
        overrides: dict | None = None,
        model_overrides: dict | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout_s: float = 300.0,
        log_path: Path | None = None,
        env: dict | None = None,
        nice: int = 0,
        args: Sequence[str] = (),
        clean_env: bool = False,
        grpc: bool = False,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        # gRPC: off unless asked for (a fixed default port would collide between servers); then a free port
        self.grpc_port = free_port(host) if grpc else 0
        self.grpc_target = f"{host}:{self.grpc_port}" if grpc else None
        """host:port of the gRPC service (tritonclient.grpc's form), or None."""
        self.ready_timeout_s = ready_timeout_s
        self.log_path = log_path
        base = {k: v for k, v in os.environ.items() if not (clean_env and k.startswith("INFERLOAD_"))}
        self.env = dict(base, **(env or {}))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p)
        self.args = list(args)
        self.env["INFERLOAD_LOG_LEVEL"] = self.env.get("INFERLOAD_LOG_LEVEL", "warning")
        if model_names:
            self.env["INFERLOAD_MODEL_NAMES"] = ",".join(model_names)
        if overrides:
            self.env["INFERLOAD_OVERRIDES"] = json.dumps(overrides)
        if model_overrides:
            self.env["INFERLOAD_MODEL_OVERRIDES"] = json.dumps(model_overrides)
        self.nice = nice
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> ServerProcess:
        # Output goes to a file, never a pipe: nobody reads a pipe while the server runs, and a full one would
        # block the server. Without log_path it is a temporary file, kept only to report a failed start.
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w+")
        else:
            self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--models",
                str(self.models_dir),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--grpc-port",
                str(self.grpc_port),
                *self.args,
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None,
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read()
                raise RuntimeError(
                    f"server exited with code {self.proc.returncode} before it was ready:\n{err[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server at {self.url} not ready after {self.ready_timeout_s:.0f}s")
            time.sleep(0.1)

    def log(self, tail: int = 4000) -> str:
        """The end of the server's output so far (for failure messages)."""
        if self._log is None:
            return ""
        fd = self._log.fileno()  # pread: the child shares this file's offset, which must not move
        size = os.fstat(fd).st_size
        start = max(0, size - tail)
        return os.pread(fd, size - start, start).decode(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
