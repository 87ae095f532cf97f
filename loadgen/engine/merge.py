"""Merging what the generating processes recorded: the master (or the local run) adds each worker's deltas into one
RecordData, exactly (HdrHistogram addition), feeds the Prometheus exporter and tracks which workers sent their final
delta. Locust's messages arrive through `on_worker_report` / `on_final`."""

from __future__ import annotations

from typing import Any

from loadgen.engine.exporter import LoadgenMetrics
from loadgen.engine.scenario import Scenario
from loadgen.results.recorded import RecordData


class Collector:
    """Master/local aggregate: merges recorder deltas (exactly), feeds the exporter, tracks finals."""

    def __init__(self, scenario: Scenario, metrics: LoadgenMetrics | None = None) -> None:
        self.scenario = scenario
        self.total = RecordData()
        self.metrics = metrics
        self.finals: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.live = {"sent": 0, "success": 0, "failure": 0, "dropped": 0}
        self.by_source: dict[str, RecordData] = {}
        """Each generating process's own sum (several workers only: the per-worker table, loadgen.results.workers)."""
        if metrics is not None:
            metrics.set_load(
                rate_rps=scenario.rate_rps if scenario.mode == "open" else None,
                users=scenario.users if scenario.mode == "closed" else None,
            )

    def add(self, delta: RecordData, source: str) -> None:
        self.total.merge(delta)
        if source != "local":
            self.by_source.setdefault(source, RecordData()).merge(delta)
        self.in_flight[source] = delta.in_flight_now
        for p in delta.phases.values():
            self.live["sent"] += p.sent
            self.live["success"] += p.success
            self.live["failure"] += p.failure
            self.live["dropped"] += p.dropped
        if self.metrics is not None:
            self.metrics.observe(delta, source)

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        wire = data.get("inferload")
        if wire:
            self.add(RecordData.from_wire(wire), client_id)

    def on_final(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        self.add(RecordData.from_wire(msg.data["delta"]), msg.node_id)
        self.in_flight[msg.node_id] = 0
        self.finals.add(msg.node_id)
