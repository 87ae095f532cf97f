"""Pure tests of request bodies and answer checks (no sockets)."""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from loadgen.engine.payloads import PayloadError, PayloadPool, input_specs, synthetic_images
from loadgen.engine.scenario import Scenario, ScenarioError

INFO = {
    "server": {"name": "x"},
    "metadata": {
        "name": "m",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 4, 4]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
    },
    "config": {"max_batch_size": 8},
}
IMG_INFO = {
    "server": {},
    "metadata": {
        "name": "mj",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
    },
    "config": {"max_batch_size": 8},
}


def _sc(**kw) -> Scenario:
    return Scenario(**{"target": "http://127.0.0.1:1", "model": "m", "mode": "closed", "users": 1, **kw})


def test_binary_body_layout_and_uniqueness():
    pool = PayloadPool(_sc(batch=2), INFO, seed=1)
    bodies = set()
    for _ in range(200):
        body, headers = pool.next()
        hl = int(headers["Inference-Header-Content-Length"])
        head = json.loads(body[:hl])
        inp = head["inputs"][0]
        assert inp["shape"] == [2, 3, 4, 4] and inp["datatype"] == "FP32"
        assert inp["parameters"]["binary_data_size"] == len(body) - hl == 2 * 48 * 4
        assert head["parameters"]["binary_data_output"] is True
        bodies.add(body[hl:])
    assert len(bodies) == 200  # no two tensors alike


def test_json_body_parses():
    pool = PayloadPool(_sc(payload="json"), INFO, seed=1)
    b1, h = pool.next()
    b2, _ = pool.next()
    d1, d2 = json.loads(b1), json.loads(b2)
    assert h["Content-Type"] == "application/json"
    assert len(d1["inputs"][0]["data"]) == 48 and d1["inputs"][0]["shape"] == [1, 3, 4, 4]
    assert d1["inputs"][0]["data"] != d2["inputs"][0]["data"] and d1["id"] != d2["id"]


def test_image_body_and_synthetic_images():
    imgs = synthetic_images(4, seed=3)
    assert imgs == synthetic_images(4, seed=3)  # seeded
    sizes = {Image.open(io.BytesIO(b)).size for b in imgs}
    assert len(sizes) == 4
    pool = PayloadPool(_sc(payload="image", batch=3, model="mj"), IMG_INFO, seed=1)
    body, headers = pool.next()
    hl = int(headers["Inference-Header-Content-Length"])
    head = json.loads(body[:hl])
    assert head["inputs"][0]["shape"] == [3] and head["inputs"][0]["datatype"] == "BYTES"
    blob, off, n = body[hl:], 0, 0
    while off < len(blob):
        (ln,) = struct.unpack_from("<I", blob, off)
        img = Image.open(io.BytesIO(blob[off + 4 : off + 4 + ln]))
        img.load()  # the JPEG comment segment keeps it a valid image
        off += 4 + ln
        n += 1
    assert n == 3


def test_shape_and_kind_errors():
    with pytest.raises(PayloadError, match="BYTES"):
        PayloadPool(_sc(payload="image"), INFO, seed=1)
    with pytest.raises(PayloadError, match="payload image"):
        PayloadPool(_sc(), IMG_INFO, seed=1)
    with pytest.raises(PayloadError, match="max_batch_size"):
        input_specs(INFO, 9)


def test_check_answers():
    pool = PayloadPool(_sc(batch=2), INFO, seed=1)
    raw = np.zeros(20, np.float32).tobytes()
    head = json.dumps(
        {
            "outputs": [
                {"name": "logits", "datatype": "FP32", "shape": [2, 10], "parameters": {"binary_data_size": len(raw)}}
            ]
        }
    ).encode()
    assert pool.check(head + raw, str(len(head))) is None
    assert "binary outputs declare" in pool.check(head + raw[:-4], str(len(head)))
    bad = json.dumps({"outputs": [{"name": "other", "shape": [2, 10], "data": [0] * 20}]}).encode()
    assert "lacks outputs" in pool.check(bad, None)
    assert "not OIP JSON" in pool.check(b"<html>", None)
    wrong_batch = json.dumps({"outputs": [{"name": "logits", "shape": [1, 10], "data": [0] * 10}]}).encode()
    assert "expected batch 2" in pool.check(wrong_batch, None)


def test_scenario_toml_and_validation(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[scenario]\ntarget = "http://127.0.0.1:9"\nmodel = "m"\nrate_rps = 50\nduration_s = 4\n')
    sc = Scenario.from_toml(f, batch=2, duration_s=None)
    assert sc.mode == "open" and sc.rate_rps == 50 and sc.batch == 2 and sc.duration_s == 4
    with pytest.raises(ScenarioError, match="s.toml: field"):
        Scenario.from_toml(f, batch=0)
    with pytest.raises(ScenarioError, match="rate_rps"):
        Scenario.build({"target": "http://x", "model": "m", "mode": "open"})


def test_response_check_accepts_tritons_non_finite_literals():
    from loadgen.engine.jsonpointer import loads_answer  # the one lenient reader of answers (OIP and http-json)

    head = loads_answer(
        b'{"outputs": [{"name": "logits", "shape": [1, 3], "datatype": "FP32", "data": [NaN, Infinity, -Infinity]}]}'
    )
    d = head["outputs"][0]["data"]
    assert d[0] != d[0] and d[1] == float("inf") and d[2] == float("-inf")
    with pytest.raises(ValueError):
        loads_answer(b'{"outputs": [oops]}')


# ---- your own inputs, dynamic shapes, BYTES, outputs, validation ----------------------------------------------------

TEXT_INFO = {
    "server": {},
    "metadata": {
        "name": "t",
        "inputs": [
            {"name": "ids", "datatype": "INT64", "shape": [-1, -1]},
            {"name": "text", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "label", "datatype": "BYTES", "shape": [-1, 1]},
        ],
    },
    "config": {"max_batch_size": 8},
}


def _data(tmp_path, doc) -> str:
    f = tmp_path / "data.json"
    f.write_text(json.dumps(doc))
    return str(f)


def _split(body: bytes, headers: dict) -> tuple[dict, dict]:
    """(JSON header, name -> flat values) of a request, binary or JSON."""
    if "Inference-Header-Content-Length" not in headers:
        head = json.loads(body)
        return head, {i["name"]: i["data"] for i in head["inputs"]}
    hl = int(headers["Inference-Header-Content-Length"])
    head, off, out = json.loads(body[:hl]), hl, {}
    for i in head["inputs"]:
        size = i["parameters"]["binary_data_size"]
        chunk, off = body[off : off + size], off + size
        if i["datatype"] == "BYTES":
            vals, p = [], 0
            while p < len(chunk):
                (k,) = struct.unpack_from("<I", chunk, p)
                vals.append(chunk[p + 4 : p + 4 + k].decode("utf-8", "replace"))
                p += 4 + k
            out[i["name"]] = vals
        else:
            out[i["name"]] = np.frombuffer(chunk, {"INT64": "<i8", "FP32": "<f4"}[i["datatype"]]).tolist()
    return head, out


ENTRIES = [{"ids": [k, k + 1, k + 2], "text": [f"entry {k} ü"]} for k in range(5)]


@pytest.mark.parametrize("payload", ["binary", "json"])
def test_input_data_is_sent_exactly_in_order_with_batches_of_consecutive_entries(tmp_path, payload):
    pool = PayloadPool(_sc(payload=payload, batch=2, input_data=_data(tmp_path, {"data": ENTRIES})), TEXT_INFO, seed=1)
    seen = []
    for n in range(5):
        head, values = _split(*pool.next())
        assert head["id"] == str(n)
        shapes = {i["name"]: i["shape"] for i in head["inputs"]}
        assert shapes == {"ids": [2, 3], "text": [2, 1]}
        seen.append((values["ids"], values["text"]))
    # perf_analyzer's rule: request n carries entries n*b .. n*b+b-1 (mod E), values untouched (no counter patched in)
    for n, (ids, text) in enumerate(seen):
        ks = [(2 * n) % 5, (2 * n + 1) % 5]
        assert ids == [v for k in ks for v in ENTRIES[k]["ids"]]
        assert text == [f"entry {k} ü" for k in ks]


def test_random_order_is_seeded_and_covers_every_entry(tmp_path):
    f = _data(tmp_path, {"data": ENTRIES})
    firsts = []
    for seed in (1, 1, 2):
        pool = PayloadPool(_sc(input_data=f, input_order="random", seed=seed), TEXT_INFO, seed=seed)
        firsts.append([_split(*pool.next())[1]["ids"][0] for _ in range(10)])
    assert firsts[0] == firsts[1] != firsts[2]
    assert sorted(firsts[0][:5]) == [0, 1, 2, 3, 4]


def test_zero_copy_bodies_share_the_encoded_tensors(tmp_path):
    big = np.arange(40000, dtype=np.float32)  # 160 KB raw, more as JSON: above coalesce's small-part threshold
    np.save(tmp_path / "big.npy", big[None, :])
    info = {
        "server": {},
        "metadata": {
            "name": "b",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 40000]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
        },
        "config": {"max_batch_size": 4},
    }
    for payload in ("binary", "json"):
        pool = PayloadPool(_sc(payload=payload, input_data=str(tmp_path / "big.npy")), info, seed=1)
        p1, _ = pool.next_parts()
        p2, _ = pool.next_parts()
        big1 = [p for p in p1 if len(p) > 100_000]
        big2 = [p for p in p2 if len(p) > 100_000]
        assert len(big1) == 1 and big1[0] is big2[0]  # the same object: no per-request copy
        assert p1[0] != p2[0]  # a fresh id in the small head
    body, headers = pool.next()
    assert json.loads(body)["inputs"][0]["data"] == big.tolist()


@pytest.mark.parametrize("payload", ["binary", "json"])
def test_dynamic_dims_with_shape_and_random_strings(payload):
    pool = PayloadPool(_sc(payload=payload, batch=3, shapes={"ids": [5]}), TEXT_INFO, seed=4)
    bodies = [_split(*pool.next()) for _ in range(3)]
    head, values = bodies[0]
    assert {i["name"]: i["shape"] for i in head["inputs"]} == {"ids": [3, 5], "text": [3, 1]}
    assert len(values["ids"]) == 15 and len(values["text"]) == 3 and all(len(s) == 128 for s in values["text"])
    assert bodies[0][1]["ids"] != bodies[1][1]["ids"]  # the first element carries the request counter
    again = PayloadPool(_sc(payload=payload, batch=3, shapes={"ids": [5]}), TEXT_INFO, seed=4)
    assert _split(*again.next())[1] == values  # seeded
    strings_only = {**TEXT_INFO, "metadata": {**TEXT_INFO["metadata"], "inputs": TEXT_INFO["metadata"]["inputs"][1:]}}
    pool = PayloadPool(_sc(payload=payload), strings_only, seed=4, pool_size=1)
    a, b = (_split(*pool.next())[1]["text"][0] for _ in range(2))
    assert a[:16] == "0" * 16 and b[:16] == "0" * 15 + "1" and a[16:] == b[16:]  # counter in the first 16 chars


def test_shape_rules_follow_perf_analyzer():
    with pytest.raises(PayloadError, match=r"input 'ids': variable dimensions \[-1\].*--shape ids:N"):
        PayloadPool(_sc(), TEXT_INFO, seed=1)
    with pytest.raises(PayloadError, match=r"--shape ids:1,5 does not fit the model's \[-1\] \(without the batch"):
        PayloadPool(_sc(shapes={"ids": [1, 5]}), TEXT_INFO, seed=1)  # batch dimension included: refused
    with pytest.raises(PayloadError, match=r"--shape nope: model t has no input 'nope'"):
        PayloadPool(_sc(shapes={"ids": [5], "nope": [1]}), TEXT_INFO, seed=1)
    assert input_specs(INFO, 2, {"input": [3, 4, 4]})[0].shape == [2, 3, 4, 4]  # a static shape may be restated


def test_outputs_requested_and_checked(tmp_path):
    pool = PayloadPool(_sc(shapes={"ids": [2]}, outputs=["label"]), TEXT_INFO, seed=1)
    body, headers = pool.next()
    head = json.loads(body[: int(headers["Inference-Header-Content-Length"])])
    assert head["outputs"] == [{"name": "label", "parameters": {"binary_data": True}}]
    only = json.dumps({"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": ["a"]}]}).encode()
    assert pool.check(only, None) is None
    jpool = PayloadPool(_sc(payload="json", shapes={"ids": [2]}, outputs=["label"]), TEXT_INFO, seed=1)
    assert json.loads(jpool.next()[0])["outputs"] == [{"name": "label"}]
    with pytest.raises(PayloadError, match=r"--output nope: model t has no such output"):
        PayloadPool(_sc(shapes={"ids": [2]}, outputs=["nope"]), TEXT_INFO, seed=1)


def _answer(n: int, batch: int, logits: list[float], labels: list[str], binary: bool) -> tuple[bytes, dict]:
    if not binary:
        out = [
            {"name": "logits", "datatype": "FP32", "shape": [batch, 3], "data": logits},
            {"name": "label", "datatype": "BYTES", "shape": [batch, 1], "data": labels},
        ]
        return json.dumps({"id": str(n), "outputs": out}).encode(), {}
    raw = np.array(logits, "<f4").tobytes()
    sraw = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in labels)
    out = [
        {"name": "logits", "datatype": "FP32", "shape": [batch, 3], "parameters": {"binary_data_size": len(raw)}},
        {"name": "label", "datatype": "BYTES", "shape": [batch, 1], "parameters": {"binary_data_size": len(sraw)}},
    ]
    head = json.dumps({"id": str(n), "outputs": out}).encode()
    return head + raw + sraw, {"inference-header-content-length": str(len(head))}


@pytest.mark.parametrize("binary", [False, True])
def test_validation_data_judges_every_answer_by_its_id(tmp_path, binary):
    doc = {
        "data": ENTRIES,
        "validation_data": [{"logits": [k, 0.5, 1 / 3], "label": [f"L{k}"]} for k in range(5)],
    }
    pool = PayloadPool(_sc(batch=2, input_data=_data(tmp_path, doc), input_order="random"), TEXT_INFO, seed=3)
    assert pool.check_every
    for _ in range(6):
        pool.next_parts()

    def answer(n, tweak=0.0, label_tweak=""):
        ks = pool.items(n)
        logits = [v for k in ks for v in (k + tweak, 0.5, 1 / 3)]
        body, h = _answer(n, 2, logits, [f"L{k}{label_tweak}" for k in ks], binary)
        return pool.judge(body, h.get)

    assert [answer(n) for n in (5, 2, 0, 4)] == [None] * 4  # out of order: the id says which entries
    assert answer(3, tweak=5e-7) is None  # within atol 1e-6 + rtol 1e-5 * |x|
    code, message = answer(1, tweak=0.01)
    ks = pool.items(1)
    assert code == "invalid_output" and message.startswith(f"output logits of entries {ks} differs: 2 of 6 values")
    code, message = answer(1, label_tweak="x")
    assert code == "invalid_output" and "output label of entries" in message
    body, h = _answer(99, 2, [0.0] * 6, ["a", "b"], binary)
    assert pool.judge(body, h.get)[0] == "InvalidResponse"  # an id this run never sent
    body, h = _answer(0, 2, [0.0] * 6, ["a", "b"], binary)
    no_id = body.replace(b'"id": "0", ', b"")
    hdr = {"inference-header-content-length": str(int(h["inference-header-content-length"]) - 11)} if binary else {}
    assert "echo the request id" in pool.judge(no_id, hdr.get)[1]


def test_input_data_keywords_and_payload_kinds(tmp_path):
    zero = PayloadPool(_sc(payload="json", input_data="zero"), INFO, seed=1)
    a, b = json.loads(zero.next()[0]), json.loads(zero.next()[0])
    assert set(a["inputs"][0]["data"]) == {0.0} and a["inputs"][0]["data"] == b["inputs"][0]["data"]
    assert len(PayloadPool(_sc(input_data="random"), INFO, seed=1).next()[0]) > 0
    with pytest.raises(PayloadError, match="use --payload binary or json"):
        PayloadPool(
            _sc(payload="image", model="mj", input_data=_data(tmp_path, {"data": [{"image": ["x"]}]})), IMG_INFO, 1
        )
    with pytest.raises(PayloadError, match=r"validation_data gives output 'logits', which --output does not request"):
        doc = {"data": ENTRIES[:1], "validation_data": [{"logits": [1, 2, 3]}]}
        PayloadPool(_sc(input_data=_data(tmp_path, doc), outputs=["label"]), TEXT_INFO, seed=1)
    with pytest.raises(
        PayloadError, match=r"entry 1, input 'ids' has shape \[2\], entry 0 \[3\]: a request of --batch 2"
    ):
        doc = {"data": [ENTRIES[0], {"ids": [1, 2], "text": ["a"]}]}
        PayloadPool(_sc(batch=2, input_data=_data(tmp_path, doc)), TEXT_INFO, seed=1)
    doc = {"data": [{**ENTRIES[0], "text": {"b64": base64.b64encode(b"\x02\x00\x00\x00\xff\xfe").decode()}}]}
    with pytest.raises(PayloadError, match="not UTF-8.*--payload binary"):
        PayloadPool(_sc(payload="json", input_data=_data(tmp_path, doc)), TEXT_INFO, seed=1)
    pool = PayloadPool(_sc(payload="binary", input_data=_data(tmp_path, doc)), TEXT_INFO, seed=1)
    assert _split(*pool.next())[0]["inputs"][1]["parameters"]["binary_data_size"] == 6
