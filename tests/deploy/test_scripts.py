"""deploy/*.sh: shell syntax, and prepare-models (the compose init service / k8s initContainer) really fills a
repository the server can then serve from read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._util import DEPLOY, ROOT


@pytest.mark.parametrize("script", ["smoke.sh", "make-base-image.sh", "prepare-models.sh"])
def test_shell_syntax(script):
    shell = "sh" if script == "prepare-models.sh" else "bash"
    r = subprocess.run([shell, "-n", str(DEPLOY / script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert os.access(DEPLOY / script, os.X_OK), f"{script} must be executable"


def test_gpu_check_script_syntax_and_what_it_checks():
    """scripts/gpu-check.sh runs on a CUDA machine (none here): its syntax, its lock, and the three steps."""
    script = ROOT / "scripts" / "gpu-check.sh"
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert os.access(script, os.X_OK), "gpu-check.sh must be executable"
    text = script.read_text()
    assert "LOCK=${LOCK:-requirements/gpu.txt}" in text and '--require-hashes -r "$LOCK"' in text
    for step in (
        'bench --model mobilenet_v2 --models models --provider "cpu,$PROVIDER"',
        "serve --models",
        "peak --target",
    ):
        assert step in text, step


def test_prepare_models_copies_and_builds(tmp_path):
    src = tmp_path / "src"
    for name in ("tiny_classifier", "tiny_classifier_jpeg"):
        shutil.copytree(ROOT / "models" / name, src / name, ignore=shutil.ignore_patterns("*.onnx"))
    dest = tmp_path / "dest"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        INFERLOAD_MODEL_NAMES="tiny_classifier_jpeg",
    )
    r = subprocess.run(
        ["sh", str(DEPLOY / "prepare-models.sh"), str(src), str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dest / "tiny_classifier" / "config.toml").exists() and (
        dest / "tiny_classifier_jpeg" / "config.toml"
    ).exists()
    # the jpeg pipeline shares tiny_classifier's file, which must have been built
    assert (dest / "tiny_classifier" / "model.onnx").stat().st_size > 0
    assert not list(src.rglob("*.onnx")), "the source (read-only in compose) must not be written"
    # idempotent: a second run keeps the built file
    mtime = (dest / "tiny_classifier" / "model.onnx").stat().st_mtime_ns
    r = subprocess.run(
        ["sh", str(DEPLOY / "prepare-models.sh"), str(src), str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dest / "tiny_classifier" / "model.onnx").stat().st_mtime_ns == mtime
