"""server/oip_grpc/codec.py: protobuf ⇄ InferRequest / outputs, pure (no sockets). Messages are built with
tritonclient's own generated classes (a different descriptor pool than the server's private one), so the wire
bytes, not shared code, are what must agree."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from server.errors import BadRequest
from server.oip_grpc import codec, service_methods
from server.protocol import OutputTensor


def _decode(req: service_pb2.ModelInferRequest):
    return codec.decode_infer(codec.ModelInferRequest.FromString(req.SerializeToString()))


def _req(datatype: str = "FP32", shape=(2, 3)) -> tuple[service_pb2.ModelInferRequest, object]:
    req = service_pb2.ModelInferRequest(model_name="m", id="7")
    t = req.inputs.add(name="x", datatype=datatype, shape=list(shape))
    return req, t


def test_service_lists_what_triton_clients_call():
    methods = set(service_methods())
    assert {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"} <= methods
    assert {"ModelConfig", "ModelStatistics", "ModelStreamInfer"} <= methods


@pytest.mark.parametrize(
    "datatype", ["FP32", "FP16", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT64", "BOOL"]
)
def test_raw_contents_round_trip(datatype):
    from server.dtypes import OIP_TO_NUMPY

    x = (np.arange(6).reshape(2, 3) % 2).astype(OIP_TO_NUMPY[datatype])
    req, _ = _req(datatype)
    req.raw_input_contents.append(x.tobytes())
    out = _decode(req)
    assert out.id == "7" and out.inputs[0].datatype == datatype
    np.testing.assert_array_equal(out.inputs[0].data, x)


def test_typed_contents_and_parameters():
    req, t = _req("INT16")
    t.contents.int_contents.extend([-3, 2, 1, 0, 7, 32767])
    req.parameters["timeout"].int64_param = 5000
    req.parameters["flag"].bool_param = True
    o = req.outputs.add(name="y")
    o.parameters["classification"].int64_param = 2
    out = _decode(req)
    assert out.inputs[0].data.dtype == np.int16 and out.inputs[0].data.tolist() == [[-3, 2, 1], [0, 7, 32767]]
    assert out.parameters == {"timeout": 5000, "flag": True}
    assert out.outputs[0].name == "y" and out.outputs[0].classification == 2


def test_bytes_typed_and_raw():
    req, t = _req("BYTES", (2,))
    t.contents.bytes_contents.extend([b"ab", b""])
    assert _decode(req).inputs[0].data.tolist() == [b"ab", b""]
    req, _ = _req("BYTES", (2,))
    req.raw_input_contents.append(struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0))
    assert _decode(req).inputs[0].data.tolist() == [b"ab", b""]


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("size", "needs 24 bytes"),
        ("count", "holds 6 elements"),
        ("fp16_typed", "FP16 has no typed contents"),
        ("wrong_field", "goes in contents.fp32_contents"),
        ("range", "outside the range of UINT8"),
        ("raw_count", "raw_input_contents has 2 entries for 1 inputs"),
        ("dtype", "unknown datatype"),
        ("dims", "at most 16"),
        ("duplicate", "appears more than once"),
        ("no_inputs", "at least one input"),
        ("bytes_prefix", "BYTES data ends inside the length prefix"),
    ],
)
def test_hostile_requests_are_bad_requests(case, fragment):
    req, t = _req()
    if case == "size":
        req.raw_input_contents.append(b"\0" * 20)
    elif case == "count":
        t.contents.fp32_contents.extend([1.0] * 5)
    elif case == "fp16_typed":
        t.datatype = "FP16"
    elif case == "wrong_field":
        t.contents.int_contents.extend([1] * 6)
    elif case == "range":
        t.datatype = "UINT8"
        t.contents.uint_contents.extend([1, 2, 3, 4, 5, 256])
    elif case == "raw_count":
        req.raw_input_contents.extend([b"\0" * 24, b""])
    elif case == "dtype":
        t.datatype = "FP8"
    elif case == "dims":
        del t.shape[:]
        t.shape.extend([1] * 17)
    elif case == "duplicate":
        t.contents.fp32_contents.extend([1.0] * 6)
        req.inputs.add(name="x", datatype="FP32", shape=[2, 3])
    elif case == "no_inputs":
        del req.inputs[:]
    elif case == "bytes_prefix":
        t.datatype = "BYTES"
        req.raw_input_contents.append(b"\x05\0")
    with pytest.raises(BadRequest, match=fragment):
        _decode(req)


def test_response_is_raw_and_readable_by_tritonclient():
    logits = np.arange(6, dtype=np.float32).reshape(2, 3)
    labels = np.array([[b"0.5:1"], [b"0.25:0:cat"]], dtype=object)
    resp = codec.encode_infer("m", "1", "9", [OutputTensor("y", "FP32", logits), OutputTensor("c", "BYTES", labels)])
    parsed = service_pb2.ModelInferResponse.FromString(resp.SerializeToString())
    assert parsed.id == "9" and parsed.model_name == "m" and list(parsed.outputs[0].shape) == [2, 3]
    assert np.frombuffer(parsed.raw_output_contents[0], np.float32).tolist() == logits.reshape(-1).tolist()
    raw = parsed.raw_output_contents[1]
    assert raw == struct.pack("<I", 5) + b"0.5:1" + struct.pack("<I", 10) + b"0.25:0:cat"


def test_model_config_message():
    cfg = {
        "name": "m",
        "platform": "onnxruntime_onnx",
        "max_batch_size": 8,
        "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [3]}],
        "output": [{"name": "y", "data_type": "TYPE_STRING", "dims": [1], "reshape": {"shape": []}}],
        "dynamic_batching": {"max_queue_delay_microseconds": 500, "preferred_batch_size": [4]},
    }
    msg = service_pb2.ModelConfigResponse.FromString(codec.model_config(cfg).SerializeToString())
    assert msg.config.max_batch_size == 8 and list(msg.config.input[0].dims) == [3]
    assert msg.config.dynamic_batching.max_queue_delay_microseconds == 500
