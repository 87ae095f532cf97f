"""ONNX Runtime execution providers: the names a config may use, what each needs installed, and the checks that
refuse to serve on another provider than the one asked for (issue #21).

Pure: nothing here imports onnxruntime. `runtime.py` passes in what ORT reports: `onnxruntime.get_available_providers()`
(what the installed distribution offers) and `session.get_providers()` (what a session actually runs).

ONNX Runtime's distributions replace one another (`onnxruntime` is the CPU build, `onnxruntime-openvino` adds
OpenVINO, `onnxruntime-gpu` CUDA and TensorRT); all install the `onnxruntime` module, so one variant per environment
(docs/providers.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

ProviderName = Literal["cpu", "openvino", "cuda", "tensorrt", "rocm", "migraphx", "dnnl"]
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)

# config name → ONNX Runtime execution provider
EP_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
}
SHORT_NAMES: dict[str, str] = {ep: short for short, ep in EP_NAMES.items()}

# What to install for each provider (the fix a refusal names).
INSTALL_HINTS: dict[str, str] = {
    "cpu": "the `onnxruntime` distribution (requirements/dev.txt; `make setup`)",
    "openvino": "`onnxruntime-openvino` in its own environment (`make openvino`, requirements/openvino.txt, "
    "or deploy/Dockerfile.server-openvino)",
    "cuda": "`onnxruntime-gpu[cuda,cudnn]` in its own environment (requirements/server-gpu.txt, "
    "deploy/Dockerfile.server-gpu) on a machine with an NVIDIA GPU and its driver",
    "tensorrt": "`onnxruntime-gpu` (requirements/server-gpu.txt, deploy/Dockerfile.server-gpu) with NVIDIA TensorRT's "
    "libraries on a machine with an NVIDIA GPU",
    "rocm": "an ONNX Runtime build with ROCm (AMD GPUs)",
    "migraphx": "an ONNX Runtime build with MIGraphX (AMD GPUs)",
    "dnnl": "an ONNX Runtime build with oneDNN",
}

# Providers that run on a GPU (Triton's instance_group kind; tensorrt falls back to cuda for what TensorRT cannot run).
GPU_PROVIDERS = frozenset({"cuda", "tensorrt", "rocm", "migraphx"})
CHAIN: dict[str, tuple[str, ...]] = {"tensorrt": ("tensorrt", "cuda")}

OptionValue = str | int | float | bool


class ProviderError(RuntimeError):
    """The requested execution provider is not installed, or ONNX Runtime fell back to another one."""


def ep_name(provider: str) -> str:
    return EP_NAMES[provider]


def short_name(ep: str) -> str:
    """`OpenVINOExecutionProvider` → `openvino`; an EP this module does not know keeps its own name."""
    return SHORT_NAMES.get(ep, ep)


def ort_options(options: Mapping[str, OptionValue]) -> dict[str, str]:
    """ONNX Runtime takes provider options as strings (booleans as "true"/"false")."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in options.items()}


def default_options(provider: str, options: Mapping[str, OptionValue], threads: int) -> dict[str, OptionValue]:
    """The options a session gets: the config's, plus defaults that keep comparisons fair. OpenVINO runs its own
    thread pool (ORT's intra_op_threads do not reach it): it gets `num_of_threads` = the instance's intra-op threads
    and `device_type` CPU unless the config says otherwise."""
    out: dict[str, OptionValue] = dict(options)
    if provider == "openvino":
        out.setdefault("device_type", "CPU")
        out.setdefault("num_of_threads", threads)
    return out


def session_providers(
    provider: str, options: Mapping[str, OptionValue], threads: int = 1
) -> list[tuple[str, dict[str, str]]]:
    """The `providers=` list for an InferenceSession: the requested provider (with its options), the providers it
    leans on (TensorRT → CUDA), then CPU, which runs the nodes the others do not support."""
    if provider == "cpu":  # the CPU provider takes no options (a config's may be left from another provider)
        return [(ep_name("cpu"), {})]
    chain = CHAIN.get(provider, (provider,))
    out: list[tuple[str, dict[str, str]]] = []
    for p in chain:
        opts = default_options(p, options, threads) if p == provider else {}
        out.append((ep_name(p), ort_options(opts)))
    return out + [(ep_name("cpu"), {})]


def _hint(provider: str) -> str:
    return (
        f"install {INSTALL_HINTS.get(provider, 'an ONNX Runtime build with it')}; or choose another provider; or, "
        "to serve on what is there, set [instances] allow_fallback = true"
    )


def check_available(provider: str, available: Iterable[str], *, allow_fallback: bool, where: str) -> str | None:
    """Before a session is made: None when `provider` is installed; a warning text when it is not but the fallback
    is allowed. Raises ProviderError (naming the provider, the installed ones and the fix) otherwise."""
    available = list(available)
    missing = [ep_name(p) for p in CHAIN.get(provider, (provider,)) if ep_name(p) not in available]
    if not missing:
        return None
    msg = (
        f"{where}: provider {provider!r} needs {', '.join(missing)}, which this ONNX Runtime does not "
        f"have (installed: {', '.join(available) or 'none'})"
    )
    if allow_fallback:
        return msg + "; allow_fallback = true, so the session runs on what ONNX Runtime has"
    raise ProviderError(f"{msg}. Fix: {_hint(provider)}")


def check_session(provider: str, running: Iterable[str], *, allow_fallback: bool, where: str) -> str | None:
    """After a session is made: None when it runs `provider`; a warning text when ORT fell back and that is allowed.
    Raises ProviderError otherwise (ORT may drop a provider whose libraries fail to load, e.g. CUDA without a GPU)."""
    running = list(running)
    if ep_name(provider) in running:
        return None
    msg = (
        f"{where}: provider {provider!r} was requested but ONNX Runtime fell back to "
        f"{', '.join(running) or 'nothing'} ({ep_name(provider)} failed to initialise)"
    )
    if allow_fallback:
        return msg + "; allow_fallback = true, so serving anyway"
    raise ProviderError(
        f"{msg}. ONNX Runtime's log above says why (a device that is not there, a missing driver or library). Fix: "
        "check [instances] provider_options (e.g. device_type) and the provider's requirements (docs/providers.md); "
        "or choose another provider; or set [instances] allow_fallback = true"
    )


def primary(running: Iterable[str]) -> str:
    """The short name of the provider a session runs first (what metrics and results report)."""
    running = list(running)
    return short_name(running[0]) if running else "none"


def parse_provider_list(text: str) -> list[str]:
    """`cpu,openvino` → ["cpu", "openvino"]; ValueError naming the allowed names otherwise."""
    values = [x.strip().lower() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in EP_NAMES]
    if not values or bad:
        raise ValueError(f"unknown provider(s) {', '.join(bad) or repr(text)}: choose from {', '.join(PROVIDER_NAMES)}")
    return list(dict.fromkeys(values))


def execution_accelerators(model: str, count: int, requested: str, running: list[str]) -> dict[str, Any]:
    """The provider in Triton's model-config terms: `instance_group` (KIND_GPU for GPU providers),
    `optimization.execution_accelerators` (as Triton's ONNX Runtime backend spells OpenVINO / TensorRT), and
    `parameters` with what ONNX Runtime actually runs (a fallback shows here)."""
    first = primary(running)
    kind = "KIND_GPU" if first in GPU_PROVIDERS else "KIND_CPU"
    out: dict[str, Any] = {
        "instance_group": [{"name": f"{model}_0", "kind": kind, "count": count}],
        "parameters": {
            "execution_provider": {"string_value": first},
            "execution_providers": {"string_value": ",".join(running)},
            "requested_provider": {"string_value": requested},
        },
    }
    if first in ("openvino", "tensorrt"):
        side = "gpu_execution_accelerator" if first in GPU_PROVIDERS else "cpu_execution_accelerator"
        out["optimization"] = {"execution_accelerators": {side: [{"name": first}]}}
    return out
