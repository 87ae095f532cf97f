"""The system under test that MLPerf LoadGen drives: a thin, non-blocking bridge from LoadGen's issue thread to an
asyncio HTTP client, so the SUT is never the bottleneck (issue #20).

LoadGen calls `issue(query_samples)` on its own thread and expects it to return at once. `AsyncSut.issue` only
notes the instant and hands the samples to an asyncio loop on another thread (`call_soon_threadsafe`); the loop sends
each sample as one request (at most `max_in_flight` at a time) and calls `complete(sample_id)` when its answer
arrives. The **issue lag** of every sample, from LoadGen's issue call to the moment its request is written, is kept
and reported beside LoadGen's figures: LoadGen times latency from its own scheduled instant, so a lagging SUT would
make LoadGen's numbers pessimistic, and the document says by how much.

The transport is injected (`send(index) -> awaitable (status, body, header)`): `http_sender` (aiohttp, with the
target's URL prefix, headers, bearer token and TLS) or `grpc_sender` (grpc.aio: OIP ModelInfer, the gRPC status code
name as the status, 0 for OK); tests use fakes. Request bodies are built once, before
the run, by inferload's own codecs (loadgen.engine.codec: OIP binary or JSON, http-json templates): one body per QSL
sample, so no encoding happens while LoadGen's clock runs. No locust or gevent here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Header = Callable[[str], Any]
Send = Callable[[int], Awaitable[tuple[int, bytes, Header]]]
Complete = Callable[[int], None]
Judge = Callable[[int, bytes, Header], "tuple[str, str] | None"]
CHECK_FIRST = 3
CHECK_EVERY = 64


@dataclass
class SutStats:
    """What the SUT saw: per-sample issue lag (ns: LoadGen's issue call to the sample's task running on the loop),
    wait for an in-flight slot (ns; Offline queues here by design), answers by outcome."""

    lag_ns: list[int] = field(default_factory=list)
    slot_wait_ns: list[int] = field(default_factory=list)
    sent: int = 0
    completed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    waited_for_slot: int = 0
    max_in_flight_seen: int = 0

    def fail(self, code: str) -> None:
        self.failures[code] = self.failures.get(code, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "issue_lag_ms": percentiles_ms(self.lag_ns),
            "slot_wait_ms": percentiles_ms(self.slot_wait_ns),
            "sent": self.sent,
            "completed": self.completed,
            "failed": sum(self.failures.values()),
            "failures": dict(self.failures),
            "waited_for_slot": self.waited_for_slot,
            "max_in_flight_seen": self.max_in_flight_seen,
        }


def percentiles_ms(values_ns: list[int]) -> dict[str, float | None]:
    """{p50, p90, p99, p999, max, mean} in ms (nearest rank), None for each when there is no value."""
    v = np.asarray(values_ns, dtype=np.float64) / 1e6
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        out[name] = round(float(np.percentile(v, q, method="inverted_cdf")), 4) if v.size else None
    out["max"] = round(float(v.max()), 4) if v.size else None
    out["mean"] = round(float(v.mean()), 4) if v.size else None
    return out


class AsyncSut:
    """issue() from LoadGen's thread; requests on an asyncio loop in a thread of its own; complete() per answer."""

    def __init__(
        self,
        send_factory: Callable[[], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]],
        complete: Complete,
        *,
        max_in_flight: int = 256,
        judge: Judge | None = None,
        success: Callable[[int], bool] = lambda status: 200 <= status < 300,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self._factory = send_factory
        self._complete = complete
        self._judge = judge
        self._success = success
        self._clock = clock
        self.max_in_flight = max_in_flight
        self.stats = SutStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="inferload-sut", daemon=True)
        self._ready = threading.Event()
        self._send: Send | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._send, self._close = self._loop.run_until_complete(self._factory())
            self._slots = asyncio.Semaphore(self.max_in_flight)
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> AsyncSut:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        if not self._thread.is_alive():
            return

        async def _finish() -> None:
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=timeout_s)
            if self._close is not None:
                await self._close()

        fut = asyncio.run_coroutine_threadsafe(_finish(), self._loop)
        try:
            fut.result(timeout_s + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            if not self._thread.is_alive():
                self._loop.close()

    def warm(self, indexes: list[int], concurrency: int = 4, timeout_s: float = 60.0) -> int:
        """Send these samples before LoadGen starts (not counted): the first answers of a fresh server (or of a new
        connection) are slow. Returns how many succeeded."""

        async def _warm() -> int:
            assert self._send is not None
            sem, ok = asyncio.Semaphore(concurrency), 0

            async def one(i: int) -> None:
                nonlocal ok
                async with sem:
                    try:
                        status, _b, _h = await self._send(i)
                        ok += self._success(status)
                    except Exception:
                        pass

            await asyncio.gather(*(one(i) for i in indexes))
            return ok

        return asyncio.run_coroutine_threadsafe(_warm(), self._loop).result(timeout_s)

    # ---- LoadGen's callbacks ---------------------------------------------------------------------------------------
    def issue(self, samples: list[tuple[int, int]]) -> None:
        """[(sample id, QSL index)]: returns at once; the loop sends them."""
        t = self._clock()
        self._loop.call_soon_threadsafe(self._start_all, samples, t)

    def flush(self) -> None:
        """LoadGen's flush_queries: every sample is sent as soon as it is issued; nothing is held back."""

    # ---- the loop's side -------------------------------------------------------------------------------------------
    def _start_all(self, samples: list[tuple[int, int]], issued_ns: int) -> None:
        for sid, index in samples:
            task = self._loop.create_task(self._one(sid, index, issued_ns))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _one(self, sid: int, index: int, issued_ns: int) -> None:
        assert self._slots is not None and self._send is not None
        t_task = self._clock()
        self.stats.lag_ns.append(t_task - issued_ns)
        if self._slots.locked():
            self.stats.waited_for_slot += 1
        async with self._slots:
            self._in_flight += 1
            self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, self._in_flight)
            self.stats.slot_wait_ns.append(self._clock() - t_task)
            n = self.stats.sent
            self.stats.sent += 1
            try:
                status, body, header = await self._send(index)
                problem = None
                if not self._success(status):
                    problem = status if isinstance(status, str) else f"HTTP {status}"
                elif self._judge is not None and (n < CHECK_FIRST or n % CHECK_EVERY == 0):
                    judged = self._judge(index, body, header)
                    problem = judged[0] if judged else None
                if problem:
                    self.stats.fail(problem)
                else:
                    self.stats.completed += 1
            except Exception as e:  # a failed request is counted, and its sample still completes (LoadGen waits)
                self.stats.fail(type(e).__name__)
            finally:
                self._in_flight -= 1
                self._complete(sid)


def http_sender(
    url: str,
    bodies: list[bytes],
    headers: list[dict[str, str]],
    *,
    ssl_context: Any = None,
    timeout_s: float = 30.0,
    connections: int = 256,
) -> Callable[[], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]:
    """A send factory over aiohttp: POST bodies[index] with headers[index] to `url`, keep-alive connections."""

    async def factory() -> tuple[Send, Callable[[], Awaitable[None]]]:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=connections, ssl=ssl_context if ssl_context is not None else False)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            skip_auto_headers=("User-Agent", "Content-Type"),
            auto_decompress=False,
        )

        async def send(index: int) -> tuple[int, bytes, Header]:
            async with session.post(url, data=bodies[index], headers=headers[index]) as r:
                body = await r.read()
                return r.status, body, lambda name: r.headers.get(name)

        return send, session.close

    return factory


def grpc_sender(
    target: Any, bodies: list[bytes], *, timeout_s: float = 30.0
) -> Callable[[], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]:
    """A send factory over grpc.aio (one HTTP/2 channel, calls multiplexed): ModelInfer with bodies[index] (serialized
    ModelInferRequests from grpc_codec), the target's headers and token as call metadata. Status: 0 when OK, else the
    status code's name; the header reader reads the trailing metadata (server-timing)."""

    async def factory() -> tuple[Send, Callable[[], Awaitable[None]]]:
        import grpc

        from loadgen.engine.grpc_transport import aio_channel_for, call_metadata
        from loadgen.engine.oip_grpc import method_path

        channel = aio_channel_for(target)
        call = channel.unary_unary(method_path("ModelInfer"))
        metadata = call_metadata(target) or None

        async def send(index: int) -> tuple[Any, bytes, Header]:
            c = call(bodies[index], timeout=timeout_s, metadata=metadata)
            try:
                body = await c
            except grpc.aio.AioRpcError as e:
                return e.code().name, b"", lambda _name: None
            trailers = dict(await c.trailing_metadata() or ())
            return 0, body, trailers.get

        return send, channel.close

    return factory
