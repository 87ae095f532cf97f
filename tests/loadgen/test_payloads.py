"""Pure tests of request bodies and answer checks (no sockets)."""

from __future__ import annotations

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
    from loadgen.engine.payloads import _loads_oip

    head = _loads_oip(
        b'{"outputs": [{"name": "logits", "shape": [1, 3], "datatype": "FP32", "data": [NaN, Infinity, -Infinity]}]}'
    )
    d = head["outputs"][0]["data"]
    assert d[0] != d[0] and d[1] == float("inf") and d[2] == float("-inf")
    with pytest.raises(ValueError):
        _loads_oip(b'{"outputs": [oops]}')
