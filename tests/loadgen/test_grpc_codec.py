"""loadgen/engine/grpc_codec.py, pure: the ModelInferRequest bytes it frames parse with tritonclient's own messages
(another implementation of the same proto), carry what the REST binary body carries, and answers are judged like
REST answers. No sockets."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from loadgen.engine.grpc_codec import GrpcCodec, length_field, max_batch_size_of, read_fields, varint
from loadgen.engine.scenario import Scenario
from tests.loadgen.test_payloads import IMG_INFO, INFO


def _sc(**kw) -> Scenario:
    base = {"target": "grpc://127.0.0.1:1", "protocol": "grpc", "model": "m", "mode": "closed", "users": 1}
    return Scenario(**{**base, **kw})


def _request(codec: GrpcCodec) -> service_pb2.ModelInferRequest:
    parts, headers = codec.next_parts()
    assert headers == {}
    return service_pb2.ModelInferRequest.FromString(b"".join(bytes(p) for p in parts))


def test_request_parses_with_tritonclient_and_carries_binary_tensors():
    codec = GrpcCodec(_sc(batch=2, model_version="3", outputs=["logits"]), INFO, seed=1)
    seen = set()
    for n in range(100):
        req = _request(codec)
        assert req.model_name == "m" and req.model_version == "3" and req.id == str(n)
        assert [(i.name, i.datatype, list(i.shape)) for i in req.inputs] == [("input", "FP32", [2, 3, 4, 4])]
        assert [o.name for o in req.outputs] == ["logits"]
        assert len(req.raw_input_contents) == 1 and len(req.raw_input_contents[0]) == 2 * 48 * 4
        seen.add(req.raw_input_contents[0])
    assert len(seen) == 100  # request n's counter is in its tensor: nothing cacheable


def test_images_travel_as_length_prefixed_bytes():
    codec = GrpcCodec(_sc(payload="image", batch=2, model="mj"), IMG_INFO, seed=1)
    req = _request(codec)
    assert req.inputs[0].datatype == "BYTES" and list(req.inputs[0].shape) == [2]
    raw = req.raw_input_contents[0]
    n0 = struct.unpack_from("<I", raw)[0]
    assert raw[4:6] == b"\xff\xd8"  # a JPEG
    n1 = struct.unpack_from("<I", raw, 4 + n0)[0]
    assert 8 + n0 + n1 == len(raw)


def test_json_payload_is_refused_for_grpc():
    with pytest.raises(ValueError, match="raw_input_contents"):
        _sc(payload="json")


def _answer(batch: int = 2, raw: bool = True, rid: str = "0") -> bytes:
    resp = service_pb2.ModelInferResponse(model_name="m", id=rid)
    out = resp.outputs.add(name="logits", datatype="FP32", shape=[batch, 10])
    values = np.arange(batch * 10, dtype=np.float32)
    if raw:
        resp.raw_output_contents.append(values.tobytes())
    else:
        out.contents.fp32_contents.extend(values.tolist())
    return resp.SerializeToString()


def test_judge_raw_and_typed_answers():
    codec = GrpcCodec(_sc(batch=2), INFO, seed=1)
    codec.next_parts()
    assert codec.judge(_answer(), {}.get) is None
    assert codec.judge(_answer(raw=False), {}.get) is None
    code, why = codec.judge(_answer(batch=3), {}.get)
    assert code == "InvalidResponse" and "expected batch 2" in why
    code, why = codec.judge(b"\xff\xff", {}.get)
    assert code == "InvalidResponse" and "ModelInferResponse" in why
    bad = service_pb2.ModelInferResponse(model_name="m")
    bad.outputs.add(name="other", datatype="FP32", shape=[2, 1])
    bad.raw_output_contents.append(b"\0" * 8)
    code, why = codec.judge(bad.SerializeToString(), {}.get)
    assert "lacks outputs ['logits']" in why


def test_wire_helpers_round_trip():
    assert varint(1) == b"\x01" and varint(300) == b"\xac\x02"
    msg = service_pb2.ModelConfigResponse()
    msg.config.name, msg.config.max_batch_size = "m", 8
    assert max_batch_size_of(msg.SerializeToString()) == 8
    assert max_batch_size_of(service_pb2.ModelConfigResponse(config={"name": "m"}).SerializeToString()) == 0
    assert max_batch_size_of(b"") is None
    blob = length_field(3, 2) + b"ab" + varint(4 << 3) + varint(7)
    assert list(read_fields(blob)) == [(3, 2, b"ab"), (4, 0, 7)]
    with pytest.raises(ValueError):
        list(read_fields(length_field(3, 5) + b"ab"))


def test_grpc_targets(tmp_path):
    from loadgen.commands._curves import build_scenario
    from loadgen.engine.target import target_of

    assert build_scenario(None, model="m", protocol="grpc", users=1).target == "grpc://127.0.0.1:8001"
    assert build_scenario(None, model="m", users=1).target == "http://127.0.0.1:8000"
    f = tmp_path / "s.toml"
    f.write_text('model = "m"\nprotocol = "grpc"\nusers = 1\n')
    assert build_scenario(f).target == "grpc://127.0.0.1:8001"  # a scenario file's protocol picks the default
    assert target_of(_sc(target="grpcs://gw.example")).grpc_address == "gw.example:443"
    assert target_of(_sc(target="grpc://[::1]:9001")).grpc_address == "[::1]:9001"
    with pytest.raises(ValueError, match="no path prefix"):
        _sc(target="grpc://h:1/serving")
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        _sc(target="tcp://h:1")
