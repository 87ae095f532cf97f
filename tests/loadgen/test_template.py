"""The http-json body template (loadgen.engine.template, template_syntax, jsonpointer): pure tests, no sockets."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest

from loadgen.engine import template as T
from loadgen.engine.jsonpointer import json_equal, parse_expect, parse_pointer, resolve_pointer
from loadgen.engine.payloads import PayloadError
from loadgen.engine.scenario import Scenario
from loadgen.engine.template import TemplateCodec, template_info
from loadgen.engine.template_syntax import Slot, parse_template

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"


def scenario(tmp_path: Path, text: str | bytes, name: str = "t.json", **kw: Any) -> SimpleNamespace:
    f = tmp_path / name
    f.write_bytes(text.encode() if isinstance(text, str) else text)
    base = dict(
        target="http://127.0.0.1:9/prefix",
        model="m",
        path="/predict",
        body_template=str(f),
        expect=None,
        batch=1,
        headers=[],
        shapes={"input": [1, 3, 4, 4]},
        input_data=None,
        input_order="sequential",
        images_dir=None,
        seed=1,
    )
    return SimpleNamespace(**{**base, **kw})


def body(codec: TemplateCodec) -> tuple[bytes, dict[str, str]]:
    parts, headers = codec.next_parts()
    return b"".join(parts), headers


# ---- syntax ---------------------------------------------------------------------------------------------------------
def test_parse_every_placeholder_kind_with_its_line():
    text = b'{"id": "{{id}}",\n "x": {{ tensor:x:0:nested:int64 }}, "n": {{batch}},\n "i": "{{image:b64}}"}\n'
    pieces = parse_template(text, "f.json")
    slots = [p for p in pieces if isinstance(p, Slot)]
    assert [(s.kind, s.name, s.encoding, s.dtype, s.where) for s in slots] == [
        ("id", "", "", None, "f.json:1"),
        ("tensor", "x:0", "nested", "INT64", "f.json:2"),  # a TF-style name with ':', the datatype in any case
        ("batch", "", "", None, "f.json:2"),
        ("image", "", "b64", None, "f.json:3"),
    ]
    assert pieces[-1] == b'"}'  # the file's final newline is dropped
    assert parse_template(b"{{image:raw}}\r\n")[-1] == b""


@pytest.mark.parametrize(
    "text, words",
    [
        (b'{\n "a": {{tensr:x:nested}}}', ["f.json:2", "unknown placeholder", "{{tensr:x:nested}}", "{{id}}"]),
        (b'{"a": {{tensor:x:json}}}', ["f.json:1", "ENCODING one of nested|flat|b64|raw"]),
        (b'{"a": {{tensor:x:FP32}}}', ["f.json:1", "tensor:NAME:ENCODING"]),
        (b'{"a": {{image:png}}}', ["unknown placeholder", "image:b64|raw"]),
        (b'{\n\n"a": {{id}', ["f.json:3", "without its closing"]),
    ],
)
def test_syntax_errors_name_file_line_and_the_fix(text, words):
    with pytest.raises(PayloadError) as e:
        parse_template(text, "f.json")
    for w in words:
        assert w in str(e.value)


# ---- rendering ------------------------------------------------------------------------------------------------------
def test_nested_flat_and_b64_show_the_same_tensor_with_its_exact_shape(tmp_path):
    sc = scenario(
        tmp_path,
        '{"n": {{tensor:input:nested}}, "f": {{tensor:input:flat}}, "b": "{{tensor:input:b64}}",'
        ' "k": {{tensor:k:nested:INT64}}, "m": {{tensor:m:flat:BOOL}}, "bs": {{batch}}}',
        shapes={"input": [1, 3, 4, 5], "k": [2, 2], "m": [3]},
        batch=4,
    )
    doc = orjson.loads(body(TemplateCodec(sc, None, seed=7))[0])
    nested = np.array(doc["n"], np.float32)
    assert nested.shape == (1, 3, 4, 5)
    assert (nested.ravel() == np.array(doc["f"], np.float32)).all()
    raw = np.frombuffer(base64.b64decode(doc["b"]), "<f4")
    assert (raw == nested.ravel()).all()  # b64 round-trips bit-exactly: little-endian FP32
    assert ((nested >= 0) & (nested < 1)).all()
    assert np.array(doc["k"]).shape == (2, 2) and all(isinstance(v, int) for row in doc["k"] for v in row)
    assert all(isinstance(v, bool) for v in doc["m"]) and doc["bs"] == 4


def test_values_are_seeded_and_rotate_through_the_pool(tmp_path):
    sc = scenario(tmp_path, '{"x": {{tensor:input:flat}}}')
    a, b = TemplateCodec(sc, None, seed=3, pool_size=4), TemplateCodec(sc, None, seed=3, pool_size=4)
    bodies = [body(a)[0] for _ in range(8)]
    assert bodies == [body(b)[0] for _ in range(8)]  # same seed, same bodies
    assert len(set(bodies[:4])) == 4 and bodies[4:] == bodies[:4]
    assert body(TemplateCodec(sc, None, seed=4))[0] != bodies[0]


def test_ids_are_unique_and_the_big_pieces_are_shared_not_copied(tmp_path):
    sc = scenario(
        tmp_path, '{"id": "{{id}}", "x": {{tensor:input:nested}}, "again": "{{id}}"}', shapes={"input": [64, 1024]}
    )
    codec = TemplateCodec(sc, None, seed=1, pool_size=2)
    ids, bigs = set(), []
    for _ in range(1000):
        parts, _ = codec.next_parts()
        doc = orjson.loads(b"".join(parts))
        assert doc["id"] == doc["again"]
        ids.add(doc["id"])
        bigs.append(next(p for p in parts if len(p) > T.SHARED_MIN_BYTES))
    assert len(ids) == 1000
    assert all(isinstance(p, memoryview) for p in bigs)
    assert bigs[0].obj is bigs[2].obj and bigs[0].obj is not bigs[1].obj  # entry k's one rendering, reused


def test_a_2mb_body_costs_microseconds_per_request(tmp_path):
    sc = scenario(tmp_path, '{"id": "{{id}}", "input": {{tensor:input:nested}}}', shapes={"input": [1, 3, 256, 256]})
    codec = TemplateCodec(sc, None, seed=1, pool_size=8)
    size = sum(len(p) for p in codec.next_parts()[0])
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        codec.next_parts()
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"\nnext_parts: {us:.2f} us per request for a {size / 1e6:.2f} MB body")  # information, not asserted
    assert size > 2_000_000


def test_pool_memory_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "POOL_BYTES", 3 * 1024 * 1024)
    sc = scenario(tmp_path, '{"x": {{tensor:input:flat}}}', shapes={"input": [1, 3, 224, 224]})
    codec = TemplateCodec(sc, None, seed=1)
    assert len(codec._entries) == 1  # one 1.7 MB body fits in 3 MB, two do not


def test_image_b64_is_a_jpeg_and_a_raw_image_is_the_whole_body(tmp_path):
    from PIL import Image

    sc = scenario(tmp_path, '{"a": "{{image:b64}}", "b": "{{image:b64}}"}')
    raw, headers = body(TemplateCodec(sc, None, seed=1, pool_size=2))
    doc = orjson.loads(raw)
    a, b = base64.b64decode(doc["a"]), base64.b64decode(doc["b"])
    assert a[:2] == b"\xff\xd8" and a != b  # each image placeholder takes the next image
    assert Image.open(io.BytesIO(a)).format == "JPEG" and headers == {"Content-Type": "application/json"}

    sc = scenario(tmp_path, "{{image:raw}}\n", name="ts.txt")
    raw, headers = body(TemplateCodec(sc, None, seed=1, pool_size=1))
    assert raw[:2] == b"\xff\xd8" and raw.rstrip(b"\n") == raw  # exactly the image
    assert Image.open(io.BytesIO(raw)).format == "JPEG" and headers == {"Content-Type": "image/jpeg"}

    sc.headers = ["content-type: image/jpeg"]  # the user's Content-Type wins: none added
    assert body(TemplateCodec(sc, None, seed=1, pool_size=1))[1] == {}


def test_images_from_a_directory(tmp_path):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(d / "a.png")
    sc = scenario(tmp_path, "{{image:raw}}", images_dir=str(d))
    raw, headers = body(TemplateCodec(sc, None, seed=1))
    assert raw == (d / "a.png").read_bytes() and headers == {"Content-Type": "image/png"}
    sc = scenario(tmp_path, '{"x": {{tensor:input:flat}}}', images_dir=str(d))
    with pytest.raises(PayloadError, match="has no"):
        TemplateCodec(sc, None, seed=1)


def test_raw_tensor_body_and_content_types(tmp_path):
    sc = scenario(tmp_path, "{{tensor:input:raw:UINT8}}", name="t.bin", shapes={"input": [2, 3]})
    raw, headers = body(TemplateCodec(sc, None, seed=1))
    assert len(raw) == 6 and headers == {"Content-Type": "application/octet-stream"}
    sc = scenario(tmp_path, '{"x": {{tensor:input:flat}}}', name="t.txt")
    assert body(TemplateCodec(sc, None, seed=1))[1] == {"Content-Type": "application/json"}


def test_missing_shape_and_conflicting_datatypes_say_the_fix(tmp_path):
    sc = scenario(tmp_path, '{\n"x": {{tensor:image:nested}}}', shapes={"input": [1]})
    with pytest.raises(PayloadError) as e:
        TemplateCodec(sc, None, seed=1)
    assert "t.json:2" in str(e.value) and "--shape image:" in str(e.value) and "['input']" in str(e.value)
    sc = scenario(tmp_path, "[{{tensor:input:nested:INT64}},\n{{tensor:input:flat:FP16}}]")
    with pytest.raises(PayloadError, match=r"t.json:2: tensor 'input' is FP16 here, INT64 at .*t.json:1"):
        TemplateCodec(sc, None, seed=1)


def test_a_json_template_must_parse_once_filled(tmp_path):
    sc = scenario(tmp_path, '{"x": 1,\n "id": {{id}}}')
    with pytest.raises(PayloadError) as e:
        TemplateCodec(sc, None, seed=1).check_json()
    assert "t.json:2" in str(e.value) and '"{{id}}"' in str(e.value)
    sc = scenario(tmp_path, "{{image:raw}}")  # not JSON: not checked
    TemplateCodec(sc, None, seed=1, pool_size=1).check_json()


def test_path_keeps_the_targets_prefix_and_a_real_scenario_builds(tmp_path):
    f = EXAMPLES / "fastapi.json"
    sc = Scenario(
        target="http://127.0.0.1:9/serving",
        model="m",
        mode="closed",
        users=1,
        protocol="http-json",
        path="/predict",
        body_template=str(f),
        shapes={"input": [1, 3, 8, 8]},
        expect="/output",
    )
    codec = TemplateCodec(sc, None, seed=1)
    assert codec.path == "/serving/predict"
    assert (codec.allow_empty, codec.check_every) == (False, True)
    inputs = codec.describe_inputs()
    assert inputs == [{"name": "input", "datatype": "FP32", "shape": [1, 3, 8, 8], "encodings": ["nested"]}]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir()))
def test_every_example_template_renders(tmp_path, name):
    sc = scenario(tmp_path, (EXAMPLES / name).read_bytes(), name=name, shapes={"input": [1, 3, 8, 8]})
    codec = TemplateCodec(sc, None, seed=1, pool_size=1)
    codec.check_json()
    raw, headers = body(codec)
    assert raw and headers["Content-Type"] in ("application/json", "image/jpeg")


# ---- --input-data ---------------------------------------------------------------------------------------------------
def test_values_from_input_data(tmp_path):
    data = {
        "data": [
            {"input": {"content": [1, 2, 3, 4], "shape": [2, 2]}},
            {"input": {"content": [5, 6, 7, 8], "shape": [2, 2]}},
        ]
    }
    (tmp_path / "d.json").write_text(json.dumps(data))
    sc = scenario(tmp_path, '{"x": {{tensor:input:nested}}}', input_data=str(tmp_path / "d.json"), shapes={})
    codec = TemplateCodec(sc, None, seed=1)
    assert [orjson.loads(body(codec)[0])["x"] for _ in range(3)] == [
        [[1.0, 2.0], [3.0, 4.0]],
        [[5.0, 6.0], [7.0, 8.0]],
        [[1.0, 2.0], [3.0, 4.0]],
    ]
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int64).reshape(2, 3))  # .npy: the template's only tensor
    sc = scenario(tmp_path, '{"x": {{tensor:v:flat:INT64}}}', input_data=str(tmp_path / "a.npy"), shapes={})
    codec = TemplateCodec(sc, None, seed=1)
    assert orjson.loads(body(codec)[0]) == {"x": [0, 1, 2, 3, 4, 5]} and codec.shapes == {"v": [2, 3]}
    sc = scenario(tmp_path, '{"x": {{tensor:other:flat}}}', input_data=str(tmp_path / "d.json"), shapes={})
    sc.body_template = str(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"x": {{tensor:other:flat}}, "y": {{tensor:input:flat}}}')
    with pytest.raises(PayloadError, match="entry 0, tensor 'other': missing"):
        TemplateCodec(sc, None, seed=1)


# ---- answers --------------------------------------------------------------------------------------------------------
def test_pointer_parsing_with_escapes():
    assert parse_pointer("") == ()
    assert parse_pointer("/a~1b/c~0d/~01/0/") == ("a/b", "c~d", "~1", "0", "")
    for bad, words in (("a/b", "starts with '/'"), ("/a~2", "followed by 0 or 1"), ("/a~", "followed by 0 or 1")):
        with pytest.raises(PayloadError, match=words):
            parse_pointer(bad)


def test_pointer_resolution_rfc6901_examples():
    doc = json.loads(
        '{"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\\\j": 5, "k\\"l": 6, " ": 7, "m~n": 8}'
    )
    cases = {"": doc, "/foo": ["bar", "baz"], "/foo/0": "bar", "/": 0, "/a~1b": 1, "/c%d": 2, "/e^f": 3, "/g|h": 4}
    cases.update({"/i\\j": 5, '/k"l': 6, "/ ": 7, "/m~0n": 8})
    for pointer, want in cases.items():
        assert resolve_pointer(doc, parse_pointer(pointer)) == want, pointer


@pytest.mark.parametrize(
    "spec, answer, found",
    [
        ("/output", {"output": [1]}, None),
        ("/output/0/1", {"output": [[0.1, 0.9]]}, None),
        ('/label="cat"', {"label": "cat"}, None),
        ("/n=1", {"n": 1.0}, None),  # JSON numbers compare by value
        ("/ok=true", {"ok": 1}, "/ok is 1, expected true"),  # a boolean is not a number
        ('/label="cat"', {"label": "dog"}, '/label is "dog", expected "cat"'),
        ("/outputs", {"output": [1], "id": "x"}, "the answer has no member 'outputs' (it has ['id', 'output'])"),
        ("/output/2", {"output": [1, 2]}, "/output is an array of 2, no index 2"),
        ("/output/01", {"output": [1, 2]}, "'01' is not an index"),
        ("/output/-", {"output": [1, 2]}, "'-' is not an index"),
        ("/output/x", {"output": 3}, "/output is 3, not an object or array"),
        ("/a~1b", {"a/b": 1}, None),
        ('/p={"k":[1,2.0]}', {"p": {"k": [1.0, 2]}}, None),
    ],
)
def test_expect_checks_and_names_what_it_found(spec, answer, found):
    problem = parse_expect(spec).problem(answer)
    if found is None:
        assert problem is None
    else:
        assert problem is not None and found in problem and f"--expect {spec}" in problem


def test_expect_value_must_be_json():
    with pytest.raises(PayloadError, match="must be JSON"):
        parse_expect("/label=cat")
    e = parse_expect('/a="b=1"')  # split at the first '='
    assert (e.tokens, e.value) == (("a",), "b=1") and parse_expect("/n=null").has_value


def test_json_equal():
    assert json_equal(1, 1.0) and json_equal({"a": [1, None]}, {"a": [1.0, None]})
    assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal("1", 1)
    assert not json_equal([1], [1, 2]) and not json_equal({"a": 1}, {"a": 1, "b": 2})


def test_judge_and_success(tmp_path):
    sc = scenario(tmp_path, '{"x": {{tensor:input:flat}}}', expect="/output")
    codec = TemplateCodec(sc, None, seed=1, pool_size=1)
    assert codec.judge(b'{"output": 1}', lambda _h: None) is None
    code, msg = codec.judge(b'{"outputs": 1}', lambda _h: None)
    assert code == "unexpected_answer" and "/output" in msg and "outputs" in msg
    code, msg = codec.judge(b"<html>oops</html>", lambda _h: None)
    assert code == "InvalidResponse" and "not JSON" in msg and "<html>" in msg
    assert codec.check_every and not codec.allow_empty
    big = b'{"output": [' + b",".join([b"0.125"] * 20000) + b"]}"
    assert codec.judge(big, lambda _h: None) is None and not codec.check_every  # big answers: sampled
    assert [codec.success(s) for s in (199, 200, 201, 204, 299, 300, 401, 500)] == [False] + [True] * 4 + [False] * 3
    plain = TemplateCodec(scenario(tmp_path, '{"x": {{tensor:input:flat}}}'), None, seed=1, pool_size=1)
    assert plain.allow_empty and not plain.check_every and plain.judge(b"not json", lambda _h: None) is None


def test_template_info_validates_the_template_before_any_request(tmp_path):
    from loadgen.engine.target import Target

    sc = scenario(tmp_path, '{"x": {{tensor:image:nested}}}')  # no --shape for 'image': no request is sent
    with pytest.raises(PayloadError, match="--shape image:"):
        template_info(sc, Target(url=sc.target), 1.0)
