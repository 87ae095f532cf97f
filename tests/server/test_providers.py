"""Execution providers without the hardware (issue #21): config validation, the refusal when a provider is missing or
ORT fell back (naming the provider, the installed ones and the fix), allow_fallback, and what the server reports.
Runs in any environment: the CPU build lacks cuda, tensorrt and openvino, which is what these tests need; in the
OpenVINO environment only the openvino cases change (they are skipped there). No sockets, no sleeps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from server import providers as P
from server.app import build_service, serve
from server.metrics import ServerMetrics
from server.repository import ConfigError, ensure_built, load_model_config
from server.runtime import OnnxInstance, random_inputs
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = ort.get_available_providers()
NO_CUDA = "CUDAExecutionProvider" not in INSTALLED
needs_no_cuda = pytest.mark.skipif(not NO_CUDA, reason="this machine's ONNX Runtime has CUDA: nothing to refuse")


def _repo(tmp_path: Path, instances: str) -> Path:
    """A repository with tiny_classifier, its [instances] table replaced by `instances`."""
    root = tmp_path / "models"
    d = root / "tiny_classifier"
    d.mkdir(parents=True)
    text = (ROOT / "models" / "tiny_classifier" / "config.toml").read_text()
    text = text.split("[instances]")[0] + "[instances]\ncount = 1\nintra_op_threads = 1\n" + instances
    (d / "config.toml").write_text(text)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    shutil.copytree(
        ROOT / "models" / "tiny_classifier", root / "tiny_classifier", ignore=shutil.ignore_patterns("*.onnx")
    )
    cfg = load_model_config(root / "tiny_classifier")
    ensure_built(cfg)
    return cfg.model_path


# --- the pure part ------------------------------------------------------------------------------------------------
def test_session_providers_put_the_requested_provider_first_and_cpu_last():
    assert P.session_providers("cpu", {"device_type": "GPU"}) == [("CPUExecutionProvider", {})]  # cpu takes none
    ov = P.session_providers("openvino", {"precision": "FP32"}, threads=2)
    assert ov == [
        ("OpenVINOExecutionProvider", {"precision": "FP32", "device_type": "CPU", "num_of_threads": "2"}),
        ("CPUExecutionProvider", {}),
    ]
    assert [p for p, _ in P.session_providers("tensorrt", {"trt_fp16_enable": True})] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert P.session_providers("tensorrt", {"trt_fp16_enable": True})[0][1] == {"trt_fp16_enable": "true"}


def test_a_missing_provider_is_refused_naming_it_the_installed_ones_and_the_fix():
    with pytest.raises(P.ProviderError) as e:
        P.check_available("cuda", ["CPUExecutionProvider"], allow_fallback=False, where="m/config.toml [instances]")
    msg = str(e.value)
    for part in ("m/config.toml [instances]", "'cuda'", "CUDAExecutionProvider", "installed: CPUExecutionProvider"):
        assert part in msg
    assert "onnxruntime-gpu" in msg and "allow_fallback = true" in msg
    with pytest.raises(P.ProviderError, match="TensorrtExecutionProvider, CUDAExecutionProvider"):
        P.check_available("tensorrt", ["CPUExecutionProvider"], allow_fallback=False, where="x")
    with pytest.raises(P.ProviderError, match="make openvino"):
        P.check_available("openvino", ["CPUExecutionProvider"], allow_fallback=False, where="x")
    assert (
        P.check_available("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], allow_fallback=False, where="x")
        is None
    )
    note = P.check_available("cuda", ["CPUExecutionProvider"], allow_fallback=True, where="x")
    assert note is not None and "allow_fallback = true" in note


def test_a_fallback_to_cpu_is_detected_from_what_the_session_runs():
    assert (
        P.check_session(
            "openvino", ["OpenVINOExecutionProvider", "CPUExecutionProvider"], allow_fallback=False, where="x"
        )
        is None
    )
    with pytest.raises(P.ProviderError, match="fell back to CPUExecutionProvider"):
        P.check_session("cuda", ["CPUExecutionProvider"], allow_fallback=False, where="x")
    assert "serving anyway" in (P.check_session("cuda", ["CPUExecutionProvider"], allow_fallback=True, where="x") or "")


def test_provider_lists_and_names():
    assert P.parse_provider_list(" CPU, openvino,cpu") == ["cpu", "openvino"]
    with pytest.raises(ValueError, match="unknown provider.*gpu.*choose from cpu, openvino, cuda, tensorrt"):
        P.parse_provider_list("cpu,gpu")
    assert P.primary(["OpenVINOExecutionProvider", "CPUExecutionProvider"]) == "openvino"
    assert P.short_name("AzureExecutionProvider") == "AzureExecutionProvider"
    trt = P.execution_accelerators("m", 2, "tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    assert trt["instance_group"] == [{"name": "m_0", "kind": "KIND_GPU", "count": 2}]
    assert trt["optimization"]["execution_accelerators"]["gpu_execution_accelerator"] == [{"name": "tensorrt"}]
    ov = P.execution_accelerators("m", 1, "openvino", ["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    assert ov["optimization"]["execution_accelerators"]["cpu_execution_accelerator"] == [{"name": "openvino"}]
    fell = P.execution_accelerators("m", 1, "cuda", ["CPUExecutionProvider"])
    assert fell["instance_group"][0]["kind"] == "KIND_CPU" and "optimization" not in fell
    assert fell["parameters"]["requested_provider"] == {"string_value": "cuda"}
    assert fell["parameters"]["execution_provider"] == {"string_value": "cpu"}


# --- configuration --------------------------------------------------------------------------------------------------
def test_provider_fields_load_and_a_bad_provider_names_file_field_and_choices(tmp_path):
    root = _repo(
        tmp_path, 'provider = "tensorrt"\nallow_fallback = true\n[instances.provider_options]\ntrt_fp16_enable = true\n'
    )
    cfg = load_model_config(root / "tiny_classifier")
    assert cfg.instances.provider == "tensorrt" and cfg.instances.allow_fallback
    assert cfg.instances.provider_options == {"trt_fp16_enable": True}
    assert load_model_config(_repo(tmp_path / "d", "") / "tiny_classifier").instances.provider == "cpu"
    bad = _repo(tmp_path / "b", 'provider = "gpu"\n')
    with pytest.raises(ConfigError) as e:
        load_model_config(bad / "tiny_classifier")
    msg = str(e.value)
    assert "config.toml" in msg and "field 'instances.provider'" in msg and "'cuda'" in msg and "'gpu'" in msg


# --- sessions and the server, on this machine's ONNX Runtime ---------------------------------------------------------
@needs_no_cuda
def test_a_session_on_a_missing_provider_is_refused_or_falls_back_when_allowed(tiny_model):
    with pytest.raises(P.ProviderError, match="CUDAExecutionProvider"):
        OnnxInstance(tiny_model, 1, provider="cuda")
    inst = OnnxInstance(tiny_model, 1, provider="cuda", allow_fallback=True)
    assert inst.provider == "cpu" and inst.providers == ["CPUExecutionProvider"] and inst.requested == "cuda"
    assert inst.warnings and "allow_fallback" in inst.warnings[0]
    x = random_inputs(inst.inputs, 2)
    np.testing.assert_allclose(
        inst.run(x)[inst.outputs[0].name], OnnxInstance(tiny_model, 1).run(x)[inst.outputs[0].name], rtol=1e-6
    )


@needs_no_cuda
def test_the_server_refuses_to_start_on_a_missing_provider(tmp_path, capsys):
    root = _repo(tmp_path, 'provider = "cuda"\n')
    rc = serve(ServerSettings(models_dir=root, malloc_tuning=False, port=0))
    err = capsys.readouterr().err
    assert rc == 1
    assert "failed to start" in err and "tiny_classifier/config.toml [instances]" in err
    assert "CUDAExecutionProvider" in err and "onnxruntime-gpu" in err and "allow_fallback" in err


@needs_no_cuda
def test_with_allow_fallback_the_server_reports_the_provider_that_runs(tmp_path):
    root = _repo(tmp_path, 'provider = "cuda"\nallow_fallback = true\n')
    metrics = ServerMetrics(CollectorRegistry())
    service = build_service(ServerSettings(models_dir=root, warmup=False), metrics)
    try:
        config = service.model_config("tiny_classifier")
        assert config["parameters"]["execution_provider"] == {"string_value": "cpu"}
        assert config["parameters"]["requested_provider"] == {"string_value": "cuda"}
        assert config["instance_group"][0]["kind"] == "KIND_CPU"
    finally:
        service.close()
    text, _ = metrics.expose()
    series = {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text.decode())
        if f.name == "inferload_model_execution_provider"
        for s in f.samples
    }
    assert series == {(("model", "tiny_classifier"), ("provider", "cpu")): 1.0}
