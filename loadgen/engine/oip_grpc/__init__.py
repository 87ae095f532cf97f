"""The load generator's OIP gRPC messages: the Open Inference Protocol's own proto (kserve/open-inference-protocol),
which Triton, KServe, MLServer and inferload's server all serve. Message classes come from a *private* descriptor
pool built from `descriptors.py` (scripts/gen_protos.py), never protobuf's default pool: the server's copy of the
same `inference.*` names (Triton's superset), or tritonclient's, may live in the same process.

No grpc import here: the transport (loadgen/engine/grpc_transport.py) imports grpc inside the generating process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from loadgen.engine.oip_grpc.descriptors import FILE_DESCRIPTOR_SET

SERVICE = "inference.GRPCInferenceService"

_pool = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET).file:
    _pool.Add(_file)


def message(full_name: str) -> Any:
    """The message class of `full_name` (e.g. "inference.ModelInferRequest")."""
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(full_name))


def method_path(method: str) -> str:
    """The HTTP/2 path of a method of the OIP service, e.g. "/inference.GRPCInferenceService/ModelInfer"."""
    return f"/{SERVICE}/{method}"


def service_methods() -> list[str]:
    return list(_pool.FindServiceByName(SERVICE).methods_by_name)
