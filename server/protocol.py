"""Open Inference Protocol v2 (REST) codec, including Triton's binary tensor extension. Pure: bytes ⇄ tensors.

Request  = JSON header [+ raw tensor bytes]. With the binary extension the JSON header's length is given by
the `Inference-Header-Content-Length` HTTP header; each binary input carries `parameters.binary_data_size`
and the binary parts follow the header in input order. BYTES elements travel as a 4-byte little-endian
length followed by the bytes. JSON `data` may be flat or nested (row-major).

Everything a client controls is validated here with a clear `BadRequest` (→ 400): header length inside the
body, sizes summing exactly to the remaining bytes, shape × itemsize == byte count (Python ints, so no
overflow), element count == shape product, known datatypes, non-negative integer dims.

Non-finite floats, as Triton: its JSON parser (RapidJSON with kParseNanAndInfFlag) accepts the literals `NaN`,
`Infinity`, `-Infinity` (and RapidJSON's `-NaN`, `Inf`, `-Inf`; never `+Infinity`), and its writer emits
`NaN`, `Infinity`, `-Infinity` for non-finite FP16/FP32/FP64 outputs. Triton's clients rely on both: perf_analyzer
`--input-tensor-format json` sends random bit patterns (some are NaN/Inf) and tritonclient.http reads and writes
the literals. Strict RFC 8259 has no such tokens, so orjson parses first (the fast path) and only a body it
rejects that holds such a literal is parsed again by the stdlib `json` module. Such a value is only valid for
FP16/FP32/FP64 data: for an integer or BOOL input it is a 400, never a cast.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from server.dtypes import OIP_TO_NUMPY
from server.errors import BadRequest, InferError
from server.oip_json import JSON_OPTS, float_json, loads_json

MAX_DIMS = 16
_INT_LIMITS = {k: np.iinfo(v) for k, v in OIP_TO_NUMPY.items() if v.kind in "iu"}


# ---------------------------------------------------------------------------------------------- types


# RapidJSON's forms that the stdlib parser lacks (it knows NaN, Infinity, -Infinity), outside JSON strings.


@dataclass
class InputTensor:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray  # numeric: dtype of `datatype`, shaped; BYTES: object array of `bytes`, shaped
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary(self) -> bool | None:
        v = self.parameters.get("binary_data")
        return None if v is None else bool(v)

    @property
    def classification(self) -> int | None:
        return self.parameters.get("classification")


@dataclass
class InferRequest:
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = None  # None: all outputs
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_output_default(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))


@dataclass
class OutputTensor:
    name: str
    datatype: str
    data: np.ndarray
    binary: bool = False

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.data.shape]


# ---------------------------------------------------------------------------------------------- decode


def _dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list):
        raise BadRequest(f"input '{name}': 'shape' must be a list of non-negative integers")
    if len(value) > MAX_DIMS:
        raise BadRequest(f"input '{name}': shape has {len(value)} dimensions (at most {MAX_DIMS})")
    for d in value:
        if not isinstance(d, int) or isinstance(d, bool):
            raise BadRequest(f"input '{name}': shape {value} must contain integers only")
        if d < 0:
            raise BadRequest(f"input '{name}': shape {value} has a negative dimension")
    return value


def _count(shape: list[int]) -> int:
    return math.prod(shape)  # Python int: never overflows


def parse_bytes_elements(buf: memoryview | bytes, count: int, name: str) -> list[bytes]:
    """BYTES binary form: `count` elements, each a 4-byte LE length then that many bytes, filling `buf` exactly."""
    out: list[bytes] = []
    mv = memoryview(buf)
    pos, end = 0, len(mv)
    unpack = struct.Struct("<I").unpack_from
    for i in range(count):
        if pos + 4 > end:
            raise BadRequest(
                f"input '{name}': BYTES data ends inside the length prefix of element {i} (shape says {count} elements)"
            )
        (n,) = unpack(mv, pos)
        pos += 4
        if pos + n > end:
            raise BadRequest(f"input '{name}': BYTES element {i} declares {n} bytes but only {end - pos} remain")
        out.append(bytes(mv[pos : pos + n]))
        pos += n
    if pos != end:
        raise BadRequest(f"input '{name}': {end - pos} bytes left over after {count} BYTES elements")
    return out


def serialize_bytes_elements(arr: np.ndarray) -> bytes:
    parts: list[bytes] = []
    pack = struct.Struct("<I").pack
    for v in arr.reshape(-1):
        b = v if isinstance(v, bytes) else (v.encode("utf-8") if isinstance(v, str) else bytes(v))
        parts.append(pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def object_array(items: list, shape: list[int]) -> np.ndarray:
    """A BYTES tensor: an object array of `items`, shaped."""
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr.reshape(shape)


def _flatten(data: list, out: list) -> None:
    for v in data:
        if isinstance(v, list):
            _flatten(v, out)
        else:
            out.append(v)


def _json_tensor(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(f"input '{name}': 'data' must be a JSON array (flat or nested, row-major)")
    expected = _count(shape)
    if datatype == "BYTES":
        flat: list = []
        _flatten(data, flat)
        if len(flat) != expected:
            raise BadRequest(f"input '{name}': {len(flat)} elements in 'data' but shape {shape} needs {expected}")
        items = []
        for v in flat:
            if isinstance(v, str):
                items.append(v.encode("utf-8"))
            else:
                raise BadRequest(
                    f"input '{name}': BYTES data in JSON must be strings (use the binary extension for raw bytes)"
                )
        return object_array(items, shape)
    dtype = OIP_TO_NUMPY[datatype]
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError):
        raise BadRequest(
            f"input '{name}': 'data' is ragged or mixes types; it must hold {expected} {datatype} values"
        ) from None
    if raw.size != expected:
        raise BadRequest(f"input '{name}': {raw.size} elements in 'data' but shape {shape} needs {expected}")
    kind = raw.dtype.kind
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    if datatype == "BOOL":
        if kind != "b":
            raise BadRequest(f"input '{name}': BOOL data must be true/false values")
    elif dtype.kind in "iu":
        lim = _INT_LIMITS[datatype]
        if kind not in "iu":
            # numpy turns ints beyond int64 (large UINT64 values) into floats/objects: check the Python values
            flat = []
            _flatten(data, flat)
            if not all(type(v) is int for v in flat):
                bad = next(v for v in flat if type(v) is not int)
                if isinstance(bad, float) and not math.isfinite(bad):
                    raise BadRequest(
                        f"input '{name}': {datatype} data must be integers (got {bad}; NaN and Infinity are "
                        "only valid in FP16/FP32/FP64 data)"
                    )
                raise BadRequest(f"input '{name}': {datatype} data must be integers (got {_kind_name(kind)})")
            if min(flat) < lim.min or max(flat) > lim.max:
                raise BadRequest(f"input '{name}': a value is outside the {datatype} range [{lim.min}, {lim.max}]")
            return np.array(flat, dtype=dtype).reshape(shape)
        if int(raw.min()) < lim.min or int(raw.max()) > lim.max:
            raise BadRequest(f"input '{name}': a value is outside the {datatype} range [{lim.min}, {lim.max}]")
    else:  # floats
        if kind not in "iuf":
            raise BadRequest(f"input '{name}': {datatype} data must be numbers (got {_kind_name(kind)})")
    return raw.astype(dtype, copy=False).reshape(shape)


def _kind_name(kind: str) -> str:
    return {"b": "booleans", "f": "floats", "i": "integers", "u": "integers", "U": "strings", "O": "mixed values"}.get(
        kind, "other values"
    )


def decode_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Decode an OIP v2 infer request. `header_length` is the `Inference-Header-Content-Length` value, if any."""
    total = len(body)
    if header_length is None:
        header_length = total
    elif header_length < 0 or header_length > total:
        raise BadRequest(f"Inference-Header-Content-Length {header_length} is outside the body of {total} bytes")
    try:
        header = loads_json(memoryview(body)[:header_length])
    except ValueError as e:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        raise BadRequest(f"request header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise BadRequest("request must be a JSON object with an 'inputs' list")
    params = _dict(header.get("parameters"), "'parameters'")
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("request needs a non-empty 'inputs' list")
    binary = memoryview(body)[header_length:]
    offset = 0
    seen: set[str] = set()
    inputs: list[InputTensor] = []
    for i, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise BadRequest(f"inputs[{i}] must be a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"inputs[{i}] needs a 'name' string")
        if name in seen:
            raise BadRequest(f"input '{name}' appears more than once")
        seen.add(name)
        datatype = item.get("datatype")
        if datatype not in OIP_TO_NUMPY:
            raise BadRequest(f"input '{name}': unknown datatype {datatype!r} (allowed: {', '.join(OIP_TO_NUMPY)})")
        shape = _shape(item.get("shape"), name)
        iparams = _dict(item.get("parameters"), f"input '{name}' parameters")
        size = iparams.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"input '{name}': parameters.binary_data_size must be a non-negative integer")
            if "data" in item:
                raise BadRequest(f"input '{name}': has both 'data' and parameters.binary_data_size")
            if offset + size > len(binary):
                raise BadRequest(
                    f"input '{name}': binary_data_size {size} runs past the end of the body "
                    f"({len(binary) - offset} binary bytes remain)"
                )
            chunk = binary[offset : offset + size]
            offset += size
            count = _count(shape)
            if datatype == "BYTES":
                arr = object_array(parse_bytes_elements(chunk, count, name), shape)
            else:
                dtype = OIP_TO_NUMPY[datatype]
                if count * dtype.itemsize != size:
                    raise BadRequest(
                        f"input '{name}': shape {shape} of {datatype} needs {count * dtype.itemsize} bytes "
                        f"but binary_data_size is {size}"
                    )
                arr = np.frombuffer(chunk, dtype=dtype).reshape(shape)
        else:
            if "data" not in item:
                raise BadRequest(f"input '{name}': needs 'data' or parameters.binary_data_size")
            arr = _json_tensor(name, datatype, shape, item["data"])
        inputs.append(InputTensor(name, datatype, shape, arr, iparams))
    if offset != len(binary):
        raise BadRequest(
            f"binary_data_size values sum to {offset} bytes but {len(binary)} bytes follow the JSON header"
        )
    outputs = None
    raw_outputs = header.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise BadRequest("'outputs' must be a list")
        outputs = []
        for i, item in enumerate(raw_outputs):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise BadRequest(f"outputs[{i}] must be an object with a 'name'")
            oparams = _dict(item.get("parameters"), f"output '{item['name']}' parameters")
            k = oparams.get("classification")
            if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
                raise BadRequest(f"output '{item['name']}': parameters.classification must be a positive integer")
            outputs.append(RequestedOutput(item["name"], oparams))
    rid = header.get("id")
    if rid is not None and not isinstance(rid, str):
        raise BadRequest("'id' must be a string")
    return InferRequest(inputs=inputs, outputs=outputs, id=rid, parameters=params)


# ---------------------------------------------------------------------------------------------- encode


def _json_data(out: OutputTensor) -> Any:
    arr = out.data
    if out.datatype == "BYTES":
        try:
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)]
        except UnicodeDecodeError:
            raise InferError(
                f"output '{out.name}' holds non-UTF-8 BYTES; request it with parameters.binary_data=true"
            ) from None
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype.kind == "f":
        return float_json(flat)
    return flat


def _binary_data(out: OutputTensor) -> bytes:
    if out.datatype == "BYTES":
        return serialize_bytes_elements(out.data)
    dtype = OIP_TO_NUMPY[out.datatype]
    return np.ascontiguousarray(out.data, dtype=dtype).tobytes()


def encode_response(
    model_name: str,
    model_version: str | None,
    outputs: list[OutputTensor],
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Encode a response. Returns (body, header_length); header_length is None when no output is binary."""
    header: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        header["model_version"] = model_version
    if request_id is not None:
        header["id"] = request_id
    if parameters:
        header["parameters"] = parameters
    header["outputs"], blobs = _encode_tensors(outputs)
    return _assemble(header, blobs)


def _encode_tensors(tensors: list[OutputTensor]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """JSON items for the header, and the raw blobs (in order) of the tensors sent as binary data."""
    items = []
    blobs: list[bytes] = []
    for t in tensors:
        item: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if t.binary:
            blob = _binary_data(t)
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            item["data"] = _json_data(t)
        items.append(item)
    return items, blobs


def _assemble(header: dict[str, Any], blobs: list[bytes]) -> tuple[bytes, int | None]:
    """(body, JSON header length); the length is None when nothing is binary."""
    head = orjson.dumps(header, option=JSON_OPTS)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def encode_request(
    inputs: list[tuple[str, str, np.ndarray]],
    *,
    binary: bool = True,
    outputs: list[dict] | None = None,
    parameters: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int | None]:
    """Client-side encoder (used by tests and the load generator's payload builder): (name, datatype, array)."""
    header: dict[str, Any] = {}
    if request_id is not None:
        header["id"] = request_id
    if parameters:
        header["parameters"] = parameters
    tensors = [OutputTensor(name, dt, np.asarray(arr) if dt != "BYTES" else arr, binary) for name, dt, arr in inputs]
    header["inputs"], blobs = _encode_tensors(tensors)
    if outputs is not None:
        header["outputs"] = outputs
    return _assemble(header, blobs)


def decode_response(body: bytes, header_length: int | None = None) -> dict[str, np.ndarray]:
    """Client-side decoder (tests, loadgen validity checks): output name → array."""
    total = len(body)
    hl = total if header_length is None else header_length
    header = loads_json(body[:hl])
    pos = hl
    result: dict[str, np.ndarray] = {}
    for item in header["outputs"]:
        shape = item["shape"]
        dt = item["datatype"]
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            chunk = body[pos : pos + size]
            pos += size
            if dt == "BYTES":
                result[item["name"]] = object_array(parse_bytes_elements(chunk, _count(shape), item["name"]), shape)
            else:
                result[item["name"]] = np.frombuffer(chunk, dtype=OIP_TO_NUMPY[dt]).reshape(shape)
        elif dt == "BYTES":
            flat: list = []
            _flatten(item["data"], flat)
            result[item["name"]] = object_array([s.encode("utf-8") for s in flat], shape)
        else:
            result[item["name"]] = np.asarray(item["data"], dtype=OIP_TO_NUMPY[dt]).reshape(shape)
    return result
