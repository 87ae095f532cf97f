"""What the configuration advisor writes: its checkpoint, the Pareto frontier, the tune document (`tune.json`,
`kind: "tune"`) and the recommended configuration as a ready `models/<name>/config.toml`.

- **Checkpoint** (`Checkpoint(path, meta)`): a JSON file of every measurement, keyed by configuration name (a
  list per name: re-measurements append). Written atomically after each new measurement; a search given
  `recorded=checkpoint.load()` and `on_new=checkpoint.record` resumes where an interrupted one stopped, measuring
  nothing twice. `meta` (model, SLO, space, ...) must match the file's, else `CheckpointError`: measurements
  taken under another SLO or space would silently mislead the ranking.
- **Pareto frontier** (`pareto_frontier`): over feasible configurations, those no other beats on both p99 at low
  load (lower is better) and throughput (higher is better); sorted by throughput.
- **config.toml** (`render_config_toml`): the model's current config (a dict, as read by tomllib) with the tuned
  keys set — `max_batch_size`, `[batching] max_queue_delay_ms, preferred_batch_sizes`, `[instances] count,
  intra_op_threads` — written back as TOML the server's `ModelConfig` accepts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.results.io import write_json
from loadgen.results.schema import SCHEMA_VERSION
from loadgen.search.tune import Evaluated, Measurement, TuneConfig, TuneResult


class CheckpointError(ValueError):
    """The checkpoint file cannot be used for this search; the message says why and what to do."""


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    def load(self) -> dict[str, list[Measurement]]:
        """Earlier measurements by configuration name ({} when there is no file yet)."""
        p = Path(self.path)
        if not p.exists():
            return {}
        try:
            doc = json.loads(p.read_text())
            if doc.get("kind") != "tune-checkpoint":
                raise ValueError("not a tune checkpoint")
            recorded = {name: [Measurement.from_dict(m) for m in ms] for name, ms in doc["measurements"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{p}: unreadable checkpoint ({e}); delete it to start afresh") from None
        if doc.get("meta") != self.meta:
            raise CheckpointError(
                f"{p}: written for another search (meta {doc.get('meta')!r} != {self.meta!r}); "
                "use the same options to resume, or delete the file to start afresh"
            )
        self._data = recorded
        return {k: list(v) for k, v in recorded.items()}

    def record(self, config: TuneConfig, m: Measurement) -> None:
        """Append one new measurement and rewrite the file atomically."""
        data: dict[str, list[Measurement]] = getattr(self, "_data", None) or {}
        data.setdefault(config.name, []).append(m)
        self._data = data
        doc = {
            "kind": "tune-checkpoint",
            "meta": self.meta,
            "measurements": {k: [x.to_dict() for x in v] for k, v in data.items()},
        }
        write_json(self.path, doc)


def _throughput(e: Evaluated, r: TuneResult) -> float | None:
    return r.constraints.throughput_of(e.pooled)


def pareto_frontier(result: TuneResult) -> list[Evaluated]:
    """Feasible configurations not dominated on (p99 at low load: lower, throughput: higher); by throughput."""
    pts: list[tuple[Evaluated, float, float]] = []
    for e in result.evaluated:
        t, p = _throughput(e, result), e.pooled.p99_low_load_ms
        if not e.violations and t is not None and p is not None:
            pts.append((e, t, p))
    front = [e for e, t, p in pts if not any(t2 >= t and p2 <= p and (t2 > t or p2 < p) for _, t2, p2 in pts)]
    return sorted(front, key=lambda e: (_throughput(e, result) or 0.0, e.config.name))


def _evaluated_row(e: Evaluated, r: TuneResult, ref: float | None) -> dict[str, Any]:
    return {
        **e.config.to_dict(),
        "measurements": [m.to_dict() for m in e.measurements],
        "pooled": e.pooled.to_dict(),
        "throughput_rps": _throughput(e, r),
        "score": e.score,
        "score_vs_start": None if e.score is None or not ref else e.score / ref,
        "feasible": e.feasible,
        "violations": list(e.violations),
    }


def tune_document(
    result: TuneResult,
    *,
    model: str,
    sizing: dict[str, Any] | None = None,
    config_toml: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON-able tune document (`kind: "tune"`): every configuration measured, ranking, Pareto frontier,
    recommendation. `loadgen.results.comparison` reads it."""
    start = next((e for e in result.evaluated if e.config == result.start), None)
    ref = start.score if start is not None else None
    rec = result.recommended
    o, c = result.objective, result.constraints
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "tune",
        "model": model,
        "method": result.method,
        "objective": {
            "name": o.name,
            "throughput_weight": o.throughput,
            "latency_weight": o.latency,
            "formula": "score = T^wt / L^wl (T: peak under the SLO, else max throughput, req/s; "
            "L: p99 at low load, ms); score_vs_start divides by the start's score",
        },
        "constraints": {
            "slo_p99_ms": c.slo_p99_ms,
            "min_throughput_rps": c.min_throughput_rps,
            "max_memory_mb": c.max_memory_mb,
        },
        "start": result.start.name,
        "configs": [_evaluated_row(e, result, ref) for e in result.evaluated],
        "ranking": list(result.ranking),
        "pareto": [e.config.name for e in pareto_frontier(result)],
        "recommended": None if rec is None else rec.to_dict(),
        "recommended_pooled": None if rec is None else result.by_name(rec.name).pooled.to_dict(),
        "steps": [
            {
                "dimension": s.dimension,
                "config": s.config,
                "gain": None if math.isinf(s.gain) else s.gain,
                "accepted": s.accepted,
            }
            for s in result.steps
        ],
        "measure_calls": result.measure_calls,
        "reused_from_checkpoint": result.reused,
        "sizing": sizing,
        "config_toml": config_toml,
        "notes": list(notes or []),
    }


# ---- config.toml ---------------------------------------------------------------------------------------
def tuned_config(base: dict[str, Any], cfg: TuneConfig) -> dict[str, Any]:
    """The model's config dict with the tuned keys set (`name`, which the folder gives, is dropped)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items() if k != "name"}
    out["max_batch_size"] = cfg.max_batch_size
    out.setdefault("batching", {})
    out["batching"]["max_queue_delay_ms"] = float(cfg.max_queue_delay_ms)
    out["batching"]["preferred_batch_sizes"] = list(cfg.preferred_batch_sizes)
    adm = out["batching"].get("max_admitted")
    need = cfg.instances * cfg.max_batch_size + 1
    if isinstance(adm, int) and adm < need:
        out["batching"]["max_admitted"] = need  # at least a batch on every instance, or batches never fill
    out.setdefault("instances", {})
    out["instances"]["count"] = cfg.instances
    out["instances"]["intra_op_threads"] = cfg.intra_op_threads
    if out["instances"].get("provider", "cpu") != cfg.provider:
        out["instances"].pop("provider_options", None)  # options of the provider it replaces
    out["instances"]["provider"] = cfg.provider
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to config.toml")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write a {type(v).__name__} to config.toml")


def render_config_toml(base: dict[str, Any], cfg: TuneConfig, *, header: list[str] | None = None) -> str:
    """`models/<name>/config.toml` text: `base` (the current config as tomllib read it) with `cfg` applied.
    Scalars first, then one `[table]` per section, in the order the README documents them."""
    d = tuned_config(base, cfg)
    lines = [f"# {h}" for h in header or []]
    for k, v in d.items():
        if v is not None and not isinstance(v, dict):
            lines.append(f"{k} = {_toml_value(v)}")
    order = ["batching", "instances", "image"]
    tables = sorted(
        (k for k, v in d.items() if isinstance(v, dict)),
        key=lambda k: (order.index(k) if k in order else len(order), k),
    )
    for k in tables:
        lines += ["", f"[{k}]"]
        lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in d[k].items() if vv is not None and not isinstance(vv, dict)]
        for kk, vv in d[k].items():  # sub-tables, e.g. [instances.provider_options]
            if isinstance(vv, dict):
                lines += ["", f"[{k}.{kk}]"] + [f"{a} = {_toml_value(b)}" for a, b in vv.items() if b is not None]
    return "\n".join(lines) + "\n"


def tune_sizing(result: TuneResult, target_rps: float, headroom: float = 0.2) -> dict[str, Any] | None:
    """Replicas of the recommended configuration for `target_rps` (loadgen.search.sizing, from its pooled peak; without
    an SLO, from its max throughput)."""
    from loadgen.search.sizing import size_replicas

    if result.recommended is None:
        return None
    e = result.by_name(result.recommended.name)
    per = result.constraints.throughput_of(e.pooled) or 0.0
    curve = [(e.pooled.peak_rps, e.pooled.p99_at_peak_ms)] if e.pooled.peak_rps and e.pooled.p99_at_peak_ms else []
    out = size_replicas(target_rps, per, headroom=headroom, curve=curve, slo_ms=result.constraints.slo_p99_ms)
    out["configuration"] = result.recommended.name
    return out
