"""Triton's model-configuration extension for a loaded model: the JSON form that `GET /v2/models/{m}/config` answers
and that the gRPC `ModelConfig` call sends as a `inference.ModelConfig` message (server/oip_grpc/codec.py), as
perf_analyzer and tritonclient read it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.dtypes import TRITON_CONFIG_TYPES
from server.providers import execution_accelerators
from server.runtime import TensorSpec

if TYPE_CHECKING:
    from server.service import LoadedModel


def triton_config(lm: LoadedModel) -> dict[str, Any]:
    cfg = lm.cfg

    def io(specs: list[TensorSpec]) -> list[dict[str, Any]]:
        out = []
        for s in specs:
            dims = list(s.shape[1:])
            item: dict[str, Any] = {"name": s.name, "data_type": TRITON_CONFIG_TYPES.get(s.datatype, s.datatype)}
            if dims:
                item["dims"] = dims
            else:  # Triton spells a batch-only tensor as dims [1] reshaped to []
                item["dims"] = [1]
                item["reshape"] = {"shape": []}
            out.append(item)
        return out

    b = cfg.batching
    policy: dict[str, Any] = {"max_queue_size": b.max_queue_size, "timeout_action": "REJECT"}
    if b.default_timeout_ms is not None:
        policy["default_timeout_microseconds"] = int(b.default_timeout_ms * 1000)
    return {
        "name": cfg.name,
        "platform": cfg.platform,
        "backend": "onnxruntime",
        "version_policy": {"specific": {"versions": [cfg.version]}},
        "max_batch_size": cfg.max_batch_size,
        "input": io(lm.inputs),
        "output": io(lm.outputs),
        "dynamic_batching": {
            "max_queue_delay_microseconds": int(round(b.max_queue_delay_ms * 1000)),
            "preferred_batch_size": list(b.preferred_batch_sizes),
            "default_queue_policy": policy,
        },
        **execution_accelerators(cfg.name, cfg.instances.count, cfg.instances.provider, lm.execution_providers),
    }
