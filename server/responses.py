"""The responses the HTTP front writes itself: the one header builder (`reply`), the infer answers built with it
(`infer_ok`, `infer_error`, `head_too_large`, `method_not_allowed`), and their two writers: `encode` (raw bytes, for the HTTP protocol:
the fast path and the head limit's refusal while a head arrives) and `send_reply` (ASGI messages, for the infer
endpoint and `InferloadApp`'s 431). Every path therefore sends the same status, headers and body for the same answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, NamedTuple

import orjson

from server.errors import InferError
from server.service import InferResult, Timings

JSON = b"application/json"
OCTETS = b"application/octet-stream"
Headers = list[tuple[bytes, bytes]]


class Reply(NamedTuple):
    """A whole response: status, header fields (content type and length included; not the server's defaults such as
    `date`, nor `connection`, which the writers add) and body."""

    status: int
    headers: Headers
    body: bytes


def reply(status: int, body: bytes, ctype: bytes | None = JSON, extra: Headers | None = None) -> Reply:
    """The one header builder: content type (unless None), content length, then `extra`."""
    headers: Headers = [] if ctype is None else [(b"content-type", ctype)]
    headers.append((b"content-length", str(len(body)).encode()))
    if extra:
        headers += extra
    return Reply(status, headers, body)


def server_timing(t: Timings | None) -> bytes:
    """`read;dur=0.210, preprocess;dur=0.050, queue;dur=4.020, compute;dur=38.100, batch;desc="8", total;dur=43.900`
    (ms). read: headers arrived → body read; preprocess: body → tensors; total: headers arrived → response built."""
    if t is None:
        return b""
    parts = []
    if t.read_s is not None:
        parts.append(f"read;dur={t.read_s * 1e3:.3f}")
    if t.preprocess_s is not None:
        parts.append(f"preprocess;dur={t.preprocess_s * 1e3:.3f}")
    if t.queue_s is not None:
        parts.append(f"queue;dur={t.queue_s * 1e3:.3f}")
    if t.compute_s is not None:
        parts.append(f"compute;dur={t.compute_s * 1e3:.3f}")
    if t.batch_size is not None:
        parts.append(f'batch;desc="{t.batch_size}"')
    if t.total_s is not None:
        parts.append(f"total;dur={t.total_s * 1e3:.3f}")
    return ", ".join(parts).encode("latin-1")


def infer_ok(result: InferResult) -> Reply:
    """200: the encoded outputs (JSON, or binary with Inference-Header-Content-Length) and Server-Timing."""
    extra = [(b"server-timing", server_timing(result.timings))]
    if result.header_length is None:
        return reply(200, result.body, JSON, extra)
    extra.append((b"inference-header-content-length", str(result.header_length).encode()))
    return reply(200, result.body, OCTETS, extra)


def infer_error(exc: InferError, timings: Timings | None) -> Reply:
    """A refused or failed request: its status, `{"error": ...}`, its headers (Retry-After, WWW-Authenticate) and
    Server-Timing when there is any."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    timing = server_timing(timings)
    if timing:
        extra.append((b"server-timing", timing))
    return reply(exc.status, orjson.dumps({"error": exc.message}), JSON, extra)


def head_too_large(size: int | None, limit: int) -> Reply:
    """431 for a request head over `max_header_bytes` (`size` None: still arriving, its size unknown)."""
    of = f" of {size} bytes" if size is not None else ""
    body = orjson.dumps(
        {"error": f"request head{of} (request line and header fields) exceeds the server's limit of {limit} bytes"}
    )
    return reply(431, body)


def method_not_allowed(allow: bytes) -> Reply:
    """405, worded as FastAPI's router words it."""
    return reply(405, orjson.dumps({"error": "Method Not Allowed"}), JSON, [(b"allow", allow)])


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


def encode(r: Reply, default_headers: Headers, close: bool) -> bytes:
    """The one raw writer: status line, the server's default headers (uvicorn's `date`), the reply's headers,
    `connection: close` if `close`, and the body, as one `bytes` for one `transport.write`."""
    parts = [STATUS_LINES.get(r.status) or _status_line(r.status)]
    for name, value in default_headers:
        parts += (name, b": ", value, b"\r\n")
    for name, value in r.headers:
        parts += (name, b": ", value, b"\r\n")
    if close:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", r.body)
    return b"".join(parts)


async def send_reply(send: Any, r: Reply, close: bool = False) -> None:
    """The ASGI writer (the server adds its default headers)."""
    headers = [*r.headers, (b"connection", b"close")] if close else r.headers
    await send({"type": "http.response.start", "status": r.status, "headers": headers})
    await send({"type": "http.response.body", "body": r.body})
