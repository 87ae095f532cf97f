"""Locust users: the open-loop dispatcher and the closed-loop user (one class, `InferenceUser`).

Imports locust/gevent at module level: import this module only inside functions that generate load
(runner.run_scenario, the locustfile), never from anything the CLI imports at startup.

Per generating process there is one `LoadContext` (attached as `environment.inferload`): the scenario,
its payload pool, the precomputed schedule (open loop), the Recorder, and the end-of-run bookkeeping.

Open loop: the first InferenceUser of a process becomes the dispatcher (further ones idle: with
`locust -f`, run one user per worker process). It runs `loadgen.engine.dispatch.OpenLoopDispatcher` (the
pure scheduling logic, unit-tested on a simulated clock) with gevent's clock (`GeventClock`): it walks the
precomputed schedule, sleeps until each scheduled instant and spawns the request in its own greenlet without
waiting for earlier ones. Latency runs from the scheduled instant. When `max_in_flight` (per process: cap /
streams) requests are in flight, the next arrival is dropped and counted — never a silent wait.
Closed loop: each InferenceUser sends, waits for the answer, thinks `think_time_ms`, repeats.
Both fire Locust's `events.request` (so the web UI shows stats) with the exact timestamps in
`context["inferload"]`; the Recorder listens to that event and is the source of truth.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import gevent
import psutil
from gevent.event import Event
from geventhttpclient import HTTPClient
from locust import User, task

from loadgen.engine.arrivals import derive_seed
from loadgen.engine.codec import make_codec
from loadgen.engine.dispatch import OpenLoopDispatcher
from loadgen.engine.gcpacer import GcPacer
from loadgen.engine.payloads import SAMPLE_CHECK_EVERY
from loadgen.engine.recorder import Recorder
from loadgen.engine.scenario import Scenario
from loadgen.engine.schedule import scenario_offsets
from loadgen.engine.target import target_of
from loadgen.results.recorded import GRPC_REFUSALS, REFUSAL_STATUSES

log = logging.getLogger("inferload")
perf = time.perf_counter

SPIN_THRESHOLD_S = 0.002
"""Waits longer than this sleep until EARLY_WAKE_S before the instant, then yield-spin to it (keeps the
dispatcher's lag ~0.01 ms at low rates, where waking an idle CPU takes 0.2-0.5 ms on a VM, for <= 0.5 ms
of CPU per arrival; at rates above 1/SPIN_THRESHOLD_S = 500/s the dispatcher never spins); shorter waits just sleep."""
EARLY_WAKE_S = 0.0005
CPU_SAMPLE_INTERVAL_S = 1.0


class GeventClock:
    """loadgen.engine.dispatch.Clock on time.perf_counter and gevent: other greenlets run while it sleeps."""

    now = staticmethod(perf)
    sleep = staticmethod(gevent.sleep)

    @staticmethod
    def sleep_until(target: float) -> None:
        wait = target - perf()
        if wait > SPIN_THRESHOLD_S:
            gevent.sleep(wait - EARLY_WAKE_S)
            while perf() < target:
                gevent.sleep(0)
        elif wait > 0:
            gevent.sleep(wait)


STREAM_CHUNK = 512 * 1024
"""A big body leaves in chunks of at most this, with a yield between them, so a 2 MB body never holds the event
loop for the time of one 2 MB send: the dispatcher's next wake-up is not delayed behind it. Measured (2 MB JSON
bodies, 50 req/s Poisson, 1,010 requests, generator and stand-in on their own CPUs): schedule-lag p99 3.3 ms sent
whole, 2.8 / 2.0 / 1.1 / 1.0 / 1.0 ms in chunks of 32 KB / 64 KB / 256 KB / 512 KB / 1 MB (smaller chunks cost
more syscalls and switches than they save)."""


class PartsBody:
    """A request body made of parts (payloads.PayloadPool.next_parts), written in order, never joined.

    geventhttpclient sends a body that is not `bytes` but has a length with Content-Length, through the socket's
    `sendfile` fallback, which calls `read()` until it returns b"". `read` ignores the size hint (the loop handles a
    longer block) and returns the next piece of at most STREAM_CHUNK bytes, yielding to other greenlets between
    pieces. `seek` rewinds (sendfile seeks after writing; a retried request resends the whole body)."""

    mode = "rb"

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)
        self._i = 0
        self._off = 0

    def __len__(self) -> int:
        return self.size

    def read(self, _hint: int = -1) -> bytes | memoryview:
        parts = self.parts
        if self._i >= len(parts):
            return b""
        if self._i or self._off:
            gevent.sleep(0)
        part = parts[self._i]
        end = min(len(part), self._off + STREAM_CHUNK)
        piece = part[self._off : end] if self._off or end < len(part) else part
        if end >= len(part):
            self._i, self._off = self._i + 1, 0
        else:
            self._off = end
        return piece

    def seek(self, _offset: int, _whence: int = 0) -> int:
        self._i = self._off = 0
        return 0


def request_body(parts: list[bytes | memoryview]) -> bytes | PartsBody:
    """Small bodies as one bytes object (one write with the head); big ones streamed from their parts."""
    if len(parts) == 1 and isinstance(parts[0], bytes) and len(parts[0]) <= STREAM_CHUNK:
        return parts[0]
    body = PartsBody(parts)
    return b"".join(parts) if body.size <= STREAM_CHUNK else body


def _nodelay(sock: Any) -> None:
    """Head and body leave in separate writes: without TCP_NODELAY, Nagle holds the body's last segment."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class InvalidResponse(Exception):
    pass


class GrpcStatusError(Exception):
    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"gRPC {code}: {details[:200]}")
        self.code = code


class HTTPStatusError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


def _server_timing(resp: Any) -> str | None:
    """The Server-Timing header as one string (repeated headers joined, as HTTP allows)."""
    st = resp.get("server-timing")
    return ", ".join(st) if isinstance(st, list) else st


def error_key(exc: BaseException) -> str:
    if isinstance(exc, (gevent.Timeout, TimeoutError)):
        return "Timeout"
    return type(exc).__name__


class LoadContext:
    """State of one generating process for one run."""

    def __init__(
        self, scenario: Scenario, info: dict[str, Any], *, stream: int = 0, streams: int = 1, source: str = "local"
    ) -> None:
        self.scenario = scenario
        self.info = info
        self.stream, self.streams, self.source = stream, streams, source
        self.recorder = Recorder(scenario.warmup_s, scenario.duration_s, source, scenario.late_threshold_ms / 1000.0)
        self.pool = make_codec(scenario, info, seed=derive_seed(scenario.seed, 1000 + stream))
        self.path = self.pool.path
        self.schedule: list[float] = []
        if scenario.mode == "open":  # poisson / constant at rate_rps, or a shape: burst, ramp, trace replay
            self.schedule = scenario_offsets(scenario, stream=stream, streams=streams)
        self.cap = max(1, scenario.max_in_flight // streams)
        self.target = target_of(scenario)
        self.headers = self.target.request_headers()
        self.grpc = scenario.protocol == "grpc"
        self.send = self.do_request_grpc if self.grpc else self.do_request
        self.timeout_s = scenario.timeout_ms / 1000.0
        self.t0: float | None = None
        self.dispatcher_claimed = False
        self.active_users = 0
        self.stopping = False
        self.finished = Event()
        self.checked = 0
        self.events: Any = None
        self._cpu_glet: Any = None
        self.gc = GcPacer()

    # ---- wiring -------------------------------------------------------------------------------------
    def attach(self, environment: Any) -> None:
        environment.inferload = self
        self.events = environment.events
        environment.events.request.add_listener(self.recorder.on_request)

    def detach(self, environment: Any) -> None:
        self.stop()
        try:
            environment.events.request.remove_listener(self.recorder.on_request)
        except (ValueError, AttributeError):
            pass

    def make_client(self, concurrency: int) -> Any:
        t = self.target
        if self.grpc:
            from loadgen.engine.grpc_transport import GrpcClient

            return GrpcClient(t)  # one HTTP/2 connection: calls multiplex on it
        tls: dict[str, Any] = {}
        if t.https:
            import gevent.ssl

            ctx = t.ssl_context(gevent.ssl.create_default_context)
            tls = {"ssl": True, "insecure": t.insecure, "ssl_context_factory": lambda *a, **kw: ctx}
        client = HTTPClient(
            t.host,
            t.port,
            concurrency=concurrency,
            connection_timeout=self.timeout_s,
            network_timeout=self.timeout_s,
            **tls,
        )
        client._connection_pool.after_connect = _nodelay
        return client

    def start_clock(self) -> float:
        if self.t0 is None:
            self.t0 = perf()
            self.gc.start()
            self._cpu_glet = gevent.spawn(self._sample_cpu)
        return self.t0

    def _sample_cpu(self) -> None:
        """Every CPU_SAMPLE_INTERVAL_S: the process's CPU share, then the paced garbage collection (GcPacer)."""
        proc = psutil.Process(os.getpid())
        proc.cpu_percent(None)
        assert self.t0 is not None
        k = 1
        while not self.finished.is_set():
            target = self.t0 + k * CPU_SAMPLE_INTERVAL_S
            gevent.sleep(max(0.0, target - perf()))
            k += 1
            self.recorder.on_cpu(perf() - self.t0 - CPU_SAMPLE_INTERVAL_S / 2, proc.cpu_percent(None))
            self.gc.tick()

    def stop(self) -> None:
        self.stopping = True
        if self._cpu_glet is not None:
            self._cpu_glet.kill(block=False)
        self.gc.stop()

    def mark_finished(self) -> None:
        if not self.finished.is_set():
            self.finished.set()
            if self._cpu_glet is not None:
                self._cpu_glet.kill(block=False)
            self.gc.stop()

    # ---- one request --------------------------------------------------------------------------------
    def do_request(self, client: HTTPClient, scheduled: float) -> None:
        """Send one request scheduled at t0+scheduled; report it through events.request."""
        parts, headers = self.pool.next_parts()
        body = request_body(parts)
        if self.headers:
            headers = {**self.headers, **headers}
        ok, err, exc, st, data = False, None, None, None, b""
        sent = perf()
        try:
            with gevent.Timeout(self.timeout_s):
                resp = client.request("POST", self.path, body=body, headers=headers)
                data = resp.read()
                resp.release()
            status = resp.status_code
            codec = self.pool
            if codec.success(status) and (data or codec.allow_empty):
                ok = True
                st = _server_timing(resp)
                problem = self._sampled_problem(data, resp.get)
                if problem:
                    ok, err, exc = False, problem[0], InvalidResponse(problem[1])
            elif codec.success(status):
                err, exc = "EmptyBody", InvalidResponse(f"HTTP {status} with an empty body")
            else:
                err, exc = str(status), HTTPStatusError(status, data)
                if status in REFUSAL_STATUSES:  # how long the server took to refuse (its own Server-Timing)
                    st = _server_timing(resp)
        except gevent.Timeout as e:
            err, exc = "Timeout", TimeoutError(f"no answer within {self.scenario.timeout_ms:g} ms ({e})")
        except Exception as e:
            err, exc = error_key(e), e
        self._report("POST", scheduled, sent, ok, err, exc, st, len(data))

    def do_request_grpc(self, client: Any, scheduled: float) -> None:
        """do_request over gRPC (grpc_transport.GrpcClient): the same events, keys by gRPC status code name."""
        parts, _ = self.pool.next_parts()
        body = b"".join(parts)
        ok, err, exc, st, data = False, None, None, None, b""
        sent = perf()
        try:
            code, data, trailers, details = client.infer(body, self.timeout_s)
            if code is None and data:
                ok = True
                st = trailers.get("server-timing")
                problem = self._sampled_problem(data, trailers.get)
                if problem:
                    ok, err, exc = False, problem[0], InvalidResponse(problem[1])
            elif code is None:
                err, exc = "EmptyBody", InvalidResponse("gRPC OK with an empty answer")
            elif code == "DEADLINE_EXCEEDED" and perf() - sent >= self.timeout_s * 0.99:
                err, exc = "Timeout", TimeoutError(f"no answer within {self.scenario.timeout_ms:g} ms")
            else:
                err, exc = code, GrpcStatusError(code, details)
                if code in GRPC_REFUSALS:
                    st = trailers.get("server-timing")
        except Exception as e:
            err, exc = error_key(e), e
        self._report("gRPC", scheduled, sent, ok, err, exc, st, len(data))

    def _sampled_problem(self, data: bytes, header: Any) -> Any:
        """The codec's judgement of a successful answer: every answer with check_every, else the first 3 and 1 in
        SAMPLE_CHECK_EVERY (the rest had the cheap check); None when not judged or fine."""
        n = self.checked
        self.checked = n + 1
        codec = self.pool
        if codec.check_every or n < 3 or n % SAMPLE_CHECK_EVERY == 0:
            return codec.judge(data, header)
        return None

    def _report(
        self, kind: str, scheduled: float, sent: float, ok: bool, err: Any, exc: Any, st: Any, length: int
    ) -> None:
        """Locust's events.request, with the exact instants (from t0) the Recorder reads."""
        t0 = self.t0
        assert t0 is not None
        done = perf()
        self.events.request.fire(
            request_type=kind,
            name=self.path,
            response_time=(done - t0 - scheduled) * 1000.0,
            response_length=length,
            exception=exc,
            context={"inferload": (scheduled, sent - t0, done - t0, ok, err, st)},
        )

    # ---- loops --------------------------------------------------------------------------------------
    def run_open(self) -> None:
        """The open-loop dispatcher (loadgen.engine.dispatch) on gevent's clock, each request in its own greenlet."""
        client = self.make_client(self.cap)
        t0 = self.start_clock()
        spawn, do_request = gevent.spawn, self.send
        dispatcher = OpenLoopDispatcher(
            self.schedule,
            GeventClock(),
            lambda off: spawn(do_request, client, off),
            self.recorder,
            self.cap,
            stopping=lambda: self.stopping,
        )
        try:
            dispatcher.run(t0)
            dispatcher.drain(self.timeout_s)
        finally:
            self.mark_finished()
            client.close()

    def run_closed(self) -> None:
        client = self.make_client(1)
        t0 = self.start_clock()
        end = t0 + self.scenario.end_s
        think = self.scenario.think_time_ms / 1000.0
        rec = self.recorder
        self.active_users += 1
        try:
            while not self.stopping:
                now = perf()
                if now >= end:
                    break
                rec.on_send(now - t0)
                self.send(client, now - t0)
                if think:
                    gevent.sleep(think)
        finally:
            self.active_users -= 1
            if self.active_users == 0:
                self.mark_finished()
            client.close()


class InferenceUser(User):
    """Open-loop dispatcher or closed-loop user, per `environment.inferload.scenario.mode`."""

    @task
    def generate(self) -> None:
        ctx: LoadContext | None = getattr(self.environment, "inferload", None)
        if ctx is None:
            log.error("inferload: no LoadContext on the environment (run via `inferload run` or the locustfile)")
        elif ctx.scenario.mode == "open":
            if not ctx.dispatcher_claimed:
                ctx.dispatcher_claimed = True
                ctx.run_open()
            else:
                log.warning("inferload: open loop uses one user per process; extra users stay idle")
        else:
            ctx.run_closed()
        while True:  # done: idle until the runner stops us (returning would re-run the task)
            gevent.sleep(3600)


def install_worker_reporting(environment: Any, get_ctx: Any, tag: Any = None) -> None:
    """Worker side: ship recorder deltas with each Locust report (report_to_master), and a final delta
    in an `inferload_final` message once this process's part of the run has finished and drained.
    `tag()`: more keys for the report (a fleet's run id, loadgen.engine.fleet_worker)."""

    def on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
        ctx = get_ctx()
        if ctx is not None and ctx.t0 is not None:
            data["inferload"] = ctx.recorder.take().to_wire()
            if tag is not None:
                data.update(tag())

    environment.events.report_to_master.add_listener(on_report_to_master)


def send_final_when_finished(environment: Any, ctx: LoadContext, **extra: Any) -> Any:
    """The greenlet that sends this process's final delta (with `extra` keys) once its part has finished."""

    def _wait_and_send() -> None:
        ctx.finished.wait()
        delta = ctx.recorder.take()
        environment.runner.send_message(
            "inferload_final", {"source": ctx.source, "stream": ctx.stream, "delta": delta.to_wire(), **extra}
        )

    return gevent.spawn(_wait_and_send)
