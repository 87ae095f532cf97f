"""The infer fast path: a plain OIP request to a tensor model, served by the HTTP protocol itself, without an ASGI
cycle, a task or a copy of its body.

Why: at batch 1 the server's own CPU per request is what the served/raw ratio and the batch-1 overhead lose, and
after a 7 ms inference has evicted the caches every layer a request passes through costs several times its warm
cost. The ASGI path for a 600 KB tensor costs a `RequestResponseCycle`, a task, the proxy-headers middleware, the
app's dispatch, the `receive()`/`send()` message protocol with its header checks, a disconnect-watcher task, and two
user-space copies of the body (httptools hands each network read to Python as a new `bytes`, which is then copied
into the body buffer). Here the request costs none of those:

* `on_headers_complete` decides, by the rule in server/dispatch.py (`fast_decision`): a plain infer request to a
  loaded, ready tensor model (HTTP/1.1, Content-Length within `max_body_bytes`, an OIP content type, no query, no
  `Expect`, nothing pipelined ahead of it, the right bearer token, ...) is taken here, and counted
  (`inferload_http_path_requests_total{path="fast"}`); any other infer request is stamped with the reason it takes
  the ASGI path, where `InferloadApp` counts it. A request taken here but refused at admission
  (server/admission.py) gets its 503 + Retry-After at once (`server/responses.py`, as on the ASGI path) and its body
  is discarded as it arrives, read into the discard buffer and dropped without a Python object per chunk.
* The body is read straight into one buffer of Content-Length bytes: `BufferedFront` is an
  `asyncio.BufferedProtocol` (uvloop and asyncio then `recv_into` the buffer it offers), so after the read that
  carried the head, the kernel copies each network read into its final place. The parser, which never sees those
  bytes, is replaced by a fresh one for the connection's next request.
* The rest runs in callbacks on the event loop: decode and validate (`InferenceService.prepare_oip`), queue
  (`DynamicBatcher.enqueue_callback`: no future, no task), and when the batch is done, in the same loop turn, encode (`InferenceService.finish`),
  count (`InferenceService.account`) and write status line, headers and body in one `transport.write`.

Behaviour is the ASGI path's: the same statuses, bodies, Server-Timing, metrics and admission accounting; a client
that disconnects while queued cancels its request (the batcher drops it); a graceful shutdown lets in-flight
requests finish and closes their connections after the response (`keep_alive` is cleared as for any cycle).

This module leans on uvicorn's and httptools' internals (the protocol's attributes and callbacks, what it reads of
its current cycle, which `_Cycle` stands in for). server/selfcheck.py checks every one of them at start-up and
turns the fast path off, with one warning, when one is missing or behaves differently; `fast_path = "off"`
(`INFERLOAD_FAST_PATH=off`) turns it off by hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from server.dispatch import FAST, REASON_KEY, FastRequest, fast_decision
from server.errors import ClientDisconnected, InferError
from server.responses import Reply, encode, infer_error, infer_ok
from server.service import InferenceService, LoadedModel, Timings

log = logging.getLogger("server")

SCRATCH_BYTES = 65536  # the read buffer outside fast-path bodies (heads, other routes), one per server
DISCARD_BYTES = 1 << 20  # refused bodies are read into this and dropped, one per server


class _NoEvent:
    """uvicorn's protocol sets its cycle's `message_event`; nobody waits on a fast request's."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _Cycle:
    """What uvicorn's protocol reads and writes of its current cycle (`self.cycle`), for the fast path's two kinds:
    `reading` is True while the request's body is still arriving. server/selfcheck.py compares what uvicorn's source
    reads of `self.cycle` with these slots."""

    __slots__ = ("response_complete", "disconnected", "keep_alive", "more_body", "message_event", "reading")

    def __init__(self, keep: bool, reading: bool) -> None:
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = keep
        self.more_body = True
        self.message_event = _NO_EVENT
        self.reading = reading


class FastCycle(_Cycle):
    """One fast-path request: the cycle state, and the request's own (its body buffer, batcher ticket, timings)."""

    __slots__ = ("service", "lm", "model", "started", "header_length", "buf", "view", "pos", "ticket", "req", "t")

    def __init__(
        self, service: InferenceService, lm: LoadedModel, model: str, started: float, hl: int | None, size: int, keep
    ) -> None:
        super().__init__(keep, reading=True)  # admitted; reading until its body is complete
        self.service = service
        self.lm = lm
        self.model = model
        self.started = started
        self.header_length = hl
        self.buf = np.empty(size, dtype=np.uint8)  # not zero-filled: every byte is written by a read
        self.view = memoryview(self.buf)
        self.pos = 0
        self.ticket: Any = None  # the batcher's, once queued
        self.req: Any = None
        self.t = Timings()


class RefusedCycle(_Cycle):
    """A request refused at admission on the fast path: answered (503) at once; its body, which the client sends
    anyway, is discarded as it arrives without being handed to Python (`left` bytes still to come)."""

    __slots__ = ("left",)

    def __init__(self, left: int, keep: bool) -> None:
        super().__init__(keep, reading=left > 0)  # reading = discarding the body
        self.left = left


class FastInferMixin:
    """Mixed into the httptools protocol (server/httpproto.py); `fast_app` is the InferloadApp or None (off)."""

    fast_app: Any = None
    fast: FastCycle | None = None

    def try_fast(self: Any) -> bool:
        """From on_headers_complete: take this request onto the fast path (True) or leave it to uvicorn (False), by
        server/dispatch.py's rule; an infer request left to uvicorn carries the reason in its scope."""
        app = self.fast_app
        if app is None:
            return False
        parser = self.parser
        method = parser.get_method()
        if method != b"POST":
            return False
        cycle = self.cycle
        lc = self.limit_concurrency
        d = fast_decision(
            method,
            self.url,
            parser.get_http_version(),
            self.headers,
            expect=self.expect_100_continue,
            upgrade=parser.should_upgrade(),
            pipelined=cycle is not None and not cycle.response_complete,
            at_connection_limit=lc is not None and (len(self.connections) >= lc or len(self.tasks) >= lc),
            state=app.state,
        )
        if d is None:
            return False
        if type(d) is not FastRequest:
            scope = self.scope
            ext = scope.get("extensions")
            if ext is None:
                scope["extensions"] = {REASON_KEY: d}
            else:
                ext[REASON_KEY] = d
            return False
        started = time.perf_counter()
        keep = parser.should_keep_alive()
        paths = app.state.metrics.http_paths
        try:
            d.service.admit(d.model, d.version)  # counts a refusal (overload, draining, not ready)
        except InferError as e:
            paths.inc(FAST, "refused")
            self._fast_refuse(e, started, d.size, keep)
            return True
        paths.inc(FAST, "admitted")
        self.cycle = self.fast = FastCycle(d.service, d.lm, d.model, started, d.header_length, d.size, keep)
        return True

    def _fast_refuse(self: Any, exc: InferError, started: float, size: int, keep: bool) -> None:
        """Admission said no: the 503 (+ Retry-After) now, before a byte of the body is read; the body is then
        discarded as it arrives (parser callbacks for what came with the head, `BufferedFront` reads for the rest)."""
        f = RefusedCycle(size, keep)
        self.cycle = self.fast = f
        t = Timings()
        t.total_s = time.perf_counter() - started
        f.response_complete = True
        self._write_response(f, infer_error(exc, t))
        if not f.reading and self.fast is f:
            self.fast = None

    def fast_body(self: Any, body: bytes) -> bool:
        """A body chunk the parser saw (it came with the head): into the buffer. False: not a fast request's."""
        f = self.fast
        if f is None or not f.reading:
            return False
        if type(f) is RefusedCycle:
            f.left -= len(body)
            return True
        end = min(f.pos + len(body), len(f.buf))  # the parser enforces Content-Length; never write past it
        f.view[f.pos : end] = body[: end - f.pos]
        f.pos = end
        return True

    def fast_message_complete(self: Any) -> None:
        """The parser saw the end of a fast request's body (it arrived with the head, or is empty)."""
        f = self.fast
        if f is not None and f.reading:
            if type(f) is RefusedCycle:  # its body is all discarded
                f.reading = False
                self.fast = None
            else:
                self._fast_start(f)

    def fast_direct_done(self: Any) -> None:
        """The last byte of a fast request's body arrived past the parser: the parser still waits for body bytes, so
        the next request gets a fresh one."""
        import httptools

        f = self.fast
        assert f is not None
        self.parser = httptools.HttpRequestParser(self)
        try:
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets it
        except AttributeError:  # httptools < 0.6.3
            pass
        self.on_message_complete()  # the protocol's own end-of-message bookkeeping (head counting, cycle state)

    def _fast_start(self: Any, f: FastCycle) -> None:
        f.reading = False
        t = f.t
        t.read_s = time.perf_counter() - f.started
        try:
            f.req, tensors, deadline = f.service.prepare_oip(f.lm, f.buf, f.header_length, f.started, t)
            f.ticket = f.lm.batcher.enqueue_callback(
                tensors, lambda value, is_error: self._fast_done(f, value, is_error), loop=self.loop, deadline=deadline
            )
        except InferError as e:
            self._fast_end(f, e, None)
            return
        except Exception as e:  # a bug: never leak internals, never break the parser that called us
            self._fast_end(f, f.service.internal_error(f.lm, e), None)

    def _fast_done(self: Any, f: FastCycle, value: Any, is_error: bool) -> None:
        """The batcher's answer, on the loop (never after `withdraw`)."""
        exc = value if is_error else None
        result = None
        if exc is None:
            try:
                result = f.service.finish(f.lm, f.req, value, f.t)
            except Exception as e:  # only the encoding: a failure to write must not answer a second time
                exc = e
        if exc is not None and not isinstance(exc, InferError):
            exc = f.service.internal_error(f.lm, exc)
        self._fast_end(f, exc, result)

    def _fast_end(self: Any, f: FastCycle, exc: InferError | None, result: Any) -> None:
        f.lm.admission.leave()
        f.service.account(f.lm, f.started, f.t, "success" if exc is None else exc.outcome)
        r = infer_ok(result) if exc is None else infer_error(exc, f.t)
        if self.fast is f:
            self.fast = None
        f.response_complete = True
        self._write_response(f, r)

    def _write_response(self: Any, f: Any, r: Reply) -> None:
        """Status line, uvicorn's default headers, ours and the body in one write (server/responses.py); then
        uvicorn's end-of-response bookkeeping (pipelined requests, keep-alive timer)."""
        transport = self.transport
        if f.disconnected or transport.is_closing():
            return  # nobody to answer
        transport.write(encode(r, self.server_state.default_headers, close=not f.keep_alive))
        if not f.keep_alive:
            transport.close()
        self.on_response_complete()

    def fast_connection_lost(self: Any) -> None:
        """The connection is gone: a fast request still reading or waiting for its batch gives its admission back and
        is counted (rejected while reading, cancelled once queued: the batcher drops it or discards its result)."""
        f = self.fast
        if f is None:
            return
        self.fast = None
        f.disconnected = True
        if type(f) is RefusedCycle:
            f.reading = False
        elif f.reading:
            f.reading = False
            f.lm.admission.leave()
            f.service.count_rejected(f.model, ClientDisconnected("client disconnected"))
        elif f.ticket is not None and not f.response_complete:
            f.lm.batcher.withdraw(f.ticket)
            f.lm.admission.leave()
            f.service.account(f.lm, f.started, f.t, "cancelled")


class BufferedFront(asyncio.BufferedProtocol):
    """The protocol object the event loop talks to: it offers the current fast request's body buffer for the next
    read, and otherwise a scratch buffer whose bytes it hands to the httptools protocol as `data_received`.

    A wrapper, not a subclass, because uvloop treats any `asyncio.Protocol` subclass (as uvicorn's protocol is) as a
    plain protocol even when it has `get_buffer`."""

    inner_class: Any = None  # set by server.httpproto
    scratch: memoryview | None = None  # one per server: reads are consumed before the next one starts
    discard: memoryview | None = None  # one per server: where refused bodies are read and dropped (fewer reads)

    __slots__ = ("p",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.p = self.inner_class(*args, **kwargs)

    def connection_made(self, transport: Any) -> None:
        self.p.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.p.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.p.eof_received()

    def pause_writing(self) -> None:
        self.p.pause_writing()

    def resume_writing(self) -> None:
        self.p.resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        f = self.p.fast
        scratch = self.scratch
        assert scratch is not None
        if f is not None and f.reading:
            if type(f) is RefusedCycle:  # a refused body: read into the discard buffer and dropped, up to its end
                sink = self.discard
                assert sink is not None
                return sink[: f.left] if f.left < len(sink) else sink
            return f.view[f.pos :]
        return scratch

    def buffer_updated(self, nbytes: int) -> None:
        p = self.p
        f = p.fast
        if f is not None and f.reading:
            if type(f) is RefusedCycle:
                f.left -= nbytes
                if f.left <= 0:
                    p.fast_direct_done()
                return
            f.pos += nbytes
            if f.pos >= len(f.buf):
                p.fast_direct_done()
            return
        scratch = self.scratch
        assert scratch is not None
        p.data_received(scratch[:nbytes])
