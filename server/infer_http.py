"""The infer endpoint of the ASGI path: HTTP concerns only (auth, content type, body limit, admission, reading the
body, disconnects, Server-Timing, the response). Everything else is `InferenceService`.

Why plain ASGI and not a FastAPI/Starlette route: at batch 1 a request's server-side cost beside ONNX Runtime is
what the served/raw ratio loses, and the framework's layers (middleware stack, routing, `Request`/`Response`
objects) were a large share of it. `InferloadApp.__call__` (server/app.py) sends every infer request that reaches
the ASGI app here directly (the rule: server/dispatch.py); the router has no infer route.

Per request this path does one pass over the headers, reads the body into one buffer (a single-chunk body is used
as is; otherwise the chunks are copied once into a buffer of Content-Length bytes), creates one extra task (the
disconnect watcher, only once the request is queued) and writes the response with pre-encoded headers.
Statuses and bodies are those of the OIP routes: 400/401/404/413/415/503/504 with `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from server.dispatch import InferHeaders, auth_ok, scan_headers
from server.errors import (
    BadRequest,
    ClientDisconnected,
    InferError,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from server.responses import infer_error, infer_ok, reply, send_reply
from server.service import InferenceService, InferResult, Timings

log = logging.getLogger("server")

OIP_TYPES = ("", "application/json", "application/octet-stream")
IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png")


class _Disconnected(Exception):
    """The client went away while sending its body."""


async def _read_body(receive, size: int | None, limit: int) -> bytes | bytearray:
    """The whole body. With a Content-Length (checked against `limit` already) the chunks are copied once into a
    buffer of that size (a body that arrives in one chunk is returned as is); without one, they are joined."""
    first = True
    buf: bytearray | None = None
    view: memoryview | None = None
    pos = 0
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if first and not more:
            if len(chunk) > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            return chunk
        first = False
        if chunk:
            end = pos + len(chunk)
            if end > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            if size is not None and end <= size:
                if view is None:
                    buf = bytearray(size)
                    view = memoryview(buf)
                view[pos:end] = chunk
            else:
                if view is not None:  # more than Content-Length said (the HTTP layer stops this): keep it all
                    chunks.append(bytes(view[:pos]))
                    view = None
                    buf = None
                    size = None
                chunks.append(chunk)
            pos = end
        if not more:
            break
    if buf is not None:
        assert view is not None
        view.release()
        return buf if pos == len(buf) else buf[:pos]
    return b"".join(chunks)


async def _until_done_or_disconnect(receive, coro):
    """Run `coro` in this task; if the client disconnects first, cancel it (the batcher drops the queued request).
    One watcher task per request, cancelled when the work is done."""
    me = asyncio.current_task()
    assert me is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                me.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await coro
    except asyncio.CancelledError:
        if gone:
            uncancel = getattr(me, "uncancel", None)
            if uncancel is not None:
                uncancel()
            raise ClientDisconnected("client disconnected while its request was queued") from None
        raise
    finally:
        if not watcher.done():
            watcher.cancel()


class InferEndpoint:
    """`POST /v2/models/{model}[/versions/{version}]/infer` on the ASGI path (`InferloadApp` passes the model, the
    version and the scanned header fields)."""

    def __init__(self, app: Any) -> None:
        self.app = app  # the FastAPI app: state.service, state.settings

    async def handle(
        self, scope, receive, send, model: str, version: str | None, h: InferHeaders | None = None
    ) -> None:
        started = time.perf_counter()
        state = self.app.state
        settings = state.settings
        service: InferenceService | None = state.service
        expect_continue = False  # the client holds its body back until we ask for it (Expect: 100-continue)
        unread = True  # refused before the body was asked for
        try:
            if service is None:
                raise Unavailable("server is starting")
            if h is None:
                h = scan_headers(scope["headers"])
            ctype, clen, hl_raw = h.content_type or b"", h.content_length, h.header_length
            expect_continue = h.expect_continue
            try:
                check_auth(settings, h.authorization)
                ct = ctype.decode("latin-1").split(";", 1)[0].strip().lower()
                is_image = ct in IMAGE_TYPES
                if not is_image and ct not in OIP_TYPES:
                    raise UnsupportedMediaType(
                        f"Content-Type {ct!r} not supported: use application/json (OIP v2), application/octet-stream "
                        "(OIP v2 binary extension) or image/jpeg|image/png (one raw image for image models)"
                    )
                size = _content_length(clen, settings.max_body_bytes)
            except InferError as e:
                service.count_rejected(model, e)
                raise
            # Admission before ingestion: refuse (404 / 503 + Retry-After) before a byte of the body is read.
            lm = service.admit(model, version)
            unread = False
            try:
                result = await self._admitted(
                    scope, receive, service, model, version, is_image, hl_raw, size, started, settings.max_body_bytes
                )
            finally:
                lm.admission.leave()
        except ClientDisconnected as e:
            await send_reply(send, reply(e.status, b"", None))  # nobody is listening
            return
        except _Disconnected:  # gone while sending the body
            if service is not None:
                service.count_rejected(model, ClientDisconnected("client disconnected"))
            await send_reply(send, reply(ClientDisconnected.status, b"", None))
            return
        except InferError as e:
            t = getattr(e, "timings", None) or Timings()
            if t.total_s is None:
                t.total_s = time.perf_counter() - started
            # A client that sent `Expect: 100-continue` and is refused before its body was asked for never sends
            # that body, while the HTTP layer would wait for it as the start of the next request: close instead.
            await send_reply(send, infer_error(e, t), close=expect_continue and unread)
            return
        except Exception as e:  # a bug: never leak internals to the client
            log.exception("infer %s: unexpected error", model)
            await send_reply(send, infer_error(InferError(f"internal error ({type(e).__name__})"), None))
            return
        await send_reply(send, infer_ok(result))

    async def _admitted(
        self,
        scope,
        receive,
        service: InferenceService,
        model: str,
        version: str | None,
        is_image: bool,
        hl_raw: bytes | None,
        size: int | None,
        started: float,
        max_body_bytes: int,
    ) -> InferResult:
        """An admitted request: read the body, check the request headers, run it."""
        try:
            body = await _read_body(receive, size, max_body_bytes)
            read_done = time.perf_counter()
            hl = None
            if not is_image and hl_raw is not None:
                try:
                    hl = int(hl_raw)
                except ValueError:
                    raise BadRequest("Inference-Header-Content-Length is not an integer") from None
            top_k = None
            if is_image and scope.get("query_string"):
                raw = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True).get("top_k")
                if raw is not None:
                    try:
                        top_k = int(raw[-1])
                    except ValueError:
                        top_k = 0
                    if not 1 <= top_k <= 1000:
                        raise BadRequest("query parameter top_k must be an integer in 1..1000")
        except InferError as e:
            service.count_rejected(model, e)
            raise
        if is_image:
            return await _until_done_or_disconnect(
                receive, service.infer_image(model, version, body, started, top_k, read_done)
            )
        return await _until_done_or_disconnect(receive, service.infer(model, version, body, hl, started, read_done))


def check_auth(settings: Any, given: bytes | None) -> None:
    if not auth_ok(settings, given):
        raise Unauthorized("missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="inferload"'})


def _content_length(raw: bytes | None, limit: int) -> int | None:
    if raw is None:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest("Content-Length is not an integer") from None
    if n > limit:
        raise PayloadTooLarge(f"request body of {n} bytes exceeds the limit of {limit} bytes")
    return n
