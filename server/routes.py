"""Thin HTTP handlers (OIP v2 REST + Triton's model-configuration extension + /metrics). HTTP concerns only:
body limits, content types, auth, disconnects, headers. Everything else is `InferenceService`.

The infer path avoids FastAPI's body parsing: it is a plain Starlette route reading raw bytes and returning
raw bytes (orjson), so per-request overhead stays well under a millisecond.
"""
from __future__ import annotations

import asyncio
import hmac
import time

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from server.errors import (
    BadRequest,
    ClientDisconnected,
    InferError,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from server.service import InferenceService, Timings

JSON = "application/json"
OIP_TYPES = ("", "application/json", "application/octet-stream")
IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png")
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]


def _json(obj, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, headers=headers, media_type=JSON)


def error_response(exc: InferError, timing: str | None = None) -> Response:
    headers = dict(exc.headers)
    if timing:
        headers["Server-Timing"] = timing
    return _json({"error": exc.message}, exc.status, headers)


def server_timing(t: Timings | None) -> str | None:
    """`read;dur=0.210, preprocess;dur=0.050, queue;dur=4.020, compute;dur=38.100, batch;desc="8", total;dur=43.900`
    (ms). read: headers arrived → body read; preprocess: body → tensors; total: headers arrived → response built."""
    if t is None:
        return None
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
    return ", ".join(parts) or None


def _service(request: Request) -> InferenceService:
    service = request.app.state.service
    if service is None:
        raise Unavailable("server is starting")
    return service


def _check_content_length(request: Request, limit: int) -> None:
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise BadRequest("Content-Length is not an integer") from None
        if n > limit:
            raise PayloadTooLarge(f"request body of {n} bytes exceeds the limit of {limit} bytes")


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check_auth(request: Request) -> None:
    token = request.app.state.settings.auth_token
    if token is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
        raise Unauthorized("missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="inferload"'})


async def _watch_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _until_done_or_disconnect(request: Request, coro):
    """Run `coro`; if the client disconnects first, cancel it (the batcher drops the queued request)."""
    task = asyncio.ensure_future(coro)
    watcher = asyncio.ensure_future(_watch_disconnect(request.receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, InferError):
        pass
    raise ClientDisconnected("client disconnected while its request was queued")


async def infer(request: Request) -> Response:
    started = time.perf_counter()
    model = request.path_params["model"]
    version = request.path_params.get("version")
    settings = request.app.state.settings
    try:
        service = _service(request)
        try:
            _check_auth(request)
            ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            is_image = ctype in IMAGE_TYPES
            if not is_image and ctype not in OIP_TYPES:
                raise UnsupportedMediaType(
                    f"Content-Type {ctype!r} not supported: use application/json (OIP v2), application/octet-stream "
                    "(OIP v2 binary extension) or image/jpeg|image/png (one raw image for image models)"
                )
            _check_content_length(request, settings.max_body_bytes)
        except InferError as e:
            service.count_rejected(model, e)
            raise
        # Admission before ingestion: refuse (404 / 503 + Retry-After) before a byte of the body is read.
        lm = service.admit(model, version)
        try:
            result = await _admitted(request, service, model, version, is_image, started, settings.max_body_bytes)
        finally:
            lm.admission.leave()
    except ClientDisconnected as e:
        return Response(status_code=e.status)  # nobody is listening
    except ClientDisconnect:  # gone while sending the body
        service = request.app.state.service
        if service is not None:
            service.count_rejected(model, ClientDisconnected("client disconnected"))
        return Response(status_code=ClientDisconnected.status)
    except InferError as e:
        t = getattr(e, "timings", None) or Timings()
        if t.total_s is None:
            t.total_s = time.perf_counter() - started
        return error_response(e, server_timing(t))
    t = result.timings
    headers = {"Server-Timing": server_timing(t) or ""}
    if result.header_length is not None:
        headers["Inference-Header-Content-Length"] = str(result.header_length)
        return Response(result.body, headers=headers, media_type="application/octet-stream")
    return Response(result.body, headers=headers, media_type=JSON)


async def _admitted(request: Request, service: InferenceService, model: str, version: str | None, is_image: bool,
                    started: float, max_body_bytes: int):
    """An admitted request: read the body, check the request headers, run it."""
    try:
        body = await _read_body(request, max_body_bytes)
        read_done = time.perf_counter()
        hl = None
        if not is_image:
            raw_hl = request.headers.get("inference-header-content-length")
            if raw_hl is not None:
                try:
                    hl = int(raw_hl)
                except ValueError:
                    raise BadRequest("Inference-Header-Content-Length is not an integer") from None
        top_k = None
        if is_image and "top_k" in request.query_params:
            try:
                top_k = int(request.query_params["top_k"])
            except ValueError:
                top_k = 0
            if not 1 <= top_k <= 1000:
                raise BadRequest("query parameter top_k must be an integer in 1..1000")
    except InferError as e:
        service.count_rejected(model, e)
        raise
    if is_image:
        return await _until_done_or_disconnect(
            request, service.infer_image(model, version, body, started, top_k, read_done))
    return await _until_done_or_disconnect(request, service.infer(model, version, body, hl, started, read_done))


def install(app: FastAPI) -> None:
    """Add every route and the error handlers to `app`."""

    @app.exception_handler(InferError)
    async def _infer_error(request: Request, exc: InferError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        msgs = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _json({"error": f"invalid request: {msgs}"}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail)}, exc.status_code, dict(exc.headers or {}))

    @app.get("/v2")
    async def server_metadata() -> Response:
        return _json({"name": "inferload", "version": app.version, "extensions": EXTENSIONS})

    @app.get("/v2/health/live")
    async def live() -> Response:
        return Response(status_code=200)

    @app.get("/v2/health/ready")
    async def ready(request: Request) -> Response:
        service = request.app.state.service
        if service is None or not service.ready:
            return _json({"error": "not ready"}, 503)
        return Response(status_code=200)

    @app.get("/v2/models/{model}")
    @app.get("/v2/models/{model}/versions/{version}")
    async def model_metadata(request: Request, model: str, version: str | None = None) -> Response:
        return _json(_service(request).metadata(model, version))

    @app.get("/v2/models/{model}/ready")
    @app.get("/v2/models/{model}/versions/{version}/ready")
    async def model_ready(request: Request, model: str, version: str | None = None) -> Response:
        service = _service(request)
        lm = service.get(model, version)
        if not (lm.ready and service.accepting):
            return _json({"error": f"model '{model}' is not ready"}, 503)
        return Response(status_code=200)

    @app.get("/v2/models/{model}/config")
    @app.get("/v2/models/{model}/versions/{version}/config")
    async def model_config(request: Request, model: str, version: str | None = None) -> Response:
        return _json(_service(request).model_config(model, version))

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        data, ctype = request.app.state.metrics.expose()
        return Response(data, media_type=ctype)

    # The hot path: plain Starlette routes (no FastAPI dependency/body machinery).
    app.router.add_route("/v2/models/{model}/infer", infer, methods=["POST"], name="infer")
    app.router.add_route("/v2/models/{model}/versions/{version}/infer", infer, methods=["POST"], name="infer_version")
