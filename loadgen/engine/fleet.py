"""A fleet of load-generating worker processes driven by this process (the master), reused for every run of a command.

Who: `--workers N` starts N local processes (`inferload worker --master 127.0.0.1:PORT`); `--expect-workers N` waits
for N workers started anywhere with `inferload worker --master THIS_HOST[:PORT]` (the master listens on
`--master-bind ADDR[:PORT]`, default 0.0.0.0:5557). Both may be combined. Locust's master/worker transport (ZeroMQ,
heartbeats) carries everything; Locust's own user dispatch is not used, so a worker that joins, leaves or dies can
never move another worker's load mid-run.

One run (a probe of a search) with the workers ready at its start, k of n:
  1. `inferload_prepare` -> each: the scenario (credentials included), the model info, its stream k of n, its share
     of the closed-loop users, and the files the scenario names (loadgen.engine.shipping: workers need no copy of
     the scenario file or the data). Each builds its payload pool and schedule and answers `inferload_prepared`
     (or the error, which stops the run before any load).
  2. `inferload_go` -> all: each starts its own clock and follows stream k of the schedule (rate/n, a seed derived
     per stream, so the superposition is the requested process), timing every request against its own schedule:
     latency never compares two machines' clocks.
  3. Recorder deltas arrive with Locust's 3-s worker reports and a final `inferload_final`, tagged with the run, and
     are merged exactly (HdrHistogram addition), per worker too (loadgen.results.workers).
A worker that dies or disconnects mid-run (Locust's heartbeat: missing after ~3 s; a local process: at once) makes
the run INVALID with reason `worker_lost`; the others are told to stop (`inferload_abort`) and deliver what they
have; the next run uses the workers left. A worker that joins mid-run waits for the next run. The master never
waits without a bound: preparing, the run and the final reports each have a deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.engine.merge import Collector
from loadgen.engine.scenario import Scenario
from loadgen.util.net import free_port

DEFAULT_MASTER_PORT = 5557
PREPARE_TIMEOUT_S = 60.0
FINAL_GRACE_S = 15.0
TICK_S = 0.25


class FleetError(RuntimeError):
    """The workers cannot run: none connected in time, none left, or one refused the scenario."""


def parse_hostport(text: str, default_host: str, default_port: int = DEFAULT_MASTER_PORT) -> tuple[str, int]:
    """HOST, HOST:PORT, :PORT, [V6]:PORT or a bare IPv6 address -> (host, port)."""
    t = text.strip()
    if not t:
        return default_host, default_port
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif t.count(":") == 1:
        host, _, port = t.partition(":")
    else:  # a name, an IPv4 address or a bare IPv6 address
        host, port = t, ""
    if port and not port.isdigit():
        raise ValueError(f"{text!r}: the port must be a number (HOST[:PORT])")
    p = int(port) if port else default_port
    if not 0 < p < 65536:
        raise ValueError(f"{text!r}: port {p} is out of range")
    return host or default_host, p


@dataclass(frozen=True)
class FleetSpec:
    local: int = 0
    """Worker processes this command starts on this machine."""
    expect: int = 0
    """Workers started elsewhere (`inferload worker --master ...`) to wait for."""
    bind: str | None = None
    """--master-bind ADDR[:PORT]; default 127.0.0.1 (free port) for local workers only, 0.0.0.0:5557 otherwise."""
    timeout_s: float = 120.0
    """How long to wait for the workers to connect."""

    @property
    def total(self) -> int:
        return self.local + self.expect

    def address(self) -> tuple[str, int]:
        if self.bind:
            return parse_hostport(self.bind, "0.0.0.0")
        if self.expect:
            return "0.0.0.0", DEFAULT_MASTER_PORT
        return "127.0.0.1", 0


@dataclass
class RunOutcome:
    participants: dict[str, int] = field(default_factory=dict)
    """worker name -> its stream in this run"""
    lost: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Fleet:
    """The master end: a Locust MasterRunner plus the local worker processes; reused across runs; `close()` ends it."""

    def __init__(self, spec: FleetSpec) -> None:
        import gevent
        from locust.env import Environment
        from locust.event import Events

        from loadgen.engine.users import InferenceUser

        self.spec = spec
        self.gevent = gevent
        host, port = spec.address()
        self.port = port or free_port(host if host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.host = host
        self.env = Environment(user_classes=[InferenceUser], events=Events())
        try:
            self.master = self.env.create_master_runner(master_bind_host=host, master_bind_port=self.port)
        except Exception as e:  # a port in use, an address not on this machine
            raise FleetError(f"cannot listen for workers on {host}:{self.port}: {e}") from None
        self.master.register_message("inferload_hello", self._on_hello)
        self.master.register_message("inferload_prepared", self._on_prepared)
        self.master.register_message("inferload_final", self._on_final)
        self.env.events.worker_report.add_listener(self._on_report)
        self.procs: list[subprocess.Popen] = []
        self.logdir = tempfile.mkdtemp(prefix="inferload-workers-")
        self.names: dict[str, str] = {}  # Locust client id -> worker name (host:pid)
        self.run_id = 0
        self.coll: Collector | None = None
        self.prepared: dict[str, dict[str, Any]] = {}
        self.finals: set[str] = set()
        self.closed = False
        try:
            self._start_local()
            self.wait_for_workers()
        except BaseException:
            self.close()
            raise

    # ---- workers joining --------------------------------------------------------------------------------------
    def _start_local(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env.update({"GEVENT_BACKEND": "select", "PYTHONPATH": os.pathsep.join([root, env.get("PYTHONPATH", "")])})
        for k in range(self.spec.local):
            with open(os.path.join(self.logdir, f"worker{k}.log"), "wb") as logf:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "loadgen.cli", "worker", "--master", f"127.0.0.1:{self.port}"],
                        env=env,
                        cwd=root,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )

    def connected(self) -> list[str]:
        """Locust client ids of the workers ready for a run, in a stable order."""
        return sorted((c.id for c in self.master.clients.ready), key=lambda c: (self.names.get(c, c), c))

    def wait_for_workers(self) -> None:
        need = self.spec.total
        t0 = time.monotonic()
        while len(self.connected()) < need:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() - t0 > self.spec.timeout_s:
                raise FleetError(self._missing_message(need, time.monotonic() - t0, dead))
            self.gevent.sleep(0.05)

    def _missing_message(self, need: int, waited: float, dead: list[subprocess.Popen]) -> str:
        have = self.connected()
        msg = (
            f"waited {waited:.0f} s for {need} workers ({self.spec.local} local, {self.spec.expect} expected from "
            f"elsewhere) on {self.host}:{self.port}: {len(have)} connected"
            + (f" ({', '.join(self.names.get(c, c) for c in have)})" if have else "")
            + f", {need - len(have)} missing"
        )
        if self.spec.expect:
            msg += (
                f"; start each missing one with `inferload worker --master <address of this machine>:{self.port}` "
                "(check that the port is reachable from the worker's machine)"
            )
        if dead:
            msg += f"; {len(dead)} local worker process(es) exited: " + tail_logs(self.logdir)
        return msg

    # ---- messages from workers (run in the master's receiving greenlet) ---------------------------------------
    def _on_hello(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        self.names[msg.node_id] = str(msg.data.get("name") or msg.node_id)

    def _on_prepared(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        d = msg.data
        if d.get("run") == self.run_id:
            self.names[msg.node_id] = str(d.get("name") or msg.node_id)
            self.prepared[msg.node_id] = d

    def _on_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        w = data.get("inferload")
        if w and data.get("inferload_run") == self.run_id and self.coll is not None:
            from loadgen.results.recorded import RecordData

            self.coll.add(RecordData.from_wire(w), self.names.get(client_id, client_id))

    def _on_final(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        d = msg.data
        if d.get("run") != self.run_id or self.coll is None or msg.node_id in self.finals:
            return
        from loadgen.results.recorded import RecordData

        name = self.names.get(msg.node_id, msg.node_id)
        self.coll.add(RecordData.from_wire(d["delta"]), name)
        self.coll.in_flight[name] = 0
        self.finals.add(msg.node_id)

    def _gone(self, cid: str) -> bool:
        from locust.runners import STATE_MISSING

        c = self.master.clients.get(cid)
        if c is None or c.state == STATE_MISSING:
            return True
        name = self.names.get(cid, "")
        pid = name.rpartition(":")[2]
        return any(str(p.pid) == pid and p.poll() is not None for p in self.procs)

    # ---- one run ----------------------------------------------------------------------------------------------
    def run(self, scenario: Scenario, info: dict, coll: Collector, prog: Any, window: Any = None) -> RunOutcome:
        from loadgen.engine.shipping import pack

        out = RunOutcome()
        files = pack(scenario.with_secrets())  # ShipError: before any load
        for _ in range(3):
            ids = [c for c in self.connected() if not self._gone(c)]
            if not ids:
                raise FleetError(
                    f"no workers left: every worker of this fleet was lost (it started with {self.spec.total}); "
                    "start workers again or rerun"
                )
            self._prepare(ids, scenario, info, files)
            gone = self._wait_prepared(ids)
            if not gone:
                break
            out.warnings.append(
                f"worker(s) {', '.join(gone)} left before the run started: prepared again with the workers left"
            )
        else:
            raise FleetError("workers kept leaving while the run was being prepared (three times)")
        if len(ids) < self.spec.total:
            out.warnings.append(f"{len(ids)} of the {self.spec.total} workers this command started with take part")
        self.coll = coll
        out.participants = {self.names.get(c, c): k for k, c in enumerate(ids)}
        for cid in ids:
            self.master.send_message("inferload_go", {"run": self.run_id}, client_id=cid)
        t_run = time.perf_counter()
        deadline = time.monotonic() + scenario.longest_s
        aborted_at: float | None = None
        while True:
            live = [c for c in ids if c not in self.finals]
            if not live:
                break
            for c in live:
                if self._gone(c) and self.names.get(c, c) not in out.lost:
                    out.lost.append(self.names.get(c, c))
            waiting = [c for c in live if self.names.get(c, c) not in out.lost]
            if not waiting:
                break
            if out.lost and aborted_at is None:
                aborted_at = time.monotonic()
                for c in waiting:
                    self.master.send_message("inferload_abort", {"run": self.run_id}, client_id=c)
            now = time.monotonic()
            if now > deadline or (aborted_at is not None and now - aborted_at > FINAL_GRACE_S):
                late_names = [self.names.get(c, c) for c in waiting]
                out.lost += late_names
                out.warnings.append(f"no final report from {', '.join(late_names)} before the run's deadline")
                break
            self.gevent.sleep(TICK_S)
            el = time.perf_counter() - t_run
            if window is not None and not window.started and el >= scenario.warmup_s and not out.lost:
                window.start()
            prog.update(el, coll.live, sum(coll.in_flight.values()))
        if window is not None and window.started:
            window.end()
        out.late = [c for c in self.connected() if c not in ids]
        self.coll = None
        return out

    def _prepare(self, ids: list[str], scenario: Scenario, info: dict, files: dict) -> None:
        n = len(ids)
        self.run_id += 1
        self.prepared, self.finals, self.coll = {}, set(), None
        users = int(scenario.users or 0)
        for k, cid in enumerate(ids):
            share = 1 if scenario.mode == "open" else users // n + (1 if k < users % n else 0)
            self.master.send_message(
                "inferload_prepare",
                {
                    "run": self.run_id,
                    "stream": k,
                    "streams": n,
                    "users": share,
                    "scenario": scenario.with_secrets(),
                    "info": info,
                    "files": files,
                },
                client_id=cid,
            )

    def _wait_prepared(self, ids: list[str]) -> list[str]:
        """Wait until every worker of `ids` is ready; returns those lost meanwhile (then the run is prepared again)."""
        t0 = time.monotonic()
        while True:
            bad = [d for d in self.prepared.values() if not d.get("ok")]
            if bad:
                from loadgen.engine.payloads import PayloadError

                raise PayloadError("; ".join(f"worker {d.get('name')}: {d.get('error')}" for d in bad))
            if all(c in self.prepared for c in ids):
                return []
            gone = [c for c in ids if c not in self.prepared and self._gone(c)]
            if gone:
                return [self.names.get(c, c) for c in gone]
            if time.monotonic() - t0 > PREPARE_TIMEOUT_S:
                missing = [c for c in ids if c not in self.prepared]
                raise FleetError(
                    f"{len(missing)} worker(s) did not get ready for the run within {PREPARE_TIMEOUT_S:g} s: "
                    + ", ".join(missing)
                    + (f"; local worker logs: {tail_logs(self.logdir)}" if self.procs else "")
                )
            self.gevent.sleep(0.02)

    # ---- the end ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.master.quit()  # tells every worker to quit
        except Exception:
            pass
        try:
            self.master.server.close(linger=0)
        except Exception:
            pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def tail_logs(logdir: str, n: int = 1500) -> str:
    out = []
    for f in sorted(Path(logdir).glob("*.log")):
        out.append(f"[{f.name}] " + f.read_text(errors="replace")[-n:])
    return "\n".join(out)
