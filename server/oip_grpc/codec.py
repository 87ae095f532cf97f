"""OIP gRPC messages ⇄ the service's types. Pure: no grpc, no I/O.

Requests: a `ModelInferRequest` becomes the same `InferRequest` the REST codec (server/protocol.py) makes, so
validation against the model, deadlines, batching and outputs are shared. Tensor data comes either typed, in each
input's `contents` (`fp32_contents`, `int_contents`, ...: the field of the input's datatype, as the OIP spec lists
them; FP16 has none), or raw, in `raw_input_contents` (one entry per input, little-endian, BYTES elements each a
4-byte length then the bytes: Triton's and tritonclient's form). Everything a client controls is checked with a
clear `BadRequest` (→ INVALID_ARGUMENT): raw entries for every input or none, byte counts equal to shape × item
size, element counts equal to the shape's product, narrow integer types within range (no silent cast), known
datatypes, at most MAX_DIMS non-negative dimensions, unique names.

Responses: outputs always travel in `raw_output_contents` (as Triton answers; tritonclient's `as_numpy` reads it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from google.protobuf import json_format

from server.dtypes import OIP_TO_NUMPY
from server.errors import BadRequest
from server.oip_grpc import message
from server.protocol import (
    MAX_DIMS,
    InferRequest,
    InputTensor,
    OutputTensor,
    RequestedOutput,
    object_array,
    parse_bytes_elements,
    serialize_bytes_elements,
)

ModelInferRequest = message("inference.ModelInferRequest")
ModelInferResponse = message("inference.ModelInferResponse")
ModelMetadataResponse = message("inference.ModelMetadataResponse")
ServerMetadataResponse = message("inference.ServerMetadataResponse")
ModelConfigResponse = message("inference.ModelConfigResponse")
ModelConfig = message("inference.ModelConfig")

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_ALL_FIELDS = tuple(sorted(set(CONTENTS_FIELD.values())))


def parameters(params: Any) -> dict[str, Any]:
    """A map<string, InferParameter> → plain values (bool, int, str or float)."""
    out: dict[str, Any] = {}
    for key, p in params.items():
        which = p.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(p, which)
    return out


def _shape(dims: Any, name: str) -> list[int]:
    shape = list(dims)
    if len(shape) > MAX_DIMS:
        raise BadRequest(f"input '{name}': shape has {len(shape)} dimensions (at most {MAX_DIMS})")
    if any(d < 0 for d in shape):
        raise BadRequest(f"input '{name}': shape {shape} has a negative dimension")
    return shape


def _raw_tensor(buf: bytes, name: str, datatype: str, shape: list[int]) -> np.ndarray:
    count = math.prod(shape)  # Python int: no overflow
    if datatype == "BYTES":
        return object_array(parse_bytes_elements(buf, count, name), shape)
    dtype = OIP_TO_NUMPY[datatype]
    if count * dtype.itemsize != len(buf):
        raise BadRequest(
            f"input '{name}': shape {shape} of {datatype} needs {count * dtype.itemsize} bytes "
            f"but its raw_input_contents entry has {len(buf)}"
        )
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def _typed_tensor(contents: Any, name: str, datatype: str, shape: list[int]) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "FP16":
        raise BadRequest(f"input '{name}': FP16 has no typed contents field: send it in raw_input_contents")
    field = CONTENTS_FIELD[datatype]
    stray = [f for f in _ALL_FIELDS if f != field and len(getattr(contents, f))]
    if stray:
        raise BadRequest(f"input '{name}': {datatype} data goes in contents.{field}, not contents.{stray[0]}")
    values = getattr(contents, field)
    if len(values) != count:
        raise BadRequest(f"input '{name}': shape {shape} holds {count} elements but contents.{field} has {len(values)}")
    if datatype == "BYTES":
        return object_array(list(values), shape)
    dtype = OIP_TO_NUMPY[datatype]
    if datatype in ("INT8", "INT16", "UINT8", "UINT16"):  # carried in 32-bit fields: no silent wrap-around
        wide = np.array(values, dtype=np.int64)
        info = np.iinfo(dtype)
        if wide.size and (wide.min() < info.min or wide.max() > info.max):
            raise BadRequest(f"input '{name}': a value is outside the range of {datatype} ({info.min}..{info.max})")
        return wide.astype(dtype).reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


def decode_infer(msg: Any) -> InferRequest:
    """A ModelInferRequest → InferRequest (raises BadRequest)."""
    raw = msg.raw_input_contents
    if not msg.inputs:
        raise BadRequest("request needs at least one input")
    if raw and len(raw) != len(msg.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(msg.inputs)} inputs: "
            "give every input's data raw (in input order), or none"
        )
    seen: set[str] = set()
    inputs: list[InputTensor] = []
    for i, t in enumerate(msg.inputs):
        name = t.name
        if not name:
            raise BadRequest(f"inputs[{i}] needs a name")
        if name in seen:
            raise BadRequest(f"input '{name}' appears more than once")
        seen.add(name)
        datatype = t.datatype
        if datatype not in OIP_TO_NUMPY:
            raise BadRequest(f"input '{name}': unknown datatype {datatype!r} (allowed: {', '.join(OIP_TO_NUMPY)})")
        shape = _shape(t.shape, name)
        if raw:
            if t.HasField("contents"):
                raise BadRequest(f"input '{name}': has both contents and a raw_input_contents entry")
            arr = _raw_tensor(raw[i], name, datatype, shape)
        else:
            arr = _typed_tensor(t.contents, name, datatype, shape)
        inputs.append(InputTensor(name, datatype, shape, arr, parameters(t.parameters)))
    outputs = [RequestedOutput(o.name, parameters(o.parameters)) for o in msg.outputs] or None
    return InferRequest(inputs, outputs, id=msg.id or None, parameters=parameters(msg.parameters))


def encode_infer(model: str, version: str, request_id: str | None, outputs: list[OutputTensor]) -> Any:
    """The ModelInferResponse: every output's bytes in raw_output_contents, in order."""
    resp = ModelInferResponse(model_name=model, model_version=version, id=request_id or "")
    for o in outputs:
        resp.outputs.add(name=o.name, datatype=o.datatype, shape=o.shape)
        if o.datatype == "BYTES":
            resp.raw_output_contents.append(serialize_bytes_elements(o.data))
        else:
            resp.raw_output_contents.append(np.ascontiguousarray(o.data, dtype=OIP_TO_NUMPY[o.datatype]).tobytes())
    return resp


def model_metadata(meta: dict[str, Any]) -> Any:
    """InferenceService.metadata (the REST JSON) → ModelMetadataResponse."""
    return ModelMetadataResponse(
        name=meta["name"],
        versions=meta["versions"],
        platform=meta["platform"],
        inputs=[{"name": t["name"], "datatype": t["datatype"], "shape": t["shape"]} for t in meta["inputs"]],
        outputs=[{"name": t["name"], "datatype": t["datatype"], "shape": t["shape"]} for t in meta["outputs"]],
    )


def model_config(config: dict[str, Any]) -> Any:
    """Triton's model configuration (JSON form, server/modelconfig.py) → ModelConfigResponse."""
    return ModelConfigResponse(config=json_format.ParseDict(config, ModelConfig()))
