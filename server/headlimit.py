"""Request head size limit: a head (request line + header fields) over `max_header_bytes` gets
431 Request Header Fields Too Large with `{"error": "..."}`, and the connection is closed.

uvicorn's httptools protocol has no limit of its own: it buffers a head of any size (a 10 MB header was served
200), and its h11 protocol answers a head over `h11_max_incomplete_event_size` with a bare 400. Two layers
therefore enforce the limit:

1. `InferloadApp` (server/app.py, by the rule in server/dispatch.py), before anything else: measures the head as it
   was on the wire (method, path, query, every `name: value` line) and answers 431. This layer holds whatever
   protocol uvicorn runs (the fast path's, the head-limited one below, plain httptools or h11 when those fail
   their start-up self-check or are missing).
2. `head_limited_httptools_protocol` (here): uvicorn's httptools protocol that also counts the bytes of a head still
   arriving, so a client streaming an endless head is cut off once it passes the limit instead of being
   buffered whole. It writes the same 431, half-closes, and keeps reading (discarding) for a moment before
   closing, so a client still sending its head reads the 431 rather than a connection reset. The protocols of
   server/httpproto.py build on it; server/selfcheck.py checks the uvicorn internals it uses at start-up.

Layer 2 counts only the network reads that fall entirely inside one head (never the read in which the head
ends), so it never counts more than the head's real size and never refuses a head that layer 1 would accept.
"""

from __future__ import annotations

import logging
from typing import Any

from server.responses import encode, head_too_large

log = logging.getLogger("server")

LINGER_S = 2.0  # after a protocol-level 431: keep reading (and discarding) this long before closing
DISCARD_LIMIT = 4 * 1024 * 1024  # ... or until this many more bytes arrived


def head_limited_httptools_protocol(max_bytes: int) -> type:
    """A subclass of uvicorn's HttpToolsProtocol that refuses a head still arriving past `max_bytes` with 431.

    Raises ImportError when httptools (or uvicorn's protocol for it) is not installed.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
        max_head_bytes = max_bytes
        head_log = log  # the start-up self-check silences its own refusal on the instance

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
            self.head_log.info(
                "refused a request head of more than %d bytes (still arriving) with 431", self.max_head_bytes
            )
            r = head_too_large(None, self.max_head_bytes)
            self.transport.write(encode(r, self.server_state.default_headers, close=True))
            # Half-close and keep draining: closing with unread data would send a reset, which can reach the
            # client before it reads the 431. The client's own close (eof_received) or the timer ends it.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.flow.resume_reading()
            self._linger = self.loop.call_later(LINGER_S, self.transport.close)

    HeadLimitedHttpToolsProtocol.__qualname__ = HeadLimitedHttpToolsProtocol.__name__
    return HeadLimitedHttpToolsProtocol
