"""The gRPC transport of the load engine (`--protocol grpc`) and the metadata calls that precede a run.

grpcio under gevent: in a process where gevent patched the standard library (Locust's import does), grpc must run on
gevent too (`grpc.experimental.gevent.init_gevent()`, before any channel exists): a call then blocks only its own
greenlet, and the dispatcher keeps its schedule while answers are outstanding. `use_gevent()` does this once per
process; a process without gevent (a test, a script) uses grpc as it is.

One channel (one HTTP/2 connection, calls multiplexed on it) per generating process for the open loop and per user
for the closed loop. Request and answer bytes pass through untouched (grpc_codec builds and reads them). The target's
options apply as for HTTP: headers become call metadata (lower-case keys; a `Host` header becomes the channel's
authority, as an ingress needs), the bearer token `authorization: Bearer …`, grpcs:// uses TLS with --ca-file and
--client-cert/--client-key. gRPC cannot skip certificate verification, so --insecure with grpcs:// is refused.
"""

from __future__ import annotations

from typing import Any

import grpc

from loadgen.engine.oip_grpc import message, method_path
from loadgen.engine.target import Target, TargetError, redact_url

_READY = False
_FORBIDDEN = {"host", "content-type", "te", "user-agent", "connection", "content-length", "transfer-encoding"}


def use_gevent() -> None:
    """Put grpc on gevent if this process runs gevent's patched standard library; once, before any channel."""
    global _READY
    if _READY:
        return
    try:
        from gevent import monkey

        patched = monkey.is_module_patched("socket")
    except ImportError:
        patched = False
    if patched:
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
    _READY = True


def _options(target: Target) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
        ("grpc.primary_user_agent", "inferload"),
    ]
    authority = target.host_override()
    if authority:
        options.append(("grpc.default_authority", authority))
    return options


def _credentials(target: Target) -> grpc.ChannelCredentials:
    if target.insecure:
        raise TargetError("gRPC over TLS cannot skip certificate verification: give the server's CA with --ca-file")
    try:
        root = open(target.ca_file, "rb").read() if target.ca_file else None
        cert = open(target.client_cert, "rb").read() if target.client_cert else None
        key = open(target.client_key or target.client_cert, "rb").read() if target.client_cert else None
    except OSError as e:
        raise TargetError(f"TLS files: {e}") from None
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)


def channel_for(target: Target) -> grpc.Channel:
    use_gevent()
    if not target.https:
        return grpc.insecure_channel(target.grpc_address, _options(target))
    return grpc.secure_channel(target.grpc_address, _credentials(target), _options(target))


def aio_channel_for(target: Target) -> grpc.aio.Channel:
    """The same channel for grpc.aio (a process without gevent: `inferload mlperf`'s SUT)."""
    if not target.https:
        return grpc.aio.insecure_channel(target.grpc_address, _options(target))
    return grpc.aio.secure_channel(target.grpc_address, _credentials(target), _options(target))


def call_metadata(target: Target) -> tuple[tuple[str, str], ...]:
    """The target's headers (and bearer token) as gRPC call metadata."""
    return tuple((k.lower(), v) for k, v in target.request_headers().items() if k.lower() not in _FORBIDDEN)


class GrpcClient:
    """ModelInfer with pre-built request bytes; answers as bytes with the trailing metadata."""

    def __init__(self, target: Target) -> None:
        self.channel = channel_for(target)
        self.metadata = call_metadata(target) or None
        self._infer = self.channel.unary_unary(method_path("ModelInfer"))

    def infer(self, body: bytes, timeout_s: float) -> tuple[str | None, bytes, dict[str, str], str]:
        """(None or the failing status code's name, answer bytes, trailing metadata, status details)."""
        try:
            data, call = self._infer.with_call(body, timeout=timeout_s, metadata=self.metadata)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
            trailers = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
            details = e.details() if hasattr(e, "details") else str(e)
            return code.name, b"", dict(trailers or ()), details or ""
        return None, data, dict(call.trailing_metadata() or ()), ""

    def close(self) -> None:
        self.channel.close()


def _as_dict(msg: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def fetch_model_info_grpc(target: Target, model: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """{"server": ServerMetadata, "metadata": ModelMetadata (REST's JSON form), "config": {"max_batch_size"} from
    Triton's ModelConfig extension when the server has it, else None}. Raises TargetError with a message a user can
    act on (unreachable, credentials refused, unknown model)."""
    from loadgen.engine.tensors import PayloadError

    where = f"{redact_url(target.url)} ({target.grpc_address})"
    channel = channel_for(target)
    md = call_metadata(target) or None

    def call(method: str, request: Any, response_cls: Any) -> Any:
        stub = channel.unary_unary(
            method_path(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString if response_cls is not None else None,
        )
        return stub(request, timeout=timeout_s, metadata=md)

    try:
        try:
            server = _as_dict(
                call("ServerMetadata", message("inference.ServerMetadataRequest")(), _response("ServerMetadata"))
            )
        except grpc.RpcError as e:
            raise PayloadError(_explain(e, where, "server metadata")) from None
        try:
            meta = _as_dict(
                call(
                    "ModelMetadata",
                    message("inference.ModelMetadataRequest")(name=model, version=target.model_version or ""),
                    _response("ModelMetadata"),
                )
            )
        except grpc.RpcError as e:
            raise PayloadError(_explain(e, where, f"metadata of model {model!r}")) from None
        for t in meta.get("inputs", []) + meta.get("outputs", []):
            t["shape"] = [int(d) for d in t.get("shape", [])]  # int64 → JSON strings in MessageToDict
        meta.setdefault("versions", [])
        config = None
        try:  # Triton's extension (not in the OIP proto): ModelConfigRequest {name = 1, version = 2}
            from loadgen.engine.grpc_codec import length_field, max_batch_size_of

            name_b, version_b = model.encode(), (target.model_version or "").encode()
            req = length_field(1, len(name_b)) + name_b + length_field(2, len(version_b)) + version_b
            stub = channel.unary_unary("/inference.GRPCInferenceService/ModelConfig")
            mbs = max_batch_size_of(stub(req, timeout=timeout_s, metadata=md))
            if mbs is not None:
                config = {"max_batch_size": mbs}
        except (grpc.RpcError, ValueError):
            config = None
        return {"server": server, "metadata": meta, "config": config}
    finally:
        channel.close()


def _response(method: str) -> Any:
    return message(f"inference.{method}Response")


def _explain(e: grpc.RpcError, where: str, what: str) -> str:
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return f"the gRPC server at {where} refused the credentials ({code.name}: {details}; see --header / --bearer-token-file)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach the gRPC server at {where}: {details}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"cannot reach the gRPC server at {where}: no answer in time"
    name = code.name if code is not None else "error"
    return f"cannot read {what} at {where}: {name}: {details}"
