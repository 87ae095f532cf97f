"""Pure tests of --input-data (loadgen.engine.inputs): perf_analyzer's JSON format in all its forms, .npy/.npz, the
checks against the model's signature (names, datatypes, shapes with and without the batch dimension), the entry
order, and the comparison of outputs with validation_data. No sockets."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from loadgen.engine.inputs import PayloadError, conform, entry_sequence, read_input_file, signature
from loadgen.engine.tensors import TOLERANCE, compare

BATCHED = {
    "server": {},
    "metadata": {
        "name": "m",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 2, 2]},
            {"name": "ids", "datatype": "INT64", "shape": [-1, -1]},
            {"name": "text", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}],
    },
    "config": {"max_batch_size": 8},
}
SINGLE = {
    "server": {},
    "metadata": {
        "name": "s",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "y", "datatype": "INT32", "shape": [-1, 2]}],
    },
    "config": {"max_batch_size": 4},
}
UNBATCHED = {
    "server": {},
    "metadata": {
        "name": "u",
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 3]}],
        "outputs": [{"name": "y", "datatype": "INT32", "shape": [2]}],
    },
    "config": {"max_batch_size": 0},
}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _write(tmp_path, doc, name="d.json"):
    f = tmp_path / name
    f.write_text(json.dumps(doc))
    return str(f)


def _conform(tmp_path, doc, info=BATCHED, shapes=None):
    return conform(read_input_file(_write(tmp_path, doc)), signature(info), shapes)


ENTRY = {"x": [1, 2, 3, 4], "ids": {"content": [7, 8, 9], "shape": [3]}, "text": ["héllo"]}


# ---- reading: every form of perf_analyzer's format ----------------------------------------------------------------


def test_flat_values_several_inputs_and_entries(tmp_path):
    d = read_input_file(_write(tmp_path, {"data": [ENTRY, {**ENTRY, "x": [5.5, 6, 7, 8]}]}))
    assert d.kind == "json" and len(d.entries) == 2 and d.validation is None
    e0 = d.entries[0]
    assert e0["x"].dtype == np.int64 and e0["x"].tolist() == [1, 2, 3, 4]  # typed by the text, not yet by the model
    assert d.entries[1]["x"].dtype == np.float64
    assert e0["ids"].shape == (3,) and e0["text"].dtype == object and e0["text"][0] == "héllo".encode()
    c = _conform(tmp_path, {"data": [ENTRY, {**ENTRY, "x": [5.5, 6, 7, 8]}]})
    assert c.names == ["x", "ids", "text"]
    x, ids, text = c.entries[0]
    assert x.dtype == np.float32 and x.shape == (2, 2)  # item shape: the batch dimension excluded
    assert ids.dtype == np.int64 and ids.tolist() == [7, 8, 9]
    assert text.tolist() == ["héllo".encode()]  # the model's item shape [1]
    assert c.entries[1][0].ravel().tolist() == [5.5, 6, 7, 8]


def test_b64_numeric_and_bytes_and_content_b64_with_shape(tmp_path):
    floats = np.array([0.5, -1.25, 3.0, 1e-3], "<f4")
    strings = b"".join(struct.pack("<I", len(s)) + s for s in [b"ab\x00c"])
    doc = {
        "data": [
            {
                "x": {"b64": _b64(floats.tobytes())},
                "ids": {"content": {"b64": _b64(np.array([1, 2], "<i8").tobytes())}, "shape": [2]},
                "text": {"b64": _b64(strings)},
            }
        ]
    }
    d = read_input_file(_write(tmp_path, doc))
    assert d.entries[0]["x"].dtype == np.uint8  # raw bytes until the model's datatype is known
    x, ids, text = _conform(tmp_path, doc).entries[0]
    assert x.ravel().tolist() == floats.tolist() and x.dtype == np.float32
    assert ids.tolist() == [1, 2]
    assert text.ravel().tolist() == [b"ab\x00c"]  # BYTES b64 is the serialized tensor (4-byte lengths)
    bad = {"data": [{**ENTRY, "x": {"b64": _b64(b"123")}}]}
    with pytest.raises(PayloadError, match=r"entry 0, input 'x': 3 b64 bytes are not a whole number of FP32"):
        _conform(tmp_path, bad)
    with pytest.raises(PayloadError, match="invalid base64"):
        read_input_file(_write(tmp_path, {"data": [{"x": {"b64": "!!"}}]}))
    cut = {"data": [{**ENTRY, "text": {"b64": _b64(struct.pack("<I", 9) + b"abc")}}]}
    with pytest.raises(PayloadError, match="input 'text': serialized BYTES element of 9 bytes runs past"):
        _conform(tmp_path, cut)


def test_nested_lists_give_their_shape(tmp_path):
    c = _conform(tmp_path, {"data": [{**ENTRY, "x": [[1, 2], [3, 4]]}]})
    assert c.entries[0][0].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(PayloadError, match="ragged"):
        read_input_file(_write(tmp_path, {"data": [{"x": [[1, 2], [3]]}]}))


def test_validation_data_aligned(tmp_path):
    doc = {"data": [ENTRY, ENTRY], "validation_data": [{"logits": [0.1, 0.2, 0.3]}, {}]}
    d = read_input_file(_write(tmp_path, doc))
    assert d.validation is not None and d.validation[0]["logits"].tolist() == [0.1, 0.2, 0.3]
    c = _conform(tmp_path, doc)
    assert c.expected is not None and c.expected[0]["logits"].dtype == np.float32 and c.expected[1] == {}
    with pytest.raises(PayloadError, match="validation_data.*align"):
        read_input_file(_write(tmp_path, {"data": [ENTRY, ENTRY], "validation_data": [{}]}))
    with pytest.raises(PayloadError, match=r"validation_data entry 0, output 'nope': not an output of model m"):
        _conform(tmp_path, {"data": [ENTRY], "validation_data": [{"nope": [1]}]})
    with pytest.raises(
        PayloadError, match=r"validation_data entry 0, output 'logits': 2 values do not fill shape \[3\]"
    ):
        _conform(tmp_path, {"data": [ENTRY], "validation_data": [{"logits": [1.0, 2.0]}]})


def test_streams_use_the_first_one(tmp_path):
    doc = {"data": [[ENTRY, ENTRY, ENTRY], [ENTRY]], "validation_data": [[{}, {}, {}], [{}]]}
    d = read_input_file(_write(tmp_path, doc))
    assert d.streams == 2 and len(d.entries) == 3 and len(d.validation or []) == 3
    with pytest.raises(PayloadError, match="mixes entries"):
        read_input_file(_write(tmp_path, {"data": [[ENTRY], ENTRY]}))


def test_file_level_errors(tmp_path):
    with pytest.raises(PayloadError, match=r"--input-data .*missing.json: cannot read it"):
        read_input_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(PayloadError, match=r"bad.json: not valid JSON"):
        read_input_file(str(bad))
    with pytest.raises(PayloadError, match=r'expected an object with a "data" list'):
        read_input_file(_write(tmp_path, [ENTRY]))
    with pytest.raises(PayloadError, match='"data" is empty'):
        read_input_file(_write(tmp_path, {"data": []}))
    with pytest.raises(PayloadError, match="directory"):
        read_input_file(str(tmp_path))
    with pytest.raises(PayloadError, match=r"data entry 0, tensor 'x': values must be all numbers"):
        read_input_file(_write(tmp_path, {"data": [{"x": [1, "a"]}]}))
    with pytest.raises(PayloadError, match='needs "content"'):
        read_input_file(_write(tmp_path, {"data": [{"x": {"shape": [2]}}]}))
    # perf_analyzer allows a "model" key holding a string in an entry
    assert "model" not in read_input_file(_write(tmp_path, {"data": [{**ENTRY, "model": "m"}]})).entries[0]


# ---- checks against the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**ENTRY, "y": [1]}, r"entry 0: input 'y' is not an input of model m"),
        ({"x": [1, 2, 3, 4], "text": ["a"]}, r"entry 0: input 'ids' of model m is missing"),
        ({**ENTRY, "ids": {"content": [1.5, 2], "shape": [2]}}, r"input 'ids': the model's input is INT64, got float"),
        ({**ENTRY, "ids": {"content": [2**70], "shape": [1]}}, r"outside 64 bits"),
        ({**ENTRY, "x": ["a", "b", "c", "d"]}, r"input 'x': the model's input is FP32, got strings"),
        ({**ENTRY, "x": [16777217, 0, 0, 0]}, r"not exactly representable as FP32"),
        ({**ENTRY, "x": [1e300, 0.0, 0.0, 0.0]}, r"overflows FP32"),
        ({**ENTRY, "x": [True, False, True, False]}, r"got booleans"),
        ({**ENTRY, "text": [1]}, r"input 'text': the model's BYTES input takes strings"),
        ({**ENTRY, "x": [1, 2, 3]}, r"input 'x': 3 values do not fill shape \[2, 2\] \(4 expected; without the batch"),
        (
            {**ENTRY, "x": {"content": [1, 2, 3, 4], "shape": [1, 2, 2]}},
            r"input 'x': its \"shape\" \[1, 2, 2\] does not fit the model's \[2, 2\] \(without the batch dimension: "
            r"model m batches \(max_batch_size 8\)",
        ),
        (
            {**ENTRY, "ids": {"content": [1, 2, 3, 4], "shape": [2, 2]}},
            r"input 'ids': its \"shape\" \[2, 2\] does not fit the model's \[-1\]",
        ),
    ],
)
def test_mismatches_name_file_entry_input_and_expectation(tmp_path, entry, message):
    with pytest.raises(PayloadError, match=r"--input-data .*d.json: (data )?entry 0") as e:
        _conform(tmp_path, {"data": [entry]})
    assert e.match(message)


def test_lossless_json_casts(tmp_path):
    x = _conform(tmp_path, {"data": [{**ENTRY, "x": [1, 2, 16777216, -3]}]}).entries[0][0]
    assert x.dtype == np.float32 and x.ravel().tolist() == [1, 2, 16777216, -3]  # integers exactly representable
    info = {
        "server": {},
        "metadata": {
            "name": "b",
            "inputs": [
                {"name": "flag", "datatype": "BOOL", "shape": [2]},
                {"name": "u", "datatype": "UINT8", "shape": [2]},
            ],
            "outputs": [],
        },
        "config": {"max_batch_size": 0},
    }
    c = _conform(tmp_path, {"data": [{"flag": [1, 0], "u": [0, 255]}]}, info)
    assert c.entries[0][0].tolist() == [True, False] and c.entries[0][1].dtype == np.uint8
    with pytest.raises(PayloadError, match=r"input 'u': value 256 is outside UINT8"):
        _conform(tmp_path, {"data": [{"flag": [True, False], "u": [0, 256]}]}, info)
    with pytest.raises(PayloadError, match=r"input 'flag': the model's input is BOOL, got integer"):
        _conform(tmp_path, {"data": [{"flag": [2, 0], "u": [0, 1]}]}, info)


def test_variable_dims_take_the_shape_field_then_shape_flag_then_the_count(tmp_path):
    info = {
        "server": {},
        "metadata": {
            "name": "v",
            "inputs": [{"name": "img", "datatype": "FP32", "shape": [-1, 3, -1, -1]}],
            "outputs": [],
        },
        "config": {"max_batch_size": 2},
    }
    vals = list(range(12))
    c = _conform(tmp_path, {"data": [{"img": {"content": vals, "shape": [3, 2, 2]}}]}, info)
    assert c.entries[0][0].shape == (3, 2, 2)
    c = _conform(tmp_path, {"data": [{"img": vals}]}, info, shapes={"img": [3, 1, 4]})
    assert c.entries[0][0].shape == (3, 1, 4)
    with pytest.raises(PayloadError, match=r"variable dimensions \[3, -1, -1\].*--shape img:3,N,N"):
        _conform(tmp_path, {"data": [{"img": vals}]}, info)
    with pytest.raises(PayloadError, match=r"--shape \[2, 3, 2, 2\] does not fit the model's \[3, -1, -1\]"):
        _conform(tmp_path, {"data": [{"img": vals}]}, info, shapes={"img": [2, 3, 2, 2]})  # batch dim included
    # one variable dimension: inferred from the number of values (an inferload extension)
    assert _conform(tmp_path, {"data": [ENTRY]}).entries[0][1].shape == (3,)


def test_unbatched_models_take_the_full_shape(tmp_path):
    c = _conform(tmp_path, {"data": [{"x": [1, 2, 3, 4, 5, 6]}]}, UNBATCHED)
    assert c.entries[0][0].shape == (2, 3) and c.entries[0][0].dtype == np.int32
    with pytest.raises(PayloadError, match=r"model u does not batch: its full shape"):
        _conform(tmp_path, {"data": [{"x": {"content": [1, 2, 3], "shape": [3]}}]}, UNBATCHED)


def test_optional_inputs(tmp_path):
    info = json.loads(json.dumps(BATCHED))
    info["config"]["input"] = [{"name": "text", "optional": True, "dims": [1]}]
    c = _conform(tmp_path, {"data": [{"x": [1, 2, 3, 4], "ids": [1]}]}, info)
    assert c.names == ["x", "ids"]
    with pytest.raises(PayloadError, match="in every entry or in none"):
        _conform(tmp_path, {"data": [{"x": [1, 2, 3, 4], "ids": [1]}, ENTRY]}, info)


# ---- .npy / .npz ----------------------------------------------------------------------------------------------------


def test_npy_rows_are_entries_and_item_arrays_one_entry(tmp_path):
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "rows.npy", rows)
    d = read_input_file(str(tmp_path / "rows.npy"))
    assert d.kind == "npy" and list(d.entries[0]) == [""]
    c = conform(d, signature(SINGLE))
    assert len(c.entries) == 4 and c.entries[2][0].tolist() == [6, 7, 8]
    np.save(tmp_path / "one.npy", rows[0])
    assert len(conform(read_input_file(str(tmp_path / "one.npy")), signature(SINGLE)).entries) == 1
    np.save(tmp_path / "bad.npy", rows.reshape(2, 2, 3))
    with pytest.raises(PayloadError, match=r"bad.npy: array 'x' has shape \[2, 2, 3\]; input 'x' takes items"):
        conform(read_input_file(str(tmp_path / "bad.npy")), signature(SINGLE))
    with pytest.raises(PayloadError, match=r"a .npy feeds a model's only input; model m has"):
        conform(read_input_file(str(tmp_path / "rows.npy")), signature(BATCHED))


def test_npy_casts_only_without_loss(tmp_path):
    np.save(tmp_path / "f64.npy", np.array([[0.5, 1.0, 2.0]]))
    assert conform(read_input_file(str(tmp_path / "f64.npy")), signature(SINGLE)).entries[0][0].dtype == np.float32
    np.save(tmp_path / "lossy.npy", np.array([[0.1, 1.0, 2.0]]))
    with pytest.raises(PayloadError, match=r"float64 value 0.1 changes as FP32.*save the array as float32"):
        conform(read_input_file(str(tmp_path / "lossy.npy")), signature(SINGLE))


def test_npz_keys_are_input_names(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        x=np.zeros((2, 2, 2), np.float32),
        ids=np.array([[1, 2], [3, 4]]),
        text=np.array([["a"], ["b"]]),
    )
    c = conform(read_input_file(str(tmp_path / "d.npz")), signature(BATCHED))
    assert len(c.entries) == 2 and c.entries[1][1].tolist() == [3, 4] and c.entries[1][2].tolist() == [b"b"]
    np.savez(
        tmp_path / "odd.npz", x=np.zeros((2, 2, 2), np.float32), ids=np.zeros((3, 1), np.int64), text=np.array([["a"]])
    )
    with pytest.raises(PayloadError, match="different numbers of items"):
        conform(read_input_file(str(tmp_path / "odd.npz")), signature(BATCHED))


def test_read_input_file_with_datatypes_for_a_template(tmp_path):
    doc = {"data": [{"x": {"b64": _b64(np.array([1, 2, 3, 4], "<f4").tobytes())}, "n": [1, 2, 3, 4]}]}
    d = read_input_file(_write(tmp_path, doc), datatypes={"x": "FP32", "n": "INT32"}, shapes={"x": [2, 2]})
    assert d.entries[0]["x"].dtype == np.float32 and d.entries[0]["x"].shape == (2, 2)
    assert d.entries[0]["n"].dtype == np.int32 and d.entries[0]["n"].shape == (4,)


# ---- order and comparison -------------------------------------------------------------------------------------------


def test_entry_sequence():
    assert entry_sequence(3, "sequential", 1).tolist() == [0, 1, 2]
    r = entry_sequence(5, "random", 7, min_length=20)
    assert len(r) == 20 and r.tolist() == entry_sequence(5, "random", 7, min_length=20).tolist()
    assert all(sorted(r[i : i + 5].tolist()) == [0, 1, 2, 3, 4] for i in range(0, 20, 5))  # each entry once a round
    assert r.tolist() != entry_sequence(5, "random", 8, min_length=20).tolist()


def test_compare_tolerances():
    rtol, atol = TOLERANCE["FP32"]
    e = np.array([1.0, 0.0, np.nan], np.float32)
    assert compare("y", "FP32", np.array([1.0 + 0.5 * rtol, 0.5 * atol, np.nan]), e) is None
    msg = compare("y", "FP32", np.array([1.0 + 3 * rtol, 0.0, np.nan]), e)
    assert msg and msg.startswith("1 of 3 values differ (first at flat index 0: got 1.00003, expected 1")
    assert "rtol 1e-05, atol 1e-06" in msg
    assert compare("y", "INT32", np.array([1, 2]), np.array([1, 3], np.int32)) is not None
    assert compare("y", "BYTES", np.array([b"a"], object), np.array([b"a"], object)) is None
    assert compare("y", "BYTES", np.array([b"a"], object), np.array([b"b"], object)) is not None
    assert compare("y", "FP32", np.zeros(2), np.zeros(3, np.float32)) == "2 values, expected 3"
