"""The real Triton HTTP client (tritonclient.http) against the server. tritonclient imports gevent, so it runs
in a subprocess: this test process must never import gevent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from server.preprocess import preprocess_image
from server.repository import load_model_config

SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.http as http

url, out_path, img_a, img_b = sys.argv[1:5]
c = http.InferenceServerClient(url=url)
res = {
    "live": c.is_server_live(), "ready": c.is_server_ready(), "model_ready": c.is_model_ready("tiny_classifier"),
    "server_meta": c.get_server_metadata(), "model_meta": c.get_model_metadata("tiny_classifier"),
    "config": c.get_model_config("tiny_classifier"), "jpeg_meta": c.get_model_metadata("tiny_classifier_jpeg"),
}
x = np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype(np.float32)
arrays = {"x": x}
for binary in (False, True):
    inp = http.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = http.InferRequestedOutput("logits", binary_data=binary)
    r = c.infer("tiny_classifier", [inp], outputs=[out], request_id="t1", timeout=5_000_000)
    arrays["binary" if binary else "json"] = r.as_numpy("logits")
    res["id"] = r.get_response()["id"]
xn = x.copy()
xn[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]  # JSON: tritonclient writes (and reads) NaN/Infinity literals
for binary in (False, True):
    inp = http.InferInput("input", list(xn.shape), "FP32")
    inp.set_data_from_numpy(xn, binary_data=binary)
    r = c.infer("tiny_classifier", [inp], outputs=[http.InferRequestedOutput("logits", binary_data=binary)])
    arrays["nan_binary" if binary else "nan_json"] = r.as_numpy("logits")
inp = http.InferInput("input", list(x.shape), "FP32")
inp.set_data_from_numpy(x, binary_data=True)
r = c.infer("tiny_classifier", [inp], outputs=[http.InferRequestedOutput("logits", binary_data=False, class_count=3)])
res["classes"] = [[s.decode() if isinstance(s, bytes) else s for s in row] for row in r.as_numpy("logits").tolist()]
images = np.array([open(img_a, "rb").read(), open(img_b, "rb").read()], dtype=np.object_)
inp = http.InferInput("IMAGE", [2], "BYTES")
inp.set_data_from_numpy(images, binary_data=True)
r = c.infer("tiny_classifier_jpeg", [inp], outputs=[http.InferRequestedOutput("logits", binary_data=True)])
arrays["images"] = r.as_numpy("logits")
try:
    c.infer("tiny_classifier", [http.InferInput("nope", [1], "FP32").set_data_from_numpy(np.zeros(1, np.float32))])
except Exception as e:
    res["error"] = str(e)
np.savez(out_path, **arrays)
print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def triton_run(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("triton")
    paths = []
    for i, (fmt, rgb) in enumerate([("JPEG", (250, 20, 20)), ("PNG", (20, 20, 250))]):
        img = Image.new("RGB", (60 + 10 * i, 45), rgb)
        img.paste((0, 255, 0), (10, 10, 30, 30))
        p = tmp / f"img{i}.{fmt.lower()}"
        img.save(p, fmt)
        paths.append(p)
    out = tmp / "arrays.npz"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"127.0.0.1:{server.port}", str(out), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(out, allow_pickle=False)), paths


def repo_dir(server) -> Path:
    return server.log_path.parent / "models"


def test_health_and_metadata(triton_run):
    res, _, _ = triton_run
    assert res["live"] and res["ready"] and res["model_ready"]
    assert res["server_meta"]["name"] == "inferload"
    assert res["model_meta"]["inputs"][0]["shape"] == [-1, 3, 32, 32]
    assert res["config"]["max_batch_size"] == 8 and res["config"]["input"][0]["dims"] == [3, 32, 32]
    assert res["jpeg_meta"]["inputs"] == [{"name": "IMAGE", "datatype": "BYTES", "shape": [-1]}]
    assert res["id"] == "t1"
    assert "no input 'nope'" in res["error"]


def test_json_binary_and_onnxruntime_agree(triton_run, server):
    _, arrays, _ = triton_run
    sess = ort.InferenceSession(
        str(repo_dir(server) / "tiny_classifier" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    ref = sess.run(["logits"], {"input": arrays["x"]})[0]
    np.testing.assert_array_equal(arrays["json"], arrays["binary"])
    np.testing.assert_allclose(arrays["binary"], ref, rtol=1e-5, atol=1e-5)


def test_nan_and_infinity_in_json_via_triton_client(triton_run):
    _, arrays, _ = triton_run
    np.testing.assert_array_equal(arrays["nan_json"], arrays["nan_binary"])  # same values, same NaN positions
    assert not np.isfinite(arrays["nan_json"][0]).all()  # the non-finite input reached the model
    np.testing.assert_array_equal(arrays["nan_json"][1:], arrays["binary"][1:])  # batch-mates unaffected


def test_classification_via_triton_client(triton_run):
    res, arrays, _ = triton_run
    for row, strings in zip(arrays["binary"], res["classes"]):
        assert [int(s.split(":")[1]) for s in strings] == list(np.argsort(-row)[:3])


def test_bytes_images_via_triton_client(triton_run, server):
    _, arrays, paths = triton_run
    cfg = load_model_config(repo_dir(server) / "tiny_classifier_jpeg")
    batch = np.stack([preprocess_image(p.read_bytes(), cfg.image) for p in paths])
    sess = ort.InferenceSession(str(cfg.model_path), providers=["CPUExecutionProvider"])
    ref = sess.run(["logits"], {"input": batch})[0]
    np.testing.assert_allclose(arrays["images"], ref, rtol=1e-4, atol=1e-4)
    assert not np.allclose(ref[0], ref[1])  # the two images really differ


def test_raw_jpeg_matches_bytes_input(client, triton_run):
    _, arrays, paths = triton_run
    r = client.post(
        "/v2/models/tiny_classifier_jpeg/infer?top_k=10",
        content=paths[0].read_bytes(),
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 200
    scores = {int(s.split(":")[1]): float(s.split(":")[0]) for s in r.json()["outputs"][0]["data"]}
    np.testing.assert_allclose([scores[i] for i in range(10)], arrays["images"][0], atol=1e-5)
