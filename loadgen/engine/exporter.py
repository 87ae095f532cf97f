"""Prometheus metrics of the load generator (pinned names; dashboards use them).

Updated at the master (or the single local process) from recorder deltas — in distributed mode from the
merged worker reports — so the exposition covers every worker. Metrics cover all phases (warm-up included):
they are for watching a run live; the result JSON is the measurement.

    inferload_loadgen_offered_requests_total          requests issued (sent) by the generator
    inferload_loadgen_requests_total{outcome}         completed requests, outcome = success | failure
    inferload_loadgen_errors_total{status}            failures by HTTP status or exception kind
    inferload_loadgen_latency_seconds                 histogram of success latency from the scheduled instant
    inferload_loadgen_in_flight                       requests in flight (sum over workers)
    inferload_loadgen_delayed_requests_total          requests sent later than late_threshold_ms (default 2 ms) after their scheduled instant
    inferload_loadgen_dropped_requests_total          open-loop requests dropped at the in-flight cap
    inferload_loadgen_target_rate_rps                 open-loop target rate (0 in closed loop)
    inferload_loadgen_users                           closed-loop users (0 in open loop)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from loadgen.results.analysis import recorded_values
from loadgen.results.recorded import PHASES, RecordData

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
)


class LoadgenMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.offered = Counter(
            "inferload_loadgen_offered_requests", "Requests issued by the load generator", registry=r
        )
        self.requests = Counter("inferload_loadgen_requests", "Completed requests by outcome", ["outcome"], registry=r)
        self.errors = Counter(
            "inferload_loadgen_errors", "Failed requests by HTTP status or exception", ["status"], registry=r
        )
        self.latency = Histogram(
            "inferload_loadgen_latency_seconds",
            "Success latency measured from the scheduled instant",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge("inferload_loadgen_in_flight", "Requests in flight", registry=r)
        self.delayed = Counter(
            "inferload_loadgen_delayed_requests",
            "Requests sent later than the late threshold (default 2 ms) after their scheduled instant",
            registry=r,
        )
        self.dropped = Counter(
            "inferload_loadgen_dropped_requests", "Open-loop requests dropped at the in-flight cap", registry=r
        )
        self.target_rate = Gauge("inferload_loadgen_target_rate_rps", "Open-loop target rate", registry=r)
        self.users = Gauge("inferload_loadgen_users", "Closed-loop users", registry=r)
        for o in ("success", "failure"):
            self.requests.labels(outcome=o)
        self._in_flight_by_source: dict[str, int] = {}

    def set_load(self, *, rate_rps: float | None, users: int | None) -> None:
        self.target_rate.set(rate_rps or 0)
        self.users.set(users or 0)

    def observe(self, delta: RecordData, source: str = "local") -> None:
        """Account one recorder delta (local take or a decoded worker report)."""
        for p in PHASES:
            d = delta.phases[p]
            if d.sent:
                self.offered.inc(d.sent)
            if d.success:
                self.requests.labels(outcome="success").inc(d.success)
            if d.failure:
                self.requests.labels(outcome="failure").inc(d.failure)
            for k, v in d.errors.items():
                self.errors.labels(status=k).inc(v)
            if d.delayed:
                self.delayed.inc(d.delayed)
            if d.dropped:
                self.dropped.inc(d.dropped)
            h = d.hists.get("success")
            if h is not None and h.get_total_count():
                observe = self.latency.observe
                for v_us, count in recorded_values(h):
                    v = v_us / 1e6
                    for _ in range(count):
                        observe(v)
        self._in_flight_by_source[source] = delta.in_flight_now
        self.in_flight.set(sum(self._in_flight_by_source.values()))


class MetricsServer:
    """prometheus_client's HTTP server on addr:port for a registry; stop() frees the port.

    The address defaults to loopback; containers set INFERLOAD_METRICS_ADDR=0.0.0.0 so Prometheus can scrape.
    """

    def __init__(self, metrics: LoadgenMetrics, port: int, addr: str | None = None) -> None:
        import os

        from prometheus_client import start_http_server

        addr = addr or os.environ.get("INFERLOAD_METRICS_ADDR", "127.0.0.1")

        res: Any = start_http_server(port, addr=addr, registry=metrics.registry)
        self._server = res[0] if isinstance(res, tuple) else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
