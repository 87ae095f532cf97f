"""`inferload models build`: scaffolds built-in models into an empty repository, byte-identical rebuilds, int8."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from server.repository import load_repository


def _build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "models", "build", *args], capture_output=True, text=True, timeout=120
    )


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_into_empty_repository_twice_identical(tmp_path):
    for d in ("a", "b"):
        p = _build("tiny_classifier", "tiny_detector", "--models", str(tmp_path / d))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "built" in p.stdout
    for name in ("tiny_classifier", "tiny_detector"):
        a, b = tmp_path / "a" / name / "model.onnx", tmp_path / "b" / name / "model.onnx"
        assert _digest(a) == _digest(b)
    repo = load_repository(tmp_path / "a")
    assert repo["tiny_detector"].kind == "detection" and repo["tiny_classifier"].builtin == "tiny_classifier"
    again = _build("tiny_classifier", "--models", str(tmp_path / "a"))
    assert "present" in again.stdout


def test_int8_variant_is_its_own_model(tmp_path):
    p = _build("tiny_classifier", "--precision", "int8", "--models", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    cfg = load_repository(tmp_path)["tiny_classifier_int8"]
    assert cfg.precision == "int8" and cfg.model_path.exists()


def test_unknown_builder_is_an_error(tmp_path):
    p = _build("vgg16", "--models", str(tmp_path))
    assert p.returncode == 2
    assert "neither a model" in p.stdout and "resnet50" in p.stdout
