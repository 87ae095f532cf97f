"""Request head size limit: a head (request line + header fields) over `max_header_bytes` gets
431 Request Header Fields Too Large with `{"error": "..."}`, and the connection is closed.

uvicorn's httptools protocol (the one `serve` uses) has no limit of its own: it buffers a head of any size
(a 10 MB header was served 200), and its h11 protocol answers a head over `h11_max_incomplete_event_size`
with a bare 400. Two layers therefore enforce the limit:

1. `HeadLimitMiddleware` (pure ASGI, outermost, before routing): measures the head as it was on the wire
   (method, path, query, every `name: value` line) and answers 431. Cost: one pass over the header list.
2. `head_limited_httptools_protocol`: uvicorn's httptools protocol that also counts the bytes of a head still
   arriving, so a client streaming an endless head is cut off once it passes the limit instead of being
   buffered whole. It writes the same 431, half-closes, and keeps reading (discarding) for a moment before
   closing, so a client still sending its head reads the 431 rather than a connection reset.

Layer 2 counts only the network reads that fall entirely inside one head (never the read in which the head
ends), so it never counts more than the head's real size and never refuses a head that layer 1 would accept.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

log = logging.getLogger("server")

STATUS = 431
LINGER_S = 2.0  # after a protocol-level 431: keep reading (and discarding) this long before closing
DISCARD_LIMIT = 4 * 1024 * 1024  # ... or until this many more bytes arrived


def head_size(scope: dict[str, Any]) -> int:
    """Bytes of the request head as sent: `METHOD SP path[?query] SP HTTP/1.1 CRLF`, `name: value CRLF` each, CRLF."""
    raw_path = scope.get("raw_path")
    if raw_path is None:
        raw_path = scope.get("path", "").encode("utf-8", "replace")
    n = len(scope.get("method", "")) + len(raw_path) + 14  # 2 spaces + "HTTP/1.1" + 2 CRLFs
    qs = scope.get("query_string")
    if qs:
        n += len(qs) + 1
    for name, value in scope["headers"]:
        n += len(name) + len(value) + 4
    return n


def error_body(size: int | None, limit: int) -> bytes:
    of = f" of {size} bytes" if size is not None else ""
    return orjson.dumps(
        {"error": f"request head{of} (request line and header fields) exceeds the server's limit of {limit} bytes"}
    )


class HeadLimitMiddleware:
    """Pure ASGI: an HTTP request whose head exceeds `max_bytes` gets 431 + `Connection: close` before routing."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            size = head_size(scope)
            if size > self.max_bytes:
                body = error_body(size, self.max_bytes)
                log.info("refused a request head of %d bytes (limit %d) with 431", size, self.max_bytes)
                await send(
                    {
                        "type": "http.response.start",
                        "status": STATUS,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def head_limited_httptools_protocol(max_bytes: int) -> type:
    """A subclass of uvicorn's HttpToolsProtocol that refuses a head still arriving past `max_bytes` with 431.

    Raises ImportError when httptools (or uvicorn's protocol for it) is not installed.
    """
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
        max_head_bytes = max_bytes

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # between a message's end (or the connection's start) and its headers' end
            self._heads_done = 0
            self._head_bytes = 0  # bytes of reads that fell entirely inside the current head
            self._refused = False
            self._discarded = 0
            self._linger: Any = None

        def data_received(self, data: bytes) -> None:
            if self._refused:
                self._discarded += len(data)
                if self._discarded > DISCARD_LIMIT:
                    self.transport.close()
                return
            counting = self._in_head
            heads = self._heads_done
            super().data_received(data)
            if counting and self._in_head and heads == self._heads_done and not self.transport.is_closing():
                self._head_bytes += len(data)
                if self._head_bytes > self.max_head_bytes:
                    if self.cycle is not None and not self.cycle.response_complete:
                        # an earlier (pipelined) request is still being answered: stop reading; refuse after it
                        self.flow.pause_reading()
                    else:
                        self._refuse()

        def on_headers_complete(self) -> None:
            self.count_head_done()
            super().on_headers_complete()

        def count_head_done(self) -> None:
            self._in_head = False
            self._heads_done += 1
            self._head_bytes = 0

        def on_message_complete(self) -> None:
            self._in_head = True
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self._refused and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            super().connection_lost(exc)

        def _refuse(self) -> None:
            self._refused = True
            self._unset_keepalive_if_required()
            log.info("refused a request head of more than %d bytes (still arriving) with 431", self.max_head_bytes)
            body = error_body(None, self.max_head_bytes)
            content = [STATUS_LINE[STATUS]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n",
                    b"\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
            # Half-close and keep draining: closing with unread data would send a reset, which can reach the
            # client before it reads the 431. The client's own close (eof_received) or the timer ends it.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.flow.resume_reading()
            self._linger = self.loop.call_later(LINGER_S, self.transport.close)

    HeadLimitedHttpToolsProtocol.__qualname__ = HeadLimitedHttpToolsProtocol.__name__
    return HeadLimitedHttpToolsProtocol
