"""The model's signature: its inputs and outputs from OIP metadata and the Triton config, with item shapes (the batch
dimension excluded when the model batches, as perf_analyzer's ModelParser does), and the shape rules of --shape and
--input-data (`resolve_shape`). Pure: no I/O, no gevent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadgen.engine.tensors import PayloadError

# ---------------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelTensor:
    name: str
    datatype: str
    dims: list[int]
    """Without the batch dimension when the model batches; -1 = variable."""
    optional: bool = False


@dataclass(frozen=True)
class Signature:
    name: str
    batched: bool
    max_batch_size: int
    inputs: list[ModelTensor]
    outputs: list[ModelTensor]

    def batch_note(self) -> str:
        if self.batched:
            bound = f"max_batch_size {self.max_batch_size}" if self.max_batch_size else "first dimension -1"
            return f"without the batch dimension: model {self.name} batches ({bound})"
        return f"model {self.name} does not batch: its full shape"


def signature(info: dict[str, Any]) -> Signature:
    """What the model takes and gives, from OIP metadata (+ the Triton config when offered: max_batch_size says
    whether the first dimension is the batch, its dims fill variable metadata dims, `optional` marks inputs)."""
    meta = info["metadata"]
    cfg = info.get("config") or {}
    max_bs = int(cfg.get("max_batch_size", 0) or 0)
    ins, outs = meta.get("inputs") or [], meta.get("outputs") or []
    if info.get("config"):
        batched = max_bs > 0
    else:
        batched = bool(ins) and all(len(i.get("shape") or []) > 0 and int(i["shape"][0]) == -1 for i in ins)

    def tensors(items: list[dict[str, Any]], cfg_items: Any) -> list[ModelTensor]:
        by_name = {c.get("name"): c for c in (cfg_items or []) if isinstance(c, dict)}
        out = []
        for t in items:
            shape = [int(d) for d in t.get("shape") or []]
            dims = shape[1:] if batched and shape else shape
            c = by_name.get(t["name"], {})
            cdims = c.get("dims")
            if isinstance(cdims, list) and len(cdims) == len(dims) and "reshape" not in c:
                dims = [d if d != -1 else int(cd) for d, cd in zip(dims, cdims)]
            out.append(ModelTensor(t["name"], t["datatype"], dims, bool(c.get("optional", False))))
        return out

    return Signature(
        str(meta.get("name", "")), batched, max_bs, tensors(ins, cfg.get("input")), tensors(outs, cfg.get("output"))
    )


def resolve_shape(sig: Signature, t: ModelTensor, given: list[int] | None, source: str, count: int | None) -> list[int]:
    """The item shape of one tensor: `given` (checked against the model; `source` names it in the message), else the
    model's dims, else the one variable dim inferred from `count` values. Raises PayloadError (callers add where)."""
    dims = t.dims
    if given is not None:
        if len(given) != len(dims) or any(d != -1 and g != d for g, d in zip(given, dims)):
            raise PayloadError(f"{source} does not fit the model's {dims} ({sig.batch_note()}; -1 = any size)")
        return list(given)
    if all(d >= 0 for d in dims):
        return list(dims)
    if count is not None and dims.count(-1) == 1:
        fixed = math.prod(d for d in dims if d != -1)
        if fixed and count % fixed == 0:
            return [count // fixed if d == -1 else d for d in dims]
    raise PayloadError(
        f'variable dimensions {dims} ({sig.batch_note()}): give a "shape" in the file or --shape '
        f"{t.name}:{','.join('N' if d == -1 else str(d) for d in dims)}"
    )


@dataclass
class InputSpec:
    name: str
    datatype: str
    shape: list[int]  # concrete, batch included when the model batches


def input_specs(info: dict[str, Any], batch: int, shapes: dict[str, list[int]] | None = None) -> list[InputSpec]:
    """Concrete request shapes of the model's inputs for random data: the model's dims, `shapes` (--shape: the dims
    after the batch dimension when the model batches, as perf_analyzer's) for variable ones, [batch] in front when
    the model batches."""
    sig = signature(info)
    shapes = shapes or {}
    check_shape_names(sig, shapes)
    if not sig.inputs:
        raise PayloadError(f"model {sig.name} lists no inputs in its metadata")
    if not sig.batched and batch != 1:
        raise PayloadError(f"model {sig.name} does not batch (max_batch_size 0); use --batch 1")
    if sig.max_batch_size and batch > sig.max_batch_size:
        raise PayloadError(f"--batch {batch} exceeds the model's max_batch_size {sig.max_batch_size}")
    specs = []
    for t in sig.inputs:
        try:
            given = shapes.get(t.name)
            source = f"--shape {t.name}:{','.join(str(d) for d in given or [])}"
            item = resolve_shape(sig, t, given, source, None)
        except PayloadError as e:
            raise PayloadError(f"input {t.name!r}: {e}") from None
        specs.append(InputSpec(t.name, t.datatype, ([batch] if sig.batched else []) + item))
    return specs


def check_shape_names(sig: Signature, shapes: dict[str, list[int]]) -> None:
    names = [t.name for t in sig.inputs]
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise PayloadError(f"--shape {unknown[0]}: model {sig.name} has no input {unknown[0]!r} (inputs: {names})")
