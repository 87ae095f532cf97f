"""A loaded model as the service sees it (config, batcher, tensors clients send, labels, metrics per protocol,
admission) and the per-request records the service returns (Timings, InferResult). No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.admission import Admission
from server.metrics import ModelMetrics
from server.repository import ModelConfig
from server.runtime import TensorSpec


@dataclass
class Timings:
    read_s: float | None = None  # request arrival (headers) → body read
    preprocess_s: float | None = None  # body read → tensors ready (decode, validate, image preprocessing)
    queue_s: float | None = None
    compute_s: float | None = None
    batch_size: int | None = None
    total_s: float | None = None


@dataclass
class InferResult:
    body: bytes
    header_length: int | None  # set when the body carries binary outputs
    timings: Timings


@dataclass
class LoadedModel:
    cfg: ModelConfig
    batcher: Any  # DynamicBatcher
    inputs: list[TensorSpec]  # what clients send (image models: one BYTES input)
    outputs: list[TensorSpec]
    onnx_inputs: list[TensorSpec]
    labels: list[str] | None
    metrics: ModelMetrics  # requests taken over HTTP
    ready: bool = False
    input_by_name: dict[str, TensorSpec] = field(default_factory=dict)
    output_names: set[str] = field(default_factory=set)
    image_tensor: str | None = None  # ONNX input fed with preprocessed pixels (image models)
    instances: list = field(default_factory=list)  # the OnnxInstances behind the batcher (warm-up)

    @property
    def execution_providers(self) -> list[str]:  # what ORT runs (first session's get_providers()): OpenVINO, CPU
        return list(getattr(self.instances[0], "providers", ["CPUExecutionProvider"])) if self.instances else []

    admission: Admission = field(default_factory=lambda: Admission(1_000_000))  # set by the app from the config
    grpc_metrics: ModelMetrics | None = None  # requests taken over gRPC (None: counted with HTTP's)

    def __post_init__(self) -> None:
        self.input_by_name = {s.name: s for s in self.inputs}
        self.output_names = {s.name for s in self.outputs}

    @property
    def name(self) -> str:
        return self.cfg.name

    def metrics_for(self, protocol: str) -> ModelMetrics:
        return self.grpc_metrics if protocol == "grpc" and self.grpc_metrics is not None else self.metrics

    @property
    def version(self) -> str:
        return self.cfg.version


def exposed_inputs(cfg: ModelConfig, onnx_inputs: list[TensorSpec]) -> tuple[list[TensorSpec], str | None]:
    """The inputs clients see. An image model exposes one BYTES input of shape [-1] instead of the tensor."""
    if cfg.image is None:
        return list(onnx_inputs), None
    tensor = cfg.image.tensor
    if tensor is None:
        if len(onnx_inputs) != 1:
            raise ValueError(
                f"model '{cfg.name}': [image] needs 'tensor' because the ONNX model has {len(onnx_inputs)} inputs"
            )
        tensor = onnx_inputs[0].name
    elif len(onnx_inputs) != 1 or onnx_inputs[0].name != tensor:
        raise ValueError(f"model '{cfg.name}': [image].tensor {tensor!r} must be the ONNX model's only input")
    return [TensorSpec(cfg.image.input_name, "BYTES", [-1])], tensor
