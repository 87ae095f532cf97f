"""The server's gRPC front end: the Open Inference Protocol's gRPC service as Triton extends it
(`inference.GRPCInferenceService`: health, metadata, ModelInfer, ModelConfig, ModelStatistics, ...), plus the
standard `grpc.health.v1.Health` check. `codec` is pure (protobuf ⇄ tensors); `front` is the grpc.aio server.

The message classes come from a *private* descriptor pool built from `descriptors.py` (generated from the vendored
upstream protos by scripts/gen_protos.py): no `_pb2` module registers `inference.*` in protobuf's default pool, where
tritonclient's own copy (or any other) would collide with ours in one process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from server.oip_grpc.descriptors import FILE_DESCRIPTOR_SET

SERVICE = "inference.GRPCInferenceService"
HEALTH_SERVICE = "grpc.health.v1.Health"

_pool = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET).file:
    _pool.Add(_file)


def message(full_name: str) -> Any:
    """The message class of `full_name` (e.g. "inference.ModelInferRequest") from the private pool."""
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(full_name))


def method_types(service: str, method: str) -> tuple[Any, Any]:
    """(request class, response class) of `service`'s `method`."""
    m = _pool.FindServiceByName(service).methods_by_name[method]
    return message_factory.GetMessageClass(m.input_type), message_factory.GetMessageClass(m.output_type)


def service_methods(service: str = SERVICE) -> list[str]:
    return list(_pool.FindServiceByName(service).methods_by_name)
