"""The typed result schema: one pydantic model per document kind, one SCHEMA_VERSION, a `kind` on every document.

Every document inferload writes goes through `validate_document` (in `loadgen.results.io.write_json`), so a builder
that renames or forgets a field fails where it writes, and test fakes that write documents are held to the same
models. Readers (`loadgen.results.io.load_doc`) upgrade older documents first (`upgrade`): schema 2 run results had
no `kind`. JSON Schema files generated from these models are published in `schemas/` (`python -m
loadgen.results.schema_files --write schemas`; a test keeps them current) so other tools can read results.

Units are in the field names: `_ms` milliseconds, `_rps` requests/s, `_s` seconds, `_mb` megabytes.
Top-level fields and table rows are strict (`extra="forbid"`); free-form blocks (scenario, server, machine,
percentile maps) are typed as mappings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loadgen.results.schema_base import SCHEMA_VERSION, Json, Num, Percentiles, Reason, _Doc, _Strict
from loadgen.results.schema_bench import BenchDoc, BenchRow
from loadgen.results.schema_mlperf import MlperfDoc
from loadgen.results.schema_workers import WorkersSection

__all__ = [
    "MODELS",
    "SCHEMA_VERSION",
    "BenchDoc",
    "BenchRow",
    "Json",
    "MlperfDoc",
    "Num",
    "Percentiles",
    "Reason",
    "SchemaError",
]


class SloVerdict(_Strict):
    verdict: Literal["pass", "fail", "undecided"]
    met: bool
    bound_ms: float
    percentile: float
    confidence: float
    samples: int
    over: int
    failures_counted_over: int
    estimate_ms: Num = None
    ucb_ms: Num = None
    ucb_is_failure: bool = False
    max_over_to_pass: int | None = None
    queries_needed: int | None = None
    design_effect: float = 1.0
    effective_samples: int | None = None
    p99_ms: Num = None
    message: str


class RunResult(_Doc):
    """One load test (`inferload run`, a sweep point, a peak probe, a matrix cell)."""

    kind: Literal["run"] = "run"
    tool: Literal["inferload"] = "inferload"
    started_at: str
    mode: Literal["open", "closed"]
    users: int | None = None
    target_rate_rps: Num = None
    offered_rate_rps: Num = None
    achieved_rate_rps: float
    items_per_s: float
    batch: int
    batch_size: dict[str, int]
    """The server's realised batch sizes: {items per batch: requests}."""
    duration_s: float
    warmup_s: float
    completed: int
    failed: int
    dropped: int
    delayed: int
    delayed_fraction: float
    errors: dict[str, int]
    latency_ms: Percentiles
    latency_ucb_ms: Percentiles
    latency_insufficient: list[str]
    confidence: float
    percentiles: list[Any]
    histogram_b64: str
    histogram_unit: str
    schedule_lag_ms: Percentiles
    lag_effect: Json
    server_timing_ms: dict[str, Percentiles]
    decomposition_ms: Json
    refusal_ms: Json
    timeseries: list[Any]
    generator_cpu_percent: Json
    slo: SloVerdict | None = None
    valid: bool
    invalid_reasons: list[Reason]
    warnings: list[Reason]
    notes: list[str]
    phases: dict[str, dict[str, int]]
    scenario: Json
    server: Json
    machine: Json
    workers: WorkersSection | None = None
    server_metrics: Json | None = None
    """The server's own metrics over the measurement window, any server family (loadgen.results.server_metrics:
    `server_metrics_section`): window averages, and what the server did not export."""


class PointRow(_Strict):
    """A run summarised as a row of a curve (loadgen.results.points.summarize_point)."""

    index: int | None = None
    file: str | None = None
    mode: str
    offered_rps: Num = None
    users: int | None = None
    achieved_rps: float
    items_per_s: float
    items_per_request: int
    completed: int
    failed: int
    errors: dict[str, int]
    p50_ms: Num = None
    p90_ms: Num = None
    p95_ms: Num = None
    p99_ms: Num = None
    p999_ms: Num = None
    max_ms: Num = None
    p99_ucb_ms: Num = None
    mean_server_batch: Num = None
    slo_verdict: str | None = None
    slo_bound_ms: Num = None
    slo_percentile: Num = None
    valid: bool
    invalid_reasons: list[Reason]


class CapacityProbe(BaseModel):
    """The capacity the search started from: measured (a closed-loop probe's row: PointRow fields) or given."""

    model_config = ConfigDict(extra="allow")
    rps: float
    source: str


class Sizing(_Strict):
    target_rps: float
    headroom: float
    replicas: int
    peak_rps_per_replica: float
    usable_rps_per_replica: float
    rate_per_replica_rps: float
    utilisation_of_peak: float
    expected_p99_ms: Num = None
    expected_p99_method: str
    slo_p99_ms: Num = None
    formula: str
    note: str
    configuration: str | None = None
    """matrix / tune: the configuration the sizing is for."""


class RawLimit(_Strict):
    source: str
    file: str | None = None
    batch_size: int
    instances: int
    items_per_request: int
    items_per_s: float
    rps: float


class SweepPeak(_Strict):
    index: int | None = None
    rate_rps: Num = None
    achieved_rps: Num = None
    items_per_s: Num = None
    latency_ms: Num = None
    percentile: Num = None
    method: str | None = None
    reason: str | None = None


class SweepDoc(_Doc):
    kind: Literal["sweep"] = "sweep"
    sweep: Literal["rates", "users", "auto"]
    started_at: str
    finished_at: str | None = None
    scenario: Json
    slo_p99_ms: Num = None
    percentile: float
    auto: Json | None = None
    raw_limit: RawLimit | None = None
    points: list[PointRow]
    stopped: str | None = None
    peak: SweepPeak | None = None
    sizing: Sizing | None = None
    notes: list[str] = Field(default_factory=list)


class ProbeRow(_Strict):
    rate_rps: float
    phase: str | None = None
    outcome: str
    passed: bool
    file: str
    info: Json


class PooledVerdictRow(_Strict):
    rate_rps: float
    outcome: Literal["pass", "fail", "undecided", "generator_limited"]
    rule: Literal["pooled"] = "pooled"
    runs: int
    files: list[str | None]
    verdict: Literal["pass", "fail", "undecided"] | None = None
    """None when a run could not be pooled (INVALID, or missing); `message` says why."""
    queries: int | None = None
    over: int | None = None
    max_over_to_pass: int | None = None
    design_effect: float = 1.0
    holds_to_percentile: Num = None
    """The percentile this many queries in effect hold the bound to (loadgen.results.confidence.coin_flip_percentile):
    the rate at which the verdict passes as often as not is the one whose true percentile of this rank meets it."""
    estimate_ms: Num = None
    ucb_ms: Num = None
    message: str


class PeakDoc(_Doc):
    kind: Literal["peak"] = "peak"
    written_at: str
    status: Literal["running", "found", "capped", "generator_limited", "never_passed", "probe_limit"]
    """"running" while the search goes on (the document is rewritten after every probe)."""
    reason: str | None = None
    advice: str | None = None
    peak_rps: Num = None
    lower_rps: Num = None
    upper_rps: Num = None
    relative_gap: Num = None
    capped: bool = False
    confirmed_passes: int = 0
    confirmation: Json | None = None
    """Every run at the answer and their spread; `rule` and, under the pooled rule, `pooled`: the one verdict over
    them (an entry of `pooled_verdicts`)."""
    confirm_rule: Literal["pooled", "majority"] = "majority"
    """How the ends of the final bracket were confirmed: "pooled", one verdict over the `confirm` runs at a rate, their
    queries pooled; "majority", a majority of separate verdicts (every document before the pooled rule)."""
    pooled_verdicts: list[PooledVerdictRow] = Field(default_factory=list)
    """Every pooled verdict the search made, in order (the answer's, the rate above it's, any refuted)."""
    non_monotone: list[Any] = Field(default_factory=list)
    generator_ceiling_rps: Num = None
    generator_rps: Num = None
    slo_ms: float
    percentile: float
    confidence: float
    precision: float
    growth: float
    start_rps: float
    min_rps: float
    max_rps: Num = None
    plan: Json
    method: str
    capacity_probe: CapacityProbe | None = None
    raw_limit: RawLimit | None = None
    sizing: Sizing | None = None
    probes: list[ProbeRow]
    scenario: Json
    notes: list[str]


class MatrixCell(_Strict):
    label: str
    max_batch_size: int
    instances: int
    max_queue_delay_ms: float
    provider: str | None = None
    """The execution provider asked for ([instances] provider; the server refuses to start on another)."""
    dir: str | None = None
    error: str | None = None
    """Set when the configuration could not be measured (its server failed to start, ...)."""
    server_log: str | None = None
    low_load: PointRow | None = None
    max_throughput: PointRow | None = None
    max_throughput_users: int | None = None
    max_items_per_s: Num = None
    peak: PeakDoc | None = None
    peak_rps: Num = None
    peak_items_per_s: Num = None
    p99_at_peak_ms: Num = None
    raw_items_per_s: Num = None


class MatrixDoc(_Doc):
    kind: Literal["matrix"] = "matrix"
    model: str
    models_dir: str
    started_at: str
    finished_at: str | None = None
    slo_ms: float
    percentile: float
    precision: float
    scenario: Json
    baseline: BenchDoc | None = None
    baseline_note: str | None = None
    configs: list[MatrixCell]
    best: dict[str, str | None]
    sizing: Sizing | None = None
    machine: Json
    notes: list[str]


class OverloadStep(_Strict):
    multiple: float
    offered_rps: float
    goodput_rps: float
    goodput_share: Num = None
    goodput_slo_rps: Num = None
    error_rps: dict[str, float]
    refused_rps: float
    timeout_rps: float
    refusal_server_ms: Percentiles
    refusal_client_ms: Percentiles
    p50_ms: Num = None
    p99_ms: Num = None
    queue_cap: int | None = None
    samples: int
    scrape_errors: int
    queue_depth_max: Num = None
    inflight_max: Num = None
    admission_limit: Num = None
    rss_start_mb: Num = None
    rss_max_mb: Num = None
    rss_growth_mb: Num = None
    server_metrics: Json | None = None
    """The server's family, window figures over the step and what it did not export (loadgen.search.overload)."""
    valid: bool
    invalid_reasons: list[Reason]
    file: str


class OverloadDoc(_Doc):
    kind: Literal["overload"] = "overload"
    started_at: str
    finished_at: str | None = None
    scenario: Json
    capacity: Json
    capacity_rps: float
    steps_requested: list[float]
    slo_ms: Num = None
    method: str
    steps: list[OverloadStep]
    server_metrics: Json | None = None
    """Where the server's metrics were read (url, family) and what it did not export (`unavailable`, `notes`)."""


class TuneDoc(_Doc):
    """`inferload tune`: every configuration measured, the ranking, the Pareto frontier and the recommendation."""

    model_config = ConfigDict(extra="allow")  # the search's own sections (loadgen.search.tune_doc) evolve with it
    kind: Literal["tune"] = "tune"
    model: str
    configs: list[Json]
    ranking: list[str]
    pareto: list[str]
    recommended: Json | None = None
    method: Literal["quick", "grid"] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    space: Json | None = None
    """The values of each dimension searched and the CPUs split among instances."""
    grid_size: int | None = None
    """Configurations in the full grid of `space` (a quick search measures fewer)."""
    configs_measured: int | None = None
    scenario: Json | None = None
    checkpoint: str | None = None
    config_toml_path: str | None = None
    """The recommended config.toml, relative to tune.json (None: nothing recommended)."""
    baseline: BenchDoc | None = None
    """The in-process limit (inferload bench) at each batch size x instances of the space."""
    baseline_note: str | None = None
    machine: Json | None = None


class TuneCheckpoint(_Doc):
    kind: Literal["tune-checkpoint"] = "tune-checkpoint"
    meta: Json
    measurements: dict[str, list[Json]]


MODELS: dict[str, type[_Doc]] = {
    "run": RunResult,
    "sweep": SweepDoc,
    "peak": PeakDoc,
    "matrix": MatrixDoc,
    "bench": BenchDoc,
    "overload": OverloadDoc,
    "tune": TuneDoc,
    "tune-checkpoint": TuneCheckpoint,
    "mlperf": MlperfDoc,
}


class SchemaError(ValueError):
    """A document that does not match its kind's model; the message names the kind and the fields."""


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring an older document to the current shape where that is mechanical (schema 1/2 run results get
    kind "run"); returns a new dict, the input is not changed."""
    doc = dict(doc)
    if "kind" not in doc and "latency_ms" in doc and ("achieved_rate_rps" in doc or "completed" in doc):
        doc["kind"] = "run"
    return doc


def validate_document(doc: dict[str, Any]) -> _Doc:
    """The model instance of a current-version document; SchemaError if its kind is unknown or a field is wrong."""
    kind = doc.get("kind")
    model = MODELS.get(str(kind))
    if model is None:
        raise SchemaError(f"unknown document kind {kind!r} (known: {', '.join(MODELS)})")
    try:
        return model.model_validate(doc)
    except Exception as e:  # pydantic.ValidationError: keep its field paths in the message
        raise SchemaError(f"{kind} document does not match schema {SCHEMA_VERSION}: {e}") from None
