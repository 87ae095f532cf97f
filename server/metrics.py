"""Every Prometheus metric of the server, on one injected CollectorRegistry. Names are pinned (dashboards).

Label values come only from the loaded repository: children are pre-created at load (series exist at 0)
and an unknown model name in a URL only bumps `inferload_http_unknown_model_total`, which has no labels.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

OUTCOMES = ("success", "rejected", "timeout", "invalid", "error", "cancelled")
DROP_REASONS = ("cancelled", "timeout")
LATENCY_BUCKETS = (
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
    10.0,
    20.0,
    30.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.requests = Counter(
            "inferload_requests",
            "Inference requests by model and outcome (success|rejected|timeout|invalid|error|cancelled).",
            ["model", "outcome"],
            registry=r,
        )
        self.request_duration = Histogram(
            "inferload_request_duration_seconds",
            "Inference request time in the server, body read to response.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            "inferload_queue_duration_seconds",
            "Time a request waited in the batcher queue.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.preprocess_duration = Histogram(
            "inferload_preprocess_duration_seconds",
            "Decode, validation and image preprocessing time per request.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_duration = Histogram(
            "inferload_compute_duration_seconds",
            "Model execution time of the batch that carried the request (per request).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "inferload_batch_size", "Items per executed batch.", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.items = Counter("inferload_inference_items", "Items (batch rows) executed.", ["model"], registry=r)
        self.executions = Counter(
            "inferload_inference_executions", "Model executions (batches run).", ["model"], registry=r
        )
        self.queue_depth = Gauge(
            "inferload_queue_depth", "Requests waiting in the batcher queue.", ["model"], registry=r
        )
        self.inflight = Gauge(
            "inferload_inflight_requests",
            "Inference requests admitted: being read, decoded, queued or running (capped by the admission limit).",
            ["model"],
            registry=r,
        )
        self.admission_limit = Gauge(
            "inferload_admission_limit",
            "Most inference requests a model admits at once (see inferload_inflight_requests).",
            ["model"],
            registry=r,
        )
        self.busy = Counter(
            "inferload_instance_busy_seconds",
            "Seconds a model instance spent executing (utilisation = rate).",
            ["model", "instance"],
            registry=r,
        )
        self.model_ready = Gauge(
            "inferload_model_ready",
            "1 when the model is loaded, warmed up and accepting requests.",
            ["model"],
            registry=r,
        )
        self.dropped = Counter(
            "inferload_queue_dropped",
            "Requests removed from the queue before compute (cancelled|timeout).",
            ["model", "reason"],
            registry=r,
        )
        self.unknown_model = Counter(
            "inferload_http_unknown_model",
            "Requests naming a model that is not loaded (no model label on purpose).",
            registry=r,
        )

    def add_model(self, model: str, instances: int) -> None:
        """Pre-create every labelled child so all series exist (at 0) from load time."""
        for o in OUTCOMES:
            self.requests.labels(model, o)
        for h in (
            self.request_duration,
            self.queue_duration,
            self.preprocess_duration,
            self.compute_duration,
            self.batch_size,
        ):
            h.labels(model)
        self.items.labels(model)
        self.executions.labels(model)
        self.queue_depth.labels(model).set(0)
        self.inflight.labels(model).set(0)
        for i in range(instances):
            self.busy.labels(model, str(i))
        self.model_ready.labels(model).set(0)
        for reason in DROP_REASONS:
            self.dropped.labels(model, reason)

    def observer(self, model: str) -> BatcherObserver:
        return BatcherObserver(self, model)

    def expose(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ModelMetrics:
    """The children of one model, resolved once (labels() lookups are not free on the hot path)."""

    def __init__(self, m: ServerMetrics, model: str) -> None:
        self.outcome = {o: m.requests.labels(model, o) for o in OUTCOMES}
        self.request_duration = m.request_duration.labels(model)
        self.queue_duration = m.queue_duration.labels(model)
        self.preprocess_duration = m.preprocess_duration.labels(model)
        self.compute_duration = m.compute_duration.labels(model)
        self.inflight = m.inflight.labels(model)


class BatcherObserver:
    """Implements the DynamicBatcher observer protocol for one model."""

    def __init__(self, m: ServerMetrics, model: str) -> None:
        self._m = m
        self._model = model
        self._depth = m.queue_depth.labels(model)
        self._batch = m.batch_size.labels(model)
        self._items = m.items.labels(model)
        self._execs = m.executions.labels(model)
        self._busy: dict[str, Counter] = {}

    def on_queue_depth(self, depth: int) -> None:
        self._depth.set(depth)

    def on_batch(self, instance, batch_items: int, n_requests: int, compute_s: float) -> None:
        self._batch.observe(batch_items)
        self._items.inc(batch_items)
        self._execs.inc()
        key = str(instance)
        child = self._busy.get(key)
        if child is None:
            child = self._busy[key] = self._m.busy.labels(self._model, key)
        child.inc(max(0.0, compute_s))

    def on_dropped(self, reason: str) -> None:
        if reason in DROP_REASONS:
            self._m.dropped.labels(self._model, reason).inc()
