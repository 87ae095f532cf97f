"""Every Prometheus metric of the server, on one injected CollectorRegistry. Names are pinned (dashboards).

Label values come only from the loaded repository: children are pre-created at load (series exist at 0)
and an unknown model name in a URL only bumps `inferload_http_unknown_model_total`, which has no labels.

The metrics a request updates (outcome counter, duration histograms; per batch: batch size, items, executions,
busy seconds; queue depth and requests admitted) are plain numbers in `HotCounter`s and `HotHistogram`s, exposed by
`HotCollector` at scrape time: no lock, no `prometheus_client` code on the request path. Each is written by one
thread only: the request metrics by the event loop, a model instance's batch metrics by that instance's worker
thread (one set per instance, summed at scrape); the queue depth is a value the batcher sets under its lock and the
admitted count is read from the model's `Admission`. A scrape may see one request counted in its outcome and not yet
in a histogram (as with `prometheus_client`'s own per-bucket locks), never a torn number. Rare events (dropped
requests, unknown models, readiness, limits) stay `prometheus_client` metrics.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

OUTCOMES = ("success", "rejected", "timeout", "invalid", "error", "cancelled")
PROTOCOLS = ("http", "grpc")
"""The `protocol` label of the request metrics: the front end that took the request (REST or gRPC)."""
DROP_REASONS = ("cancelled", "timeout")
# inferload_http_path_requests_total{path, reason}: which path served an infer request and why (server/dispatch.py
# holds the rule). The fast path: admitted, or refused at admission (503 from the protocol). The ASGI path: the fast
# path's state (it is off, failed its self-check, or is unavailable), or the first condition the request failed.
HTTP_PATH_REASONS: dict[str, tuple[str, ...]] = {
    "fast": ("admitted", "refused"),
    "asgi": (
        "fast_path_off",
        "self_check_failed",
        "fast_path_unavailable",
        "target_form",
        "query",
        "http_version",
        "upgrade",
        "expect_continue",
        "pipelined",
        "connection_limit",
        "not_serving",
        "head_too_large",
        "content_length",
        "content_type",
        "body_too_large",
        "header_length",
        "unknown_model",
        "not_ready",
        "image_model",
        "unauthorized",
    ),
}
FAST_PATH_STATES = ("on", "off", "self_check_failed", "unavailable")
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

_HELP = {
    "inferload_requests": (
        "Inference requests by model, outcome (success|rejected|timeout|invalid|error|cancelled) and protocol (http|grpc)."
    ),
    "inferload_request_duration_seconds": "Inference request time in the server, body read to response.",
    "inferload_queue_duration_seconds": "Time a request waited in the batcher queue.",
    "inferload_preprocess_duration_seconds": "Decode, validation and image preprocessing time per request.",
    "inferload_compute_duration_seconds": "Model execution time of the batch that carried the request (per request).",
    "inferload_batch_size": "Items per executed batch.",
    "inferload_inference_items": "Items (batch rows) executed.",
    "inferload_inference_executions": "Model executions (batches run).",
    "inferload_instance_busy_seconds": "Seconds a model instance spent executing (utilisation = rate).",
    "inferload_queue_depth": "Requests waiting in the batcher queue.",
    "inferload_inflight_requests": (
        "Inference requests admitted: being read, decoded, queued or running (capped by the admission limit)."
    ),
    "inferload_http_path_requests": (
        "Inference requests by the HTTP path that served them (fast|asgi) and why (see server/dispatch.py)."
    ),
}


class HotCounter:
    """A counter with one writer thread: a plain number."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HotHistogram:
    """A histogram with one writer thread: per-bucket counts (non-cumulative) and the sum; `le` bounds as
    `prometheus_client.Histogram` (an observation goes to the first bucket whose bound is >= it)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = (*(float(b) for b in buckets), math.inf)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


def _add_histogram(fam: HistogramMetricFamily, labels: list[str], parts: list[HotHistogram]) -> None:
    bounds = parts[0].bounds
    counts = [sum(p.counts[i] for p in parts) for i in range(len(bounds))]
    cumulative, total = [], 0
    for bound, n in zip(bounds, counts):
        total += n
        cumulative.append(("+Inf" if math.isinf(bound) else _le(bound), total))
    fam.add_metric(labels, cumulative, sum_value=sum(p.sum for p in parts))


def _le(bound: float) -> str:
    return floatToGoString(bound)  # prometheus_client's own formatting of `le` values (0.0005, 1.0, 8.0)


class ModelMetrics:
    """The request metrics of one model, written by the event loop."""

    def __init__(self) -> None:
        self.outcome = {o: HotCounter() for o in OUTCOMES}
        self.request_duration = HotHistogram(LATENCY_BUCKETS)
        self.queue_duration = HotHistogram(LATENCY_BUCKETS)
        self.preprocess_duration = HotHistogram(LATENCY_BUCKETS)
        self.compute_duration = HotHistogram(LATENCY_BUCKETS)


class HttpPaths:
    """How many infer requests took each HTTP path, and why: plain numbers, written by the event loop (the fast path
    counts in the protocol, the ASGI path in `InferloadApp`). A reason outside `HTTP_PATH_REASONS` is a KeyError."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = {path: dict.fromkeys(reasons, 0) for path, reasons in HTTP_PATH_REASONS.items()}

    def inc(self, path: str, reason: str) -> None:
        self.counts[path][reason] += 1

    def get(self, path: str, reason: str) -> int:
        return self.counts[path][reason]


class _InstanceStats:
    __slots__ = ("batch", "items", "executions", "busy")

    def __init__(self) -> None:
        self.batch = HotHistogram(BATCH_BUCKETS)
        self.items = HotCounter()
        self.executions = HotCounter()
        self.busy = HotCounter()


class BatcherObserver:
    """Implements the DynamicBatcher observer protocol for one model: per-instance batch metrics (each written by its
    instance's worker thread), the queue depth (set under the batcher's lock) and the dropped-request counter."""

    def __init__(self, dropped: Counter, model: str, instances: int) -> None:
        self.instances = [_InstanceStats() for _ in range(instances)]
        self.depth = 0
        self._dropped = {r: dropped.labels(model, r) for r in DROP_REASONS}

    def on_queue_depth(self, depth: int) -> None:
        self.depth = depth

    def on_batch(self, instance: int, batch_items: int, n_requests: int, compute_s: float) -> None:
        s = self.instances[instance]
        s.batch.observe(batch_items)
        s.items.value += batch_items
        s.executions.value += 1
        s.busy.value += compute_s if compute_s > 0.0 else 0.0

    def on_dropped(self, reason: str) -> None:
        child = self._dropped.get(reason)
        if child is not None:
            child.inc()


class _Model:
    __slots__ = ("requests", "observer", "admitted")

    def __init__(self, requests: dict[str, ModelMetrics], observer: BatcherObserver) -> None:
        self.requests = requests  # by protocol
        self.observer = observer
        self.admitted: Callable[[], int] = lambda: 0


class HotCollector(Collector):
    """Exposes the hot metrics of every model at scrape time."""

    def __init__(self) -> None:
        self.models: dict[str, _Model] = {}
        self.http_paths = HttpPaths()

    def collect(self) -> Iterator[Metric]:
        paths = CounterMetricFamily(
            "inferload_http_path_requests", _HELP["inferload_http_path_requests"], labels=["path", "reason"]
        )
        for path, counts in self.http_paths.counts.items():
            for reason, n in counts.items():
                paths.add_metric([path, reason], n)
        yield paths
        models = list(self.models.items())
        req = CounterMetricFamily(
            "inferload_requests", _HELP["inferload_requests"], labels=["model", "outcome", "protocol"]
        )
        for name, m in models:
            for proto, mm in m.requests.items():
                for o in OUTCOMES:
                    req.add_metric([name, o, proto], mm.outcome[o].value)
        yield req
        for metric, attr in (
            ("inferload_request_duration_seconds", "request_duration"),
            ("inferload_queue_duration_seconds", "queue_duration"),
            ("inferload_preprocess_duration_seconds", "preprocess_duration"),
            ("inferload_compute_duration_seconds", "compute_duration"),
        ):
            fam = HistogramMetricFamily(metric, _HELP[metric], labels=["model", "protocol"])
            for name, m in models:
                for proto, mm in m.requests.items():
                    _add_histogram(fam, [name, proto], [getattr(mm, attr)])
            yield fam
        batch = HistogramMetricFamily("inferload_batch_size", _HELP["inferload_batch_size"], labels=["model"])
        items = CounterMetricFamily("inferload_inference_items", _HELP["inferload_inference_items"], labels=["model"])
        execs = CounterMetricFamily(
            "inferload_inference_executions", _HELP["inferload_inference_executions"], labels=["model"]
        )
        busy = CounterMetricFamily(
            "inferload_instance_busy_seconds", _HELP["inferload_instance_busy_seconds"], labels=["model", "instance"]
        )
        depth = GaugeMetricFamily("inferload_queue_depth", _HELP["inferload_queue_depth"], labels=["model"])
        inflight = GaugeMetricFamily(
            "inferload_inflight_requests", _HELP["inferload_inflight_requests"], labels=["model"]
        )
        for name, m in models:
            inst = m.observer.instances
            _add_histogram(batch, [name], [s.batch for s in inst])
            items.add_metric([name], sum(s.items.value for s in inst))
            execs.add_metric([name], sum(s.executions.value for s in inst))
            for i, s in enumerate(inst):
                busy.add_metric([name, str(i)], s.busy.value)
            depth.add_metric([name], m.observer.depth)
            inflight.add_metric([name], m.admitted())
        yield from (batch, items, execs, busy, depth, inflight)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.hot = HotCollector()
        r.register(self.hot)
        self.admission_limit = Gauge(
            "inferload_admission_limit",
            "Most inference requests a model admits at once (see inferload_inflight_requests).",
            ["model"],
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
        self.http_paths = self.hot.http_paths
        self.fast_path_state = Gauge(
            "inferload_http_fast_path",
            "1 for the infer fast path's state: on | off (setting) | self_check_failed | unavailable (no httptools).",
            ["state"],
            registry=r,
        )
        self.set_fast_path_state("unavailable")
        self.execution_provider = Gauge(
            "inferload_model_execution_provider",
            "1 for the ONNX Runtime execution provider a model's sessions run first (cpu, openvino, cuda, ...; "
            "what the session reports, not only what the config asked for).",
            ["model", "provider"],
            registry=r,
        )

    def set_fast_path_state(self, state: str) -> None:
        if state not in FAST_PATH_STATES:
            raise ValueError(f"unknown fast path state {state!r}")
        for s in FAST_PATH_STATES:
            self.fast_path_state.labels(s).set(1 if s == state else 0)

    def add_model(self, model: str, instances: int, provider: str = "cpu") -> None:
        """Create every series of `model` (at 0) from load time; `provider` is the one its sessions run (one series
        per model, so the label stays bounded by the repository)."""
        requests = {p: ModelMetrics() for p in PROTOCOLS}
        self.hot.models[model] = _Model(requests, BatcherObserver(self.dropped, model, instances))
        self.model_ready.labels(model).set(0)
        self.execution_provider.labels(model, provider).set(1)

    def model(self, model: str, protocol: str = "http") -> ModelMetrics:
        """The request metrics of `model` taken by `protocol`'s front end (a KeyError outside PROTOCOLS)."""
        return self.hot.models[model].requests[protocol]

    def observer(self, model: str) -> BatcherObserver:
        return self.hot.models[model].observer

    def track_admission(self, model: str, admitted: Callable[[], int]) -> None:
        """`inferload_inflight_requests{model}` reads `admitted()` at scrape."""
        self.hot.models[model].admitted = admitted

    def expose(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
