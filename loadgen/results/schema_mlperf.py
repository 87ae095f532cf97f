"""The `mlperf` document's model (`inferload mlperf`, loadgen.engine.mlperf_driver); registered in
loadgen.results.schema.MODELS."""

from __future__ import annotations

from typing import Literal

from loadgen.results.schema_base import Json, Num, Percentiles, Reason, _Doc


class MlperfDoc(_Doc):
    """`inferload mlperf`: one MLPerf LoadGen test (loadgen.engine.mlperf_driver) with LoadGen's verdict and the SUT's
    own figures. Latencies in ms (LoadGen logs ns); `samples_per_s` is the scenario's rate (Server: completed
    samples/s; Offline: LoadGen's result; SingleStream / MultiStream: samples/s with LoadGen's overhead)."""

    kind: Literal["mlperf"] = "mlperf"
    tool: Literal["inferload"] = "inferload"
    driver: Literal["mlperf_loadgen"] = "mlperf_loadgen"
    started_at: str
    wall_s: float
    scenario: Literal["singlestream", "multistream", "server", "offline"]
    mode: Literal["performance", "find_peak"]
    model: str
    target: Json
    settings: Json
    result: Json
    """The scenario's answer: {metric, value, unit} (SingleStream p90 latency, Server target QPS, Offline samples/s)."""
    valid: bool
    invalid_reasons: list[Reason]
    warnings: list[Reason]
    loadgen_result: Literal["VALID", "INVALID"]
    loadgen_version: str
    duration_s: Num = None
    """The timed run (LoadGen's power_begin to power_end)."""
    queries: int | None = None
    samples_per_query: int
    overlatency_queries: int | None = None
    samples_per_s: Num = None
    scheduled_samples_per_s: Num = None
    items_per_request: int
    items_per_s: Num = None
    latency_ms: Percentiles
    query_latency_ms: Percentiles | None = None
    early_stopping: Json
    find_peak: Json | None = None
    """--find-peak: LoadGen's FindPeakPerformance answer (`peak_qps`) and the brackets it bisected."""
    effective: Json
    """LoadGen's effective settings (its `effective_*` log keys)."""
    sut: Json
    """The SUT's own figures: issue_lag_ms percentiles (LoadGen's issue call to the request's send), failures."""
    request: Json
    logs: dict[str, str]
    machine: Json
    notes: list[str]
