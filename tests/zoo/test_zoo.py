"""Built-in model builders: interface, determinism, architecture facts, runnable outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from server.zoo import BUILDERS, build_model, build_to_file, model_bytes, model_stats

DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _run(sess: ort.InferenceSession, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(seed).standard_normal([batch, *inp.shape[1:]]).astype(np.float32)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {inp.name: x})))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def resnet() -> onnx.ModelProto:
    return build_model("resnet50")


@pytest.fixture(scope="module")
def ssd() -> onnx.ModelProto:
    return build_model("ssd_mobilenet")


def test_builders_interface():
    assert set(BUILDERS) == {"resnet50", "mobilenet_v2", "ssd_mobilenet", "tiny_classifier", "tiny_detector"}


def test_unknown_builder_is_value_error_listing_builders():
    with pytest.raises(ValueError) as e:
        build_model("resnet51")
    for name in BUILDERS:
        assert name in str(e.value)
    with pytest.raises(ValueError, match="precision"):
        model_bytes("tiny_classifier", precision="fp8")


@pytest.mark.parametrize("name", ["tiny_classifier", "tiny_detector", "mobilenet_v2"])
def test_build_is_byte_identical(tmp_path, name):
    a, b = tmp_path / "a" / "m.onnx", tmp_path / "b" / "nested" / "m.onnx"
    build_to_file(name, a)
    build_to_file(name, b)
    assert _sha(a) == _sha(b)
    assert not [p for p in a.parent.iterdir() if p.name != "m.onnx"], "temp file left behind"
    m = onnx.load(str(a))
    assert m.producer_name == "inferload.zoo" and m.ir_version <= 9
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [17]


def test_build_to_file_replaces_existing(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"stale")
    build_to_file("tiny_classifier", path)
    onnx.checker.check_model(onnx.load(str(path)))


def test_resnet50_architecture(resnet):
    onnx.checker.check_model(resnet)
    stats = model_stats(resnet)
    # BatchNorm folded: conv weights + one bias per BN channel + FC = 25,530,472 (torchvision: 25,557,032)
    assert abs(stats["params"] - 25.56e6) / 25.56e6 < 0.01
    assert 3.9 < stats["gmacs"] < 4.3
    assert stats["gflops"] == pytest.approx(2 * stats["gmacs"])
    convs = [n for n in resnet.graph.node if n.op_type == "Conv"]
    assert len(convs) == 53  # 1 stem + 16 blocks * 3 + 4 downsample
    # v1.5: in the first block of stages 2-4 the stride sits in the 3x3 conv, not in the first 1x1
    strided = [n for n in convs if any(a.name == "strides" and list(a.ints) == [2, 2] for a in n.attribute)]
    kernels = sorted(next(list(a.ints) for a in n.attribute if a.name == "kernel_shape")[0] for n in strided)
    assert kernels == [1, 1, 1, 3, 3, 3, 7]
    out = resnet.graph.output[0]
    assert out.name == "logits"
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 1000]


def test_mobilenet_v2_stats():
    stats = model_stats(build_model("mobilenet_v2"))
    assert 3.4e6 < stats["params"] < 3.6e6
    assert 0.28 < stats["gmacs"] < 0.32


def test_ssd_graph_has_nms_and_anchors(ssd):
    onnx.checker.check_model(ssd)
    ops = {n.op_type for n in ssd.graph.node}
    assert "NonMaxSuppression" in ops and "Exp" in ops  # NMS + in-graph center-size decoding
    inits = {i.name: list(i.dims) for i in ssd.graph.initializer}
    assert inits["anchor_centers_1"] == [1, 1917, 2] and inits["anchor_sizes_1"] == [1, 1917, 2]
    dims = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in ssd.graph.output}
    assert dims == {
        "detection_boxes": ["batch", 100, 4],
        "detection_scores": ["batch", 100],
        "detection_classes": ["batch", 100],
        "num_detections": ["batch"],
    }


def _check_detections(out: dict[str, np.ndarray], batch: int, k: int, num_classes: int) -> None:
    assert out["detection_boxes"].shape == (batch, k, 4)
    assert out["detection_scores"].shape == (batch, k)
    assert out["detection_classes"].shape == (batch, k)
    assert out["num_detections"].shape == (batch,)
    for v in out.values():
        assert v.dtype == np.float32 and np.isfinite(v).all()
    for i in range(batch):
        n = int(out["num_detections"][i])
        scores, classes, boxes = out["detection_scores"][i], out["detection_classes"][i], out["detection_boxes"][i]
        assert 0 < n <= k  # the seeded random inputs do produce detections
        assert (scores[:n] > 0).all() and (scores[n:] == 0).all() and (np.diff(scores) <= 0).all()
        assert ((classes[:n] >= 1) & (classes[:n] <= num_classes)).all() and (classes[n:] == 0).all()
        assert (boxes[n:] == 0).all() and (boxes >= 0).all() and (boxes <= 1).all()
        assert (boxes[:n, 2] >= boxes[:n, 0]).all() and (boxes[:n, 3] >= boxes[:n, 1]).all()


@pytest.mark.parametrize("batch", [1, 3])
def test_ssd_outputs(ssd, batch):
    _check_detections(_run(_session(ssd), batch), batch, k=100, num_classes=90)


def test_ssd_batch_rows_match_single_runs(ssd):
    sess = _session(ssd)
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(5).standard_normal([3, 3, 300, 300]).astype(np.float32)
    batched = sess.run(None, {inp.name: x})
    single = sess.run(None, {inp.name: x[2:3]})
    for b, s in zip(batched, single):
        np.testing.assert_allclose(b[2:3], s, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
def test_tiny_detector_outputs(batch):
    _check_detections(_run(_session(build_model("tiny_detector")), batch), batch, k=10, num_classes=3)


@pytest.mark.parametrize("batch", [1, 3])
def test_tiny_classifier_outputs(batch):
    m = build_model("tiny_classifier")
    onnx.checker.check_model(m)
    assert m.ByteSize() < 20_000
    logits = _run(_session(m), batch)["logits"]
    assert logits.shape == (batch, 10) and np.isfinite(logits).all() and logits.std() > 1e-3


def test_int8_tiny_classifier_deterministic_and_runnable(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    build_to_file("tiny_classifier", a, precision="int8")
    build_to_file("tiny_classifier", b, precision="int8")
    assert _sha(a) == _sha(b)
    q = onnx.load(str(a))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in q.graph.node}
    assert model_stats(q)["params"] == model_stats(build_model("tiny_classifier"))["params"]
    sess = _session(a.read_bytes())
    x = np.random.default_rng(1).standard_normal([3, 3, 32, 32]).astype(np.float32)
    q_logits = sess.run(None, {"input": x})[0]
    f_logits = _session(build_model("tiny_classifier")).run(None, {"input": x})[0]
    assert q_logits.shape == (3, 10) and np.isfinite(q_logits).all()
    assert np.abs(q_logits - f_logits).max() < 0.25 * np.abs(f_logits).max()
