"""Pure batching helpers: stack requests into one batch, split outputs back, and the batching signature.

No I/O, no threads: numpy only. The batcher only puts requests with equal `signature` into one batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def signature(inputs: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
    """(name, dtype, shape[1:]) per input, sorted by name. Requests batch together only if equal. (The dtype
    object, not its string: `dtype.str` builds a new string per call, on the hot path of every request.)"""
    if len(inputs) == 1:
        for name, arr in inputs.items():
            return ((name, arr.dtype, arr.shape[1:]),)
    return tuple(sorted((name, arr.dtype, arr.shape[1:]) for name, arr in inputs.items()))


def collate(requests: Sequence[Mapping[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Stack requests along axis 0 → (batch inputs, per-request item counts).

    A single request is returned as is (a new dict holding the same arrays: no copy of the data).
    Raises ValueError on an empty sequence or on requests that do not share names, dtypes and trailing dims.
    """
    if not requests:
        raise ValueError("collate needs at least one request")
    first = requests[0]
    if len(requests) == 1:
        arrays = dict(first)
        return arrays, [rows(arrays)]
    names = first.keys()
    sizes = [rows(r) for r in requests]
    batch: dict[str, np.ndarray] = {}
    for name in names:
        parts = []
        dtype = first[name].dtype
        for r in requests:
            if r.keys() != names:
                raise ValueError(f"requests have different inputs: {sorted(names)} vs {sorted(r.keys())}")
            a = r[name]
            if a.dtype != dtype:
                raise ValueError(f"input '{name}': dtype {a.dtype} differs from {dtype} (requests do not batch)")
            parts.append(a)
        batch[name] = np.concatenate(parts, axis=0)
    return batch, sizes


def split(outputs: Mapping[str, np.ndarray], sizes: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Give each request its rows of every output (views, no copy).

    Raises ValueError if an output is 0-d or its dim 0 differs from sum(sizes).
    """
    total = sum(sizes)
    for name, arr in outputs.items():
        if arr.ndim == 0 or arr.shape[0] != total:
            got = "a scalar" if arr.ndim == 0 else f"dim 0 = {arr.shape[0]}"
            raise ValueError(f"output '{name}' has {got}, expected {total} rows (one per batched item)")
    parts: list[dict[str, np.ndarray]] = []
    start = 0
    for n in sizes:
        stop = start + n
        parts.append({name: arr[start:stop] for name, arr in outputs.items()})
        start = stop
    return parts


def rows(inputs: Mapping[str, np.ndarray]) -> int:
    """The batch dimension of one request: every input's first axis, which must agree (ValueError otherwise).
    The one definition: the batcher checks it (and max_batch_size) once at submission; collate relies on it."""
    n = None
    for name, arr in inputs.items():
        if arr.ndim == 0:
            raise ValueError(f"input '{name}' is a scalar; it needs a batch dimension")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise ValueError(f"inputs disagree on the batch dimension ('{name}' has {arr.shape[0]} rows, others {n})")
    if n is None:
        raise ValueError("a request needs at least one input")
    return int(n)
