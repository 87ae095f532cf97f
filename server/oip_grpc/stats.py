"""Triton's ModelStatistics from the server's own metrics (server/metrics.py): cumulative counts and durations since
start, both protocols together, as perf_analyzer reads them to split its latency into server queue and compute.

success/fail: requests and their time in the server (body read to response); queue: time in the batcher queue;
compute_infer: the model execution of the batch that carried each request (compute_input/compute_output are part
of it here: the ONNX Runtime run takes and returns the tensors; they carry the same count and 0 ns, as perf_analyzer
requires equal counts). inference_count: items (batch rows) executed;
execution_count: batches run. The server's histograms do not split request time by outcome, so `success` and
`fail` each carry their count times the mean request time.
"""

from __future__ import annotations

from typing import Any

from server.metrics import PROTOCOLS, ServerMetrics
from server.oip_grpc import message

ModelStatisticsResponse = message("inference.ModelStatisticsResponse")


def _duration(count: float, seconds: float) -> dict[str, int]:
    return {"count": int(count), "ns": int(seconds * 1e9)}


def statistics(models: list[Any], metrics: ServerMetrics) -> Any:
    out = []
    for lm in models:
        parts = [metrics.model(lm.name, p) for p in PROTOCOLS]
        ok = sum(p.outcome["success"].value for p in parts)
        failed = sum(p.outcome[o].value for p in parts for o in p.outcome if o != "success")
        total_count = sum(sum(p.request_duration.counts) for p in parts)
        total_s = sum(p.request_duration.sum for p in parts)
        mean_s = total_s / total_count if total_count else 0.0
        computed = sum(sum(p.compute_duration.counts) for p in parts)
        observer = metrics.observer(lm.name)
        out.append(
            {
                "name": lm.name,
                "version": lm.version,
                "inference_count": int(sum(s.items.value for s in observer.instances)),
                "execution_count": int(sum(s.executions.value for s in observer.instances)),
                "inference_stats": {
                    "success": _duration(ok, mean_s * ok),
                    "fail": _duration(failed, mean_s * failed),
                    "queue": _duration(
                        sum(sum(p.queue_duration.counts) for p in parts), sum(p.queue_duration.sum for p in parts)
                    ),
                    "compute_input": _duration(computed, 0.0),
                    "compute_infer": _duration(computed, sum(p.compute_duration.sum for p in parts)),
                    "compute_output": _duration(computed, 0.0),
                },
            }
        )
    return ModelStatisticsResponse(model_stats=out)
