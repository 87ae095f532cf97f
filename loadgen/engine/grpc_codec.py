"""The request codec of `--protocol grpc`: OIP gRPC ModelInfer messages, framed from the same binary tensors as the
REST binary extension (payloads.PayloadPool.next_tensors), and answers judged with the same rules. Pure: no grpc
import, no I/O (grpc_transport.py sends the bytes).

A request is built at send time, so its cost counts as schedule lag. The part that never changes (model name,
version, each input's name/datatype/shape, the requested outputs) is serialized once per shape and reused; per
request only the `id` field and each input's `raw_input_contents` entry are appended. Protobuf allows that:
fields of a message may come in any order, and a parser merges repeated fields in the order they arrive.

Answers: outputs in `raw_output_contents` (Triton, inferload) or typed `contents` (some servers) are both read;
the structure check and validation_data are answers.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from loadgen.engine.oip_grpc import message, method_path
from loadgen.engine.payloads import PayloadPool, Tensor

_ID = 3  # ModelInferRequest.id
_RAW = 7  # ModelInferRequest.raw_input_contents
_CONTENTS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def length_field(number: int, length: int) -> bytes:
    """The key and length of a length-delimited field (wire type 2); its `length` bytes follow."""
    return varint(number << 3 | 2) + varint(length)


def read_fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a serialized message's top level: ints for varint/fixed, bytes for
    length-delimited. Raises ValueError on a truncated or malformed message."""
    pos, end = 0, len(buf)

    def read_varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError("truncated varint")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while pos < end:
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, read_varint()
        elif wire == 2:
            n = read_varint()
            if pos + n > end:
                raise ValueError("truncated field")
            yield number, wire, buf[pos : pos + n]
            pos += n
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ValueError("truncated field")
            yield number, wire, int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")


def max_batch_size_of(config_response: bytes) -> int | None:
    """Triton's ModelConfigResponse → its config's max_batch_size (field 1 → field 4), without Triton's protos."""
    for number, wire, value in read_fields(config_response):
        if number == 1 and wire == 2:
            for n2, w2, v2 in read_fields(value):
                if n2 == 4 and w2 == 0:
                    return v2 if v2 < 2**31 else v2 - 2**64  # int32 on the wire as a varint
            return 0
    return None


class GrpcCodec:
    """loadgen.engine.codec.RequestCodec for the OIP gRPC service: `next_parts()` gives one ModelInferRequest."""

    allow_empty = False

    def __init__(self, scenario: Any, info: dict[str, Any], seed: int) -> None:
        self.pool = PayloadPool(scenario, info, seed)
        self.path = method_path("ModelInfer")
        self.check_every = self.pool.check_every
        self.model = scenario.model
        self.version = scenario.model_version or ""
        self._request = message("inference.ModelInferRequest")
        self._response = message("inference.ModelInferResponse")
        self._heads: dict[tuple[tuple[int, ...], ...], bytes] = {}

    def _head(self, tensors: list[Tensor]) -> bytes:
        key = tuple(tuple(shape) for _, _, shape, _ in tensors)
        head = self._heads.get(key)
        if head is None:
            req = self._request(model_name=self.model, model_version=self.version)
            for name, datatype, shape, _ in tensors:
                req.inputs.add(name=name, datatype=datatype, shape=shape)
            for name in self.pool.outputs:
                req.outputs.add(name=name)
            head = self._heads[key] = req.SerializeToString()
        return head

    def next_parts(self) -> tuple[list[bytes | memoryview], dict[str, str]]:
        rid, tensors = self.pool.next_tensors()
        rid_b = rid.encode()
        parts: list[bytes | memoryview] = [self._head(tensors), length_field(_ID, len(rid_b)), rid_b]
        for _, _, _, pieces in tensors:
            parts.append(length_field(_RAW, sum(len(p) for p in pieces)))
            parts += pieces
        return parts, {}

    def success(self, status: int) -> bool:
        return status == 0  # grpc.StatusCode.OK

    def parse(self, body: bytes) -> tuple[dict[str, Any], bytes] | str:
        """A ModelInferResponse → (an OIP-REST-shaped head, its raw outputs joined) or a description of the problem."""
        try:
            resp = self._response.FromString(body)
        except Exception as e:  # protobuf's DecodeError
            return f"response is not a ModelInferResponse: {e}"
        raw = list(resp.raw_output_contents)
        if raw and len(raw) != len(resp.outputs):
            return f"response has {len(raw)} raw_output_contents for {len(resp.outputs)} outputs"
        outs = []
        for i, o in enumerate(resp.outputs):
            item: dict[str, Any] = {"name": o.name, "datatype": o.datatype, "shape": list(o.shape)}
            if raw:
                item["parameters"] = {"binary_data_size": len(raw[i])}
            else:
                c = o.contents
                values = next((list(getattr(c, f)) for f in _CONTENTS if len(getattr(c, f))), None)
                if values is not None:
                    item["data"] = values
            outs.append(item)
        return {"id": resp.id, "outputs": outs}, b"".join(raw)

    def judge(self, body: bytes, header: Callable[[str], Any]) -> tuple[str, str] | None:
        """RequestCodec.judge: structure ("InvalidResponse"), then validation_data ("invalid_output")."""
        parsed = self.parse(body)
        if isinstance(parsed, str):
            return ("InvalidResponse", parsed)
        head, raw = parsed
        return self.pool.judge_head(head, raw, 0, len(raw))
