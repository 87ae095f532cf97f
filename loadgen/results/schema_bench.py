"""The in-process ONNX Runtime baseline's document (`inferload bench`, kind "bench"); also embedded in matrix and tune
documents as their baseline."""

from __future__ import annotations

from typing import Literal

from loadgen.results.schema_base import Json, Num, Percentiles, _Doc, _Strict


class BenchRow(_Strict):
    batch_size: int
    instances: int
    threads_per_instance: int
    allow_spinning: bool
    calls: int
    items: int
    window_s: float
    throughput_items_per_s: float
    latency_ms: Percentiles
    per_item_latency_ms: Percentiles
    idle_gap_ms: Num = None
    latency_after_idle_ms: Percentiles | None = None
    provider: str | None = None
    """The ONNX Runtime execution provider that ran (cpu, openvino, ...: the session's first provider)."""
    requested_provider: str | None = None
    execution_providers: list[str] | None = None
    """Everything the session runs, in ONNX Runtime's order (e.g. OpenVINOExecutionProvider, CPUExecutionProvider)."""


class BenchDoc(_Doc):
    """The in-process ONNX Runtime baseline (`inferload bench`): the limit a server can reach."""

    kind: Literal["bench"] = "bench"
    model: str
    model_path: str
    duration_s: float
    warmup_s: float
    started_at: str
    machine: Json
    results: list[BenchRow]
