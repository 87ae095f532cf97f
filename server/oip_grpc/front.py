"""The gRPC front end: grpc.aio's server on the event loop that runs the REST front (same process, same loop), so
both share the InferenceService: admission, the batchers, deadlines, metrics (label `protocol="grpc"`), the bearer
token and the drain. Only decoding and encoding differ (codec.py).

RPCs: inference.GRPCInferenceService's ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
ModelInfer, ModelStreamInfer, ModelConfig and ModelStatistics (what tritonclient.grpc and perf_analyzer call), and
grpc.health.v1.Health/Check (SERVING when ready; Kubernetes' gRPC probes). Other Triton RPCs answer UNIMPLEMENTED.

Errors, by the service's InferError: 400/415 → INVALID_ARGUMENT, 401 → UNAUTHENTICATED, 404 → NOT_FOUND,
queue full (the model's admission limit) → RESOURCE_EXHAUSTED with a `grpc-retry-pushback-ms` trailer (gRPC's
retry-policy hint), 503 not ready / draining → UNAVAILABLE, 504 → DEADLINE_EXCEEDED, a bug → INTERNAL (no internals).
A message over `max_body_bytes` is refused by gRPC itself (RESOURCE_EXHAUSTED) before it reaches a handler; at most
`max_connections` calls run at once (more → RESOURCE_EXHAUSTED). Unlike REST, a unary gRPC message is received whole
before its handler runs, so admission happens after the bytes arrived; the memory bound is `max_connections` ×
`max_body_bytes` of received messages plus the admitted requests' tensors.

Deadlines: the smallest of the call's gRPC deadline, the request's `timeout` parameter (µs, as Triton) and the model's
`default_timeout_ms`. A call cancelled by its client is withdrawn from the batcher queue (outcome `cancelled`).
Every answer to ModelInfer carries the server's stage timings in the trailing metadata `server-timing`, in the
Server-Timing syntax of the REST front (`queue;dur=…, compute;dur=…, batch;desc="n", total;dur=…`, ms).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from server.errors import BadRequest, InferError, QueueFull, Unauthorized, Unavailable
from server.oip_grpc import HEALTH_SERVICE, SERVICE, codec, message, method_types
from server.responses import server_timing
from server.service import InferenceService, Timings

log = logging.getLogger("server.grpc")
StreamResponse = message("inference.ModelStreamInferResponse")

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
EXTENSIONS = ["classification", "model_configuration", "statistics"]


def status_of(e: InferError) -> grpc.StatusCode:
    if isinstance(e, QueueFull):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return _STATUS.get(e.status, grpc.StatusCode.INTERNAL)


def trailers(e: InferError | None, t: Timings | None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    st = server_timing(t)
    if st:
        out.append(("server-timing", st.decode("latin-1")))
    if isinstance(e, QueueFull):
        seconds = int(e.headers.get("Retry-After", "1"))
        out.append(("grpc-retry-pushback-ms", str(seconds * 1000)))
    return tuple(out)


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class GrpcFront:
    """`await front.start()` after the service is ready; `await front.stop(grace_s)` before the batchers stop."""

    def __init__(self, state: Any, version: str) -> None:
        self.state = state  # the FastAPI app's state: service (None until ready), settings, metrics
        self.version = version
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    @property
    def service(self) -> InferenceService:
        service = self.state.service
        if service is None:
            raise Unavailable("server is starting")
        return service

    # ---- life cycle ----------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        settings = self.state.settings
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.max_send_message_length", 2**31 - 1),
                ("grpc.so_reuseport", 0),  # a port in use is an error, never a shared listener
            ],
            maximum_concurrent_rpcs=settings.max_connections,
        )
        server.add_generic_rpc_handlers((self._handlers(), self._health()))
        try:
            bound = server.add_insecure_port(bind_address(host, port))
        except RuntimeError as e:
            bound, why = 0, str(e)
        else:
            why = "the address is in use or not available"
        if not bound:
            raise RuntimeError(f"gRPC: cannot listen on {bind_address(host, port)} ({why}); set --grpc-port (0: off)")
        await server.start()
        self.server, self.port = server, bound
        log.info("gRPC (OIP v2) on %s", bind_address(host, bound))
        return bound

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let calls in progress finish for up to `grace_s`, then cancel the rest."""
        if self.server is not None:
            await self.server.stop(grace_s)
            self.server = None

    # ---- handlers ------------------------------------------------------------------------------------------------
    def _handlers(self) -> grpc.GenericRpcHandler:
        methods = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ModelReady": self.model_ready,
            "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata,
            "ModelConfig": self.model_config,
            "ModelStatistics": self.model_statistics,
        }
        handlers = {}
        for name, fn in methods.items():
            req_t, resp_t = method_types(SERVICE, name)
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                self._guard(fn), request_deserializer=req_t.FromString, response_serializer=resp_t.SerializeToString
            )
        # ModelInfer parses its own message (an undecodable one is INVALID_ARGUMENT, counted like any bad request)
        handlers["ModelInfer"] = grpc.unary_unary_rpc_method_handler(
            self.model_infer, request_deserializer=None, response_serializer=None
        )
        handlers["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
            self.model_stream_infer, request_deserializer=None, response_serializer=None
        )
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _health(self) -> grpc.GenericRpcHandler:
        req_t, resp_t = message("grpc.health.v1.HealthCheckRequest"), message("grpc.health.v1.HealthCheckResponse")

        async def check(request: Any, context: grpc.aio.ServicerContext) -> Any:
            service = self.state.service
            ok = service is not None and service.ready
            return resp_t(status="SERVING" if ok else "NOT_SERVING")

        handler = grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=req_t.FromString, response_serializer=resp_t.SerializeToString
        )
        return grpc.method_handlers_generic_handler(HEALTH_SERVICE, {"Check": handler})

    @staticmethod
    def _guard(fn: Any) -> Any:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return fn(request)
            except InferError as e:
                await context.abort(status_of(e), e.message)

        return call

    def server_live(self, request: Any) -> Any:
        return method_types(SERVICE, "ServerLive")[1](live=True)

    def server_ready(self, request: Any) -> Any:
        service = self.state.service
        return method_types(SERVICE, "ServerReady")[1](ready=service is not None and service.ready)

    def model_ready(self, request: Any) -> Any:
        service = self.service
        lm = service.get(request.name, request.version or None)
        return method_types(SERVICE, "ModelReady")[1](ready=lm.ready and service.accepting)

    def server_metadata(self, request: Any) -> Any:
        return codec.ServerMetadataResponse(name="inferload", version=self.version, extensions=EXTENSIONS)

    def model_metadata(self, request: Any) -> Any:
        return codec.model_metadata(self.service.metadata(request.name, request.version or None))

    def model_config(self, request: Any) -> Any:
        return codec.model_config(self.service.model_config(request.name, request.version or None))

    def model_statistics(self, request: Any) -> Any:
        from server.oip_grpc.stats import statistics

        service = self.service
        if request.name:
            models = [service.get(request.name, request.version or None)]
        else:
            models = list(service.models.values())
        return statistics(models, self.state.metrics)

    async def _infer(self, data: bytes, context: grpc.aio.ServicerContext) -> tuple[Any, Timings]:
        """One ModelInferRequest (serialized) → (ModelInferResponse, timings); raises InferError (counted)."""
        started = time.perf_counter()
        state = self.state
        service: InferenceService | None = state.service
        if service is None:
            raise Unavailable("server is starting")
        try:
            msg = codec.ModelInferRequest.FromString(data)
        except Exception:
            raise BadRequest("the ModelInferRequest message does not parse") from None
        name = msg.model_name
        try:
            if not _auth_ok(state.settings, context):
                raise Unauthorized("missing or wrong bearer token (metadata 'authorization: Bearer <token>')")
        except InferError as e:
            service.count_rejected(name, e, "grpc")
            raise
        lm = service.admit(name, msg.model_version or None, "grpc")
        try:
            try:
                req = codec.decode_infer(msg)
            except InferError as e:
                service.count_rejected(name, e, "grpc")
                raise
            del msg, data
            try:
                outputs, timings = await service.infer_decoded(lm, req, started, None, context.time_remaining(), "grpc")
            except InferError as e:
                t = getattr(e, "timings", None)
                if t is not None and t.total_s is None:
                    t.total_s = time.perf_counter() - started
                raise
        finally:
            lm.admission.leave()
        return codec.encode_infer(lm.name, lm.version, req.id, outputs), timings

    async def model_infer(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            resp, timings = await self._infer(data, context)
        except InferError as e:
            await context.abort(status_of(e), e.message, trailers(e, getattr(e, "timings", None)))
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # a bug: never leak internals to the client
            log.exception("gRPC infer: unexpected error")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error ({type(e).__name__})")
        context.set_trailing_metadata(trailers(None, timings))
        return resp.SerializeToString()

    async def model_stream_infer(self, requests: Any, context: grpc.aio.ServicerContext) -> Any:
        """Triton's ModelStreamInfer (perf_analyzer --streaming, tritonclient's start_stream): each request on the
        stream is served as a ModelInfer is, concurrently, and answered on the stream as it completes (in completion
        order, as Triton does; the request id tells them apart). A failed request is one response carrying
        `error_message`; the stream goes on."""
        out: asyncio.Queue[bytes | None] = asyncio.Queue()
        pending: set[asyncio.Task] = set()

        async def one(data: bytes) -> None:
            try:
                resp, _ = await self._infer(data, context)
                item = StreamResponse(infer_response=resp)
            except InferError as e:
                item = StreamResponse(error_message=f"{status_of(e).name}: {e.message}")
            except Exception as e:  # a bug: never leak internals to the client
                log.exception("gRPC stream infer: unexpected error")
                item = StreamResponse(error_message=f"INTERNAL: internal error ({type(e).__name__})")
            await out.put(item.SerializeToString())

        async def read() -> None:
            async for data in requests:
                task = asyncio.ensure_future(one(data))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while pending:
                await asyncio.gather(*list(pending), return_exceptions=True)
            await out.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (item := await out.get()) is not None:
                yield item
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()


def _auth_ok(settings: Any, context: grpc.aio.ServicerContext) -> bool:
    from server.dispatch import auth_ok

    if settings.auth_token is None:
        return True
    given = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            given = value.encode("latin-1") if isinstance(value, str) else value
    return auth_ok(settings, given)
