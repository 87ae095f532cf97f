"""Thin HTTP handlers (OIP v2 REST + Triton's model-configuration extension + /metrics). HTTP concerns only.
Everything else is `InferenceService`.

Inference has no route here: an infer request is served by the HTTP protocol (the fast path) or sent by
`InferloadApp` to the plain ASGI endpoint (server/infer_http.py) before FastAPI's middleware and routing; the rule
is server/dispatch.py's.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from server.errors import InferError, Unavailable
from server.service import InferenceService

JSON = "application/json"
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]


def _json(obj, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, headers=headers, media_type=JSON)


def error_response(exc: InferError) -> Response:
    return _json({"error": exc.message}, exc.status, dict(exc.headers))


def _service(request: Request) -> InferenceService:
    service = request.app.state.service
    if service is None:
        raise Unavailable("server is starting")
    return service


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
