"""The OIP v2 codec (pure): round trips for every datatype in JSON and binary, and malformed requests."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from server.dtypes import OIP_TO_NUMPY
from server.errors import BadRequest
from server.labels import classify
from server.protocol import (
    OutputTensor,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    parse_bytes_elements,
    serialize_bytes_elements,
)

NUMERIC = [t for t in OIP_TO_NUMPY if t != "BYTES"]


def sample(datatype: str, shape=(2, 3)) -> np.ndarray:
    rng = np.random.default_rng(1)
    if datatype == "BYTES":
        vals = [f"elem-{i}-é".encode() for i in range(int(np.prod(shape)))]
        arr = np.empty(len(vals), dtype=object)
        arr[:] = vals
        return arr.reshape(shape)
    dt = OIP_TO_NUMPY[datatype]
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        a = rng.integers(lo, hi, shape).astype(dt)
        a.flat[0] = info.max  # extremes survive the trip
        a.flat[-1] = info.min
        return a
    return rng.standard_normal(shape).astype(dt)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    if a.dtype == object:
        assert list(a.reshape(-1)) == list(b.reshape(-1))
    else:
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("datatype", list(OIP_TO_NUMPY))
@pytest.mark.parametrize("binary", [False, True])
def test_request_round_trip(datatype, binary):
    x = sample(datatype)
    body, hl = encode_request([("x", datatype, x)], binary=binary)
    assert (hl is not None) == binary
    req = decode_request(body, hl)
    (inp,) = req.inputs
    assert inp.name == "x" and inp.datatype == datatype and inp.shape == [2, 3]
    assert_same(inp.data, x)


@pytest.mark.parametrize("datatype", list(OIP_TO_NUMPY))
@pytest.mark.parametrize("binary", [False, True])
def test_response_round_trip(datatype, binary):
    x = sample(datatype, (3, 2))
    body, hl = encode_response("m", "1", [OutputTensor("y", datatype, x, binary)], request_id="abc")
    header = orjson.loads(body[:hl] if hl else body)
    assert header["model_name"] == "m" and header["id"] == "abc"
    assert header["outputs"][0]["shape"] == [3, 2]
    assert_same(decode_response(body, hl)["y"], x)


def test_nested_json_data_is_accepted():
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]})
    x = decode_request(body).inputs[0].data
    assert x.dtype == np.int32 and x.tolist() == [[1, 2], [3, 4]]


def test_mixed_json_and_binary_inputs_and_outputs():
    a = sample("FP32", (1, 4))
    b = sample("INT64", (1, 2))
    head = {
        "id": "r1",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}},
            {"name": "b", "datatype": "INT64", "shape": [1, 2], "data": b.tolist()},
        ],
        "outputs": [{"name": "o", "parameters": {"classification": 2, "binary_data": False}}],
    }
    h = orjson.dumps(head)
    req = decode_request(h + a.tobytes(), len(h))
    assert req.id == "r1" and req.binary_output_default
    assert_same(req.inputs[0].data, a)
    assert_same(req.inputs[1].data, b)
    assert req.outputs[0].classification == 2 and req.outputs[0].binary is False


def test_bytes_wire_format():
    arr = np.array([b"ab", b"", b"xyz"], dtype=object)
    raw = serialize_bytes_elements(arr)
    assert raw == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 3) + b"xyz"
    assert parse_bytes_elements(raw, 3, "x") == [b"ab", b"", b"xyz"]


def _binary(shape, datatype="FP32", size=None, payload=b"", extra=None):
    item = {
        "name": "x",
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size if size is not None else len(payload)},
    }
    h = orjson.dumps({"inputs": [item], **(extra or {})})
    return h + payload, len(h)


@pytest.mark.parametrize(
    "body,hl,fragment",
    [
        (b'{"inputs": []}', None, "non-empty 'inputs'"),
        (b"not json", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"inputs": [{"name": "x"}]}', 1000, "outside the body"),
        (b'{"inputs": [{"name": "x"}]}', -1, "outside the body"),
        (b'{"inputs": [{"name": "x", "datatype": "FP128", "shape": [1], "data": [1]}]}', None, "unknown datatype"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1], "data": [1]}]}', None, "negative dimension"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1.5], "data": [1]}]}', None, "integers only"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2]}]}', None, "needs 3"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3]]}]}', None, "ragged"),
        (
            b'{"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [300]}]}',
            None,
            "outside the INT8 range",
        ),
        (b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1.5]}]}', None, "must be integers"),
        (b'{"inputs": [{"name": "x", "datatype": "BOOL", "shape": [1], "data": [1]}]}', None, "true/false"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ["a"]}]}', None, "must be numbers"),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}', None, "needs 'data'"),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}, '
            b'{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}',
            None,
            "more than once",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}], "outputs": [{"name": "o", '
            b'"parameters": {"classification": 0}}]}',
            None,
            "positive integer",
        ),
    ],
)
def test_malformed_requests_are_400(body, hl, fragment):
    with pytest.raises(BadRequest) as e:
        decode_request(body, hl)
    assert e.value.status == 400
    assert fragment in e.value.message


def test_binary_size_mismatch_with_shape():
    body, hl = _binary([1, 3], payload=b"\0" * 8)
    with pytest.raises(BadRequest, match="needs 12 bytes"):
        decode_request(body, hl)


def test_binary_size_past_end_of_body():
    body, hl = _binary([1, 3], size=12, payload=b"\0" * 8)
    with pytest.raises(BadRequest, match="runs past the end"):
        decode_request(body, hl)


def test_binary_sizes_must_cover_remaining_bytes():
    body, hl = _binary([2], payload=b"\0" * 8)
    with pytest.raises(BadRequest, match="follow the JSON header"):
        decode_request(body + b"extra", hl)


def test_overflow_shapes_are_rejected_without_overflowing():
    # product of dims wraps around in int64 (2**64 * 4 bytes ≡ 0): must still be a mismatch, never a crash
    body, hl = _binary([2**32, 2**32], payload=b"")
    with pytest.raises(BadRequest, match="needs"):
        decode_request(body, hl)
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2**40, 2**40], "data": [1]}]})
    with pytest.raises(BadRequest, match="needs"):
        decode_request(body)


def test_bytes_binary_malformed():
    good = serialize_bytes_elements(np.array([b"abc"], dtype=object))
    body, hl = _binary([2], "BYTES", payload=good)  # shape says 2 elements, only 1 present
    with pytest.raises(BadRequest, match="length prefix"):
        decode_request(body, hl)
    body, hl = _binary([1], "BYTES", payload=struct.pack("<I", 100) + b"abc")
    with pytest.raises(BadRequest, match="declares 100 bytes"):
        decode_request(body, hl)
    body, hl = _binary([1], "BYTES", payload=good + b"zz")
    with pytest.raises(BadRequest, match="left over"):
        decode_request(body, hl)


def test_classification_strings():
    scores = np.array([[0.1, 0.7, 0.2], [3.0, 1.0, 2.0]], dtype=np.float32)
    out = classify(scores, 2)
    assert out.shape == (2, 2)
    assert [s.decode() for s in out[0]] == ["0.700000:1", "0.200000:2"]
    assert [s.decode() for s in out[1]] == ["3.000000:0", "2.000000:2"]
    labelled = classify(scores[0], 5, ["cat", "dog", "eel"])  # k clamps to the class count; 1-D → [k]
    assert [s.decode() for s in labelled] == ["0.700000:1:dog", "0.200000:2:eel", "0.100000:0:cat"]


# ------------------------------------------------------------------ NaN / Infinity literals (Triton interop)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[NaN, Infinity, -Infinity]", [np.nan, np.inf, -np.inf]),  # what Triton's writer and tritonclient send
        ("[-NaN, Inf, -Inf, 1.5]", [np.nan, np.inf, -np.inf, 1.5]),  # RapidJSON's other accepted forms
        ("[[NaN, 2], [-Infinity, 4]]", [np.nan, 2, -np.inf, 4]),
    ],
)
def test_nan_and_infinity_literals_are_accepted_in_float_data(text, expected):
    for datatype in ("FP16", "FP32", "FP64"):
        body = b'{"id": "NaN Inf -NaN", "inputs": [{"name": "x", "datatype": "%s", "shape": [%d], "data": %s}]}' % (
            datatype.encode(),
            len(expected),
            text.encode(),
        )
        req = decode_request(body)
        assert req.id == "NaN Inf -NaN"  # literals inside strings are left alone
        x = req.inputs[0].data
        assert x.dtype == OIP_TO_NUMPY[datatype]
        np.testing.assert_array_equal(x, np.array(expected, dtype=x.dtype))


def test_perf_analyzer_style_random_bits_in_json():
    # perf_analyzer --input-tensor-format json sends random bytes as FP32 values: some are NaN or ±inf
    bits = np.random.default_rng(5).integers(0, 2**32, 3 * 32 * 32, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32).reshape(1, 3, 32, 32)
    x.flat[:3] = [np.nan, np.inf, -np.inf]
    import json

    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 3, 32, 32],
                    "datatype": "FP32",
                    "data": [float(v) for v in x.reshape(-1)],
                }
            ]
        }
    ).encode()
    got = decode_request(body).inputs[0].data
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize(
    "data,fragment",
    [
        ("[+Infinity]", "not valid JSON"),  # RapidJSON rejects a plus sign too
        ("[nan]", "not valid JSON"),
        ("[Infinit]", "not valid JSON"),
        ("[NaN", "not valid JSON"),
        ('[NaN], "x": }', "not valid JSON"),
    ],
)
def test_malformed_json_with_nan_is_400(data, fragment):
    body = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": %s}]}' % data.encode()
    with pytest.raises(BadRequest) as e:
        decode_request(body)
    assert e.value.status == 400 and fragment in e.value.message


def test_lone_surrogate_in_the_nan_fallback_is_400():
    body = b'{"id": "\\ud800", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [NaN]}]}'
    with pytest.raises(BadRequest, match="surrogate"):
        decode_request(body)
    body = b'{"id": "\\ud83d\\ude00", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [NaN]}]}'
    assert decode_request(body).id == "\U0001f600"  # a valid pair is fine


@pytest.mark.parametrize("datatype", ["INT64", "INT32", "UINT8", "UINT64", "BOOL"])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_integer_or_bool_data_is_400_not_a_cast(datatype, literal):
    body = b'{"inputs": [{"name": "x", "datatype": "%s", "shape": [2], "data": [1, %s]}]}' % (
        datatype.encode(),
        literal.encode(),
    )
    with pytest.raises(BadRequest) as e:
        decode_request(body)
    assert e.value.status == 400
    assert ("must be integers" if datatype != "BOOL" else "true/false") in e.value.message


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_non_finite_outputs_are_written_as_triton_literals(datatype):
    x = np.array([[1.5, np.nan, np.inf], [-np.inf, 0.0, -2.0]], dtype=OIP_TO_NUMPY[datatype])
    body, hl = encode_response("m", None, [OutputTensor("y", datatype, x)])
    assert hl is None
    assert b'"data":[1.5,NaN,Infinity,-Infinity,0.0,-2.0]' in body
    import json

    assert json.loads(body)["outputs"][0]["data"][2] == float("inf")  # what tritonclient (RapidJSON) reads too
    assert_same(decode_response(body)["y"], x)
    body, hl = encode_response("m", None, [OutputTensor("y", datatype, x, binary=True)])  # binary: raw bytes
    assert_same(decode_response(body, hl)["y"], x)


def test_finite_outputs_keep_the_fast_encoding():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    body, _ = encode_response("m", None, [OutputTensor("y", "FP32", x)])
    assert orjson.loads(body)["outputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
