"""ONNX Runtime's OpenVINO execution provider, for real (issue #21). Runs in the OpenVINO environment:
`make test-openvino` (CI: after `make test`) = `.venv-openvino/bin/python -m pytest -m openvino`. Elsewhere every test
here is skipped with the reason: the CPU build of ONNX Runtime has no OpenVINOExecutionProvider.

Checked: sessions on OpenVINO give the CPU provider's outputs within a numeric tolerance (tiny_classifier and the
built-in MobileNetV2); a server configured with provider = "openvino" starts, answers the same numbers, and says so in
/config and in its metrics; a fallback (device_type GPU on a machine without one) is refused; `inferload bench
--provider cpu,openvino` reports one row per provider that ran."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from loadgen.baseline.serverproc import ServerProcess
from server.providers import ProviderError
from server.repository import ensure_built, load_model_config
from server.runtime import OnnxInstance, random_inputs
from tests.waiting import metric_value

pytestmark = pytest.mark.skipif(
    "OpenVINOExecutionProvider" not in ort.get_available_providers(),
    reason="OpenVINOExecutionProvider is not in this ONNX Runtime (the CPU build); run `make test-openvino`, which "
    "builds .venv-openvino (onnxruntime-openvino) and runs these tests there",
)

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("tiny_classifier", "mobilenet_v2")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ov-models")
    for name in MODELS:
        shutil.copytree(ROOT / "models" / name, root / name, ignore=shutil.ignore_patterns("*.onnx"))
        ensure_built(load_model_config(root / name))
    return root


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.parametrize("model", MODELS)
def test_openvino_outputs_match_the_cpu_provider(repo, model):
    path = load_model_config(repo / model).model_path
    cpu, ov = OnnxInstance(path, 2), OnnxInstance(path, 2, provider="openvino")
    assert ov.providers[0] == "OpenVINOExecutionProvider" and ov.provider == "openvino" and not ov.warnings
    for batch in (1, 4):
        x = random_inputs(cpu.inputs, batch, seed=batch)
        for name in cpu._output_names:
            a, b = cpu.run(x)[name], ov.run(x)[name]
            assert a.shape == b.shape and a.dtype == b.dtype
            # fp32 both ways; kernels differ in summation order: within 1e-4 of the output's scale
            assert _max_abs_diff(a, b) <= 1e-4 * max(1.0, float(np.abs(a).max())), (model, batch, name)


def test_an_openvino_fallback_to_cpu_is_refused(repo):
    """ORT drops a provider it cannot create (here: an OpenVINO device that is not there) and runs on CPU silently;
    the server must notice and refuse, unless the config allows it."""
    path = load_model_config(repo / "tiny_classifier").model_path
    with pytest.raises(ProviderError, match="fell back to CPUExecutionProvider.*device_type"):
        OnnxInstance(path, 1, provider="openvino", provider_options={"device_type": "NO_SUCH_DEVICE"})
    inst = OnnxInstance(
        path, 1, provider="openvino", provider_options={"device_type": "NO_SUCH_DEVICE"}, allow_fallback=True
    )
    assert inst.provider == "cpu" and inst.warnings


def test_the_server_serves_with_openvino_and_reports_it(repo, tmp_path):
    path = load_model_config(repo / "tiny_classifier").model_path
    cpu = OnnxInstance(path, 1)
    x = random_inputs(cpu.inputs, 2, seed=7)
    want = cpu.run(x)[cpu.outputs[0].name]
    inp = cpu.inputs[0]
    body = {
        "inputs": [
            {
                "name": inp.name,
                "shape": list(x[inp.name].shape),
                "datatype": "FP32",
                "data": x[inp.name].ravel().tolist(),
            }
        ]
    }
    with ServerProcess(
        repo,
        model_names=["tiny_classifier"],
        overrides={"instances": {"provider": "openvino"}},
        log_path=tmp_path / "server.log",
        ready_timeout_s=120,
    ) as srv:
        with urllib.request.urlopen(f"{srv.url}/v2/models/tiny_classifier/config", timeout=10) as r:
            config = json.load(r)
        req = urllib.request.Request(
            f"{srv.url}/v2/models/tiny_classifier/infer",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.load(r)
        with urllib.request.urlopen(f"{srv.url}/metrics", timeout=10) as r:
            metrics = r.read().decode()
    params = config["parameters"]
    assert params["execution_provider"] == {"string_value": "openvino"}
    assert params["execution_providers"]["string_value"].startswith("OpenVINOExecutionProvider")
    assert config["optimization"]["execution_accelerators"]["cpu_execution_accelerator"] == [{"name": "openvino"}]
    assert (
        metric_value(metrics, "inferload_model_execution_provider", model="tiny_classifier", provider="openvino") == 1
    )
    out = answer["outputs"][0]
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    assert _max_abs_diff(got, want) <= 1e-4 * max(1.0, float(np.abs(want).max()))


def test_bench_reports_the_provider_that_ran(repo, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "loadgen.cli", "bench", "--model", "mobilenet_v2", "--models", str(repo)),
            *("--provider", "cpu,openvino", "--batch", "1,8", "--duration", "0.3", "--warmup", "0.1"),
            *("--idle-calls", "0", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["results"]
    assert [(r["provider"], r["batch_size"]) for r in rows] == [
        ("cpu", 1),
        ("cpu", 8),
        ("openvino", 1),
        ("openvino", 8),
    ]
    assert all(r["execution_providers"][0] == "OpenVINOExecutionProvider" for r in rows[2:])
    assert all(r["throughput_items_per_s"] > 0 for r in rows)
    assert "openvino" in proc.stdout and json.loads(out.read_text())["machine"]["onnxruntime_distribution"] == (
        "onnxruntime-openvino"
    )
