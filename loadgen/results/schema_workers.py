"""The `workers` block of a run result made by several generating processes (loadgen.results.workers)."""

from __future__ import annotations

from loadgen.results.schema_base import Json, Num, Percentiles, _Strict


class WorkerRow(_Strict):
    """One generating process of a run made by several (loadgen.results.workers.worker_row)."""

    name: str
    stream: int | None = None
    scheduled: int | None = None
    sent: int
    completed: int
    failed: int
    dropped: int
    answered_share: Num = None
    delayed_fraction: float
    schedule_lag_ms: Percentiles
    cpu_percent: Json
    problems: list[str]


class WorkersSection(_Strict):
    """Who generated a run's load (several workers only): each worker's part, the lost and the late, and the worker
    that limited the run (loadgen.results.workers.workers_section)."""

    count: int
    lost: list[str]
    joined_late: list[str]
    limited_by: str | None = None
    limited_reason: str | None = None
    busiest: str | None = None
    per_worker: list[WorkerRow]
