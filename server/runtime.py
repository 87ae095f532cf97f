"""ONNX Runtime instances. One `OnnxInstance` = one InferenceSession; `run` is called from a worker thread
(ORT releases the GIL inside `run`, so N instances run truly concurrently).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server.dtypes import OIP_TO_NUMPY
from server.providers import OptionValue, check_available, check_session, primary, session_providers, short_name
from server.repository import ModelConfig

# ONNX Runtime tensor type strings → OIP v2 datatype names
ORT_TO_OIP: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # OIP name, e.g. "FP32"
    shape: list[int]  # -1 for dynamic dimensions


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return TensorSpec(arg.name, ORT_TO_OIP.get(arg.type, arg.type), shape)


def session_options(
    intra_op_threads: int, inter_op_threads: int = 1, allow_spinning: bool = False
) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = intra_op_threads
    so.inter_op_num_threads = inter_op_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Off by default: threads of several instances must not spin against each other (or the event loop) on a
    # small box. On: a latency path kept warm between calls, for CPU.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    so.log_severity_level = 3
    return so


class OnnxInstance:
    """One InferenceSession on one execution provider (server/providers.py). Thread-safe to call `run` from one
    worker thread at a time. `providers` is what ONNX Runtime actually runs (session.get_providers()), `provider`
    the short name of the first of them; `warnings` say why that differs from `requested` (allowed fallback)."""

    def __init__(
        self,
        path: Path,
        intra_op_threads: int,
        inter_op_threads: int = 1,
        allow_spinning: bool = False,
        *,
        provider: str = "cpu",
        provider_options: Mapping[str, OptionValue] | None = None,
        allow_fallback: bool = False,
        where: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.intra_op_threads = intra_op_threads
        self.requested = provider
        self.warnings: list[str] = []
        where = where or str(self.path)
        if provider in ("cuda", "tensorrt"):
            _preload_gpu_libraries()
        chain = session_providers(provider, provider_options or {}, intra_op_threads)
        note = check_available(provider, ort.get_available_providers(), allow_fallback=allow_fallback, where=where)
        if note is not None:
            self.warnings.append(note)
            installed = set(ort.get_available_providers())
            chain = [p for p in chain if p[0] in installed] or [("CPUExecutionProvider", {})]
        self.session = ort.InferenceSession(
            str(self.path),
            sess_options=session_options(intra_op_threads, inter_op_threads, allow_spinning),
            providers=chain,
        )
        self.providers: list[str] = list(self.session.get_providers())
        if note is None:
            note = check_session(provider, self.providers, allow_fallback=allow_fallback, where=where)
            if note is not None:
                self.warnings.append(note)
        self.provider = primary(self.providers)
        self.inputs = [_spec(a) for a in self.session.get_inputs()]
        self.outputs = [_spec(a) for a in self.session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._output_names, inputs)
        return dict(zip(self._output_names, values))


def _preload_gpu_libraries() -> None:
    """onnxruntime-gpu[cuda,cudnn] ships CUDA and cuDNN as NVIDIA wheels; ORT >= 1.21 loads them with preload_dlls()
    (best effort: a system CUDA works without it, and a failure shows as the provider missing or falling back)."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:
            pass


def load_instances(cfg: ModelConfig, cpus: int | None = None) -> list[OnnxInstance]:
    """`cfg.instances.count` independent sessions, threads from the config (default: usable CPUs / count), on
    `cfg.instances.provider`. Raises ProviderError when that provider is missing or ORT fell back (unless allowed)."""
    threads = cfg.threads_per_instance(cpus)
    inst = cfg.instances
    where = f"{cfg.directory / 'config.toml'} [instances]" if cfg.directory is not None else cfg.name
    return [
        OnnxInstance(
            cfg.model_path,
            threads,
            inst.inter_op_threads,
            inst.allow_spinning,
            provider=inst.provider,
            provider_options=inst.provider_options,
            allow_fallback=inst.allow_fallback,
            where=where,
        )
        for _ in range(inst.count)
    ]


def check_providers(providers: list[str], where: str, allow_fallback: bool = False) -> None:
    """Refuse (ProviderError) before any session is made when one of `providers` is not installed."""
    for p in providers:
        check_available(p, ort.get_available_providers(), allow_fallback=allow_fallback, where=where)


def available_providers() -> list[str]:
    """Short names of the execution providers this ONNX Runtime offers (`cpu`, `openvino`, ...)."""
    return [short_name(p) for p in ort.get_available_providers()]


def random_inputs(specs: list[TensorSpec], batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for warm-up and benchmarks (dynamic non-batch dims become 1)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for s in specs:
        shape = [batch] + [d if d > 0 else 1 for d in s.shape[1:]]
        dtype = OIP_TO_NUMPY[s.datatype]
        if np.issubdtype(dtype, np.floating):
            out[s.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            out[s.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            out[s.name] = rng.integers(0, 10, shape).astype(dtype)
    return out
