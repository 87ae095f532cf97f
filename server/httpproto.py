"""The HTTP/1.1 protocols `serve` can give uvicorn, built from uvicorn's httptools protocol in three nested layers
(server/selfcheck.py decides at start-up which of them this uvicorn and httptools support):

* `head_limit`: the request-head limit while a head arrives (431, server/headlimit.py);
* `whole_body`: whole-body reading for infer requests on the ASGI path (below);
* `fast_path`: the infer fast path (server/fastpath.py), behind a `BufferedFront`.

Whole-body reading. uvicorn's own body path, for a 600 KB tensor: each network read is appended to a growing
`bytearray`; past 64 KiB reading pauses until the app asks for more; each `receive()` copies what has arrived into
a new `bytes` and resumes reading. That is three copies of the body in user space and a wake-up of the app per
64-256 KiB. Here, for `POST .../infer` with a Content-Length, nothing changes until the app first calls
`receive()`, which the infer endpoint does only after admission and after checking Content-Length against
`max_body_bytes` (admission before ingestion: a refused request never makes the server hold more than uvicorn's
64 KiB). From that call on, the protocol writes each read straight into one buffer of Content-Length bytes, never
pauses (the size is bounded and already accepted), does not wake the app per read, and `receive()` returns the whole
body in one message (a `bytearray`, which the infer endpoint reads like bytes). Later `receive()` calls behave as
uvicorn's (they wait for the disconnect). Requests with no Content-Length (chunked) and every other route use
uvicorn's path unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from server.dispatch import match_infer
from server.fastpath import DISCARD_BYTES, SCRATCH_BYTES, BufferedFront, FastInferMixin
from server.headlimit import head_limited_httptools_protocol

FEATURES = ("head_limit", "whole_body", "fast_path")  # each needs the ones before it


def build_protocol(max_head_bytes: int, features: Collection[str], app: Any = None) -> type:
    """uvicorn's httptools protocol with `features` (a prefix of FEATURES; `fast_path` needs `app`, the
    InferloadApp). Raises ImportError without httptools."""
    wanted = [f for f in FEATURES if f in features]
    if wanted != list(FEATURES[: len(wanted)]) or len(wanted) != len(features):
        raise ValueError(f"features must be a prefix of {FEATURES}, got {sorted(features)}")
    if not wanted:
        raise ValueError("build_protocol needs at least head_limit (otherwise use uvicorn's own 'httptools')")
    cls = head_limited_httptools_protocol(max_head_bytes)
    if "whole_body" in wanted:
        cls = _with_whole_body(cls)
    if "fast_path" in wanted:
        if app is None:
            raise ValueError("the fast path needs the app")
        cls = _with_fast_path(cls, app)
    return cls


def _with_whole_body(base: type) -> type:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    class WholeBodyCycle(RequestResponseCycle):
        """A cycle whose body, once the app asks for it, is collected whole into one buffer (see the module doc)."""

        whole_size: int = 0
        whole_mode = False
        whole_buf: bytearray | None = None
        whole_pos = 0
        whole_sent = False

        async def receive(self) -> Any:
            if self.whole_sent:
                return await super().receive()
            if self.waiting_for_100_continue and not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.waiting_for_100_continue = False
            if not self.whole_mode:
                buf = bytearray(self.whole_size)
                early = self.body  # what arrived before the app asked (at most uvicorn's high-water mark + one read)
                n = min(len(early), self.whole_size)
                buf[:n] = early[:n]
                if len(early) > n:  # cannot happen with Content-Length framing; keep the bytes anyway
                    buf += early[n:]
                self.body = bytearray()
                self.whole_buf, self.whole_pos, self.whole_mode = buf, len(early), True
            while self.more_body and not self.disconnected and not self.response_complete:
                self.flow.resume_reading()
                self.message_event.clear()
                await self.message_event.wait()
            self.message_event.clear()
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            body = self.whole_buf
            assert body is not None
            self.whole_buf, self.whole_sent = None, True
            if self.whole_pos != len(body):
                del body[self.whole_pos :]
            return {"type": "http.request", "body": body, "more_body": False}

    class WholeBodyHttpToolsProtocol(base):  # type: ignore[misc,valid-type]
        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if type(cycle) is not RequestResponseCycle or self.scope.get("method") != "POST":
                return
            if match_infer(self.scope.get("path", "")) is None:
                return
            size = None
            for name, value in self.headers:
                if name == b"content-length":
                    try:
                        size = int(value)
                    except ValueError:
                        return
                elif name == b"transfer-encoding":
                    return
            if size is None or size < 0:
                return
            cycle.__class__ = WholeBodyCycle  # before its ASGI task first runs: receive() resolves to ours
            cycle.whole_size = size

        def on_body(self, body: bytes) -> None:
            cycle = self.cycle
            if (
                type(cycle) is WholeBodyCycle
                and cycle.whole_mode
                and not cycle.response_complete
                and not (self.parser.should_upgrade() and self._should_upgrade())
            ):
                buf = cycle.whole_buf
                if buf is None:  # already delivered: nothing more can belong to this message
                    return
                end = cycle.whole_pos + len(body)
                if end <= len(buf):
                    buf[cycle.whole_pos : end] = body
                else:
                    del buf[cycle.whole_pos :]
                    buf += body
                cycle.whole_pos = end
                return  # no pause, no wake-up: on_message_complete wakes receive() once
            super().on_body(body)

    WholeBodyCycle.__qualname__ = "WholeBodyCycle"
    WholeBodyHttpToolsProtocol.__qualname__ = "WholeBodyHttpToolsProtocol"
    return WholeBodyHttpToolsProtocol


def _with_fast_path(base: type, app: Any) -> type:
    class InferloadHttpToolsProtocol(FastInferMixin, base):  # type: ignore[misc,valid-type]
        fast_app = app

        def on_headers_complete(self) -> None:
            if self.try_fast():
                self.count_head_done()  # the head limit's bookkeeping, done in the super() chain otherwise
                return
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.fast_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.fast_connection_lost()
            super().connection_lost(exc)

        def on_body(self, body: bytes) -> None:
            if self.fast_body(body):
                return
            super().on_body(body)

    class InferloadFront(BufferedFront):
        inner_class = InferloadHttpToolsProtocol
        scratch = memoryview(bytearray(SCRATCH_BYTES))
        discard = memoryview(bytearray(DISCARD_BYTES))

    InferloadHttpToolsProtocol.__qualname__ = "InferloadHttpToolsProtocol"
    return InferloadFront
