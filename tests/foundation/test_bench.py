"""In-process baseline on the tiny classifier: JSON rows and fields as documented."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "tiny_classifier", root / "tiny_classifier", ignore=shutil.ignore_patterns("*.onnx"))
    return root


def test_bench_json_rows(tiny_repo, tmp_path):
    out = tmp_path / "b.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "bench",
            "--model",
            "tiny_classifier",
            "--models",
            str(tiny_repo),
            "--batch",
            "1,4",
            "--instances",
            "1,2",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--idle-gap-ms",
            "5",
            "--idle-calls",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tiny_repo / "tiny_classifier" / "model.onnx").exists()  # built on demand
    data = json.loads(out.read_text())
    rows = data["results"]
    assert [(r["batch_size"], r["instances"]) for r in rows] == [(1, 1), (4, 1), (1, 2), (4, 2)]
    for r in rows:
        assert r["throughput_items_per_s"] > 0
        assert r["threads_per_instance"] >= 1
        lat = r["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"]
        assert r["items"] == r["calls"] * r["batch_size"]
        idle = r["latency_after_idle_ms"]
        if r["instances"] == 1:  # one call at a time after an idle gap: the lone camera's latency
            assert r["idle_gap_ms"] == 5 and 0 < idle["p50"] <= idle["p99"]
        else:
            assert idle is None and r["idle_gap_ms"] is None
    m = data["machine"]
    assert m["cpus"] >= 1 and m["onnxruntime"] and m["cpu_model"]
    assert "In-process baseline" in proc.stdout


def test_bench_rejects_bad_lists(tiny_repo):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "bench",
            "--model",
            "tiny_classifier",
            "--models",
            str(tiny_repo),
            "--batch",
            "1,x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "comma-separated integers" in proc.stdout + proc.stderr


def test_bench_unknown_model(tiny_repo):
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "bench", "--model", "nope", "--models", str(tiny_repo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "nope not found" in proc.stdout
