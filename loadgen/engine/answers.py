"""Reading OIP v2 answers on the client side: parse (JSON header + binary outputs), check the structure, decode
outputs by name, and compare them with validation_data. Pure: no I/O, no gevent (the load engine calls it on the
answers it samples, or on every answer when a data file gives expected outputs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from loadgen.engine.jsonpointer import loads_answer
from loadgen.engine.tensors import DTYPES, PayloadError, compare, parse_bytes_elements

Answer = tuple[dict[str, Any], int, int]
"""(JSON header, header length in the body, bytes of binary outputs after it)."""


def parse_answer(body: bytes, header_length: str | None) -> Answer | str:
    """The answer's JSON header and where its binary outputs start; a description of the problem otherwise."""
    try:
        if header_length is not None:
            hl = int(header_length)
            if not 0 < hl <= len(body):
                return f"Inference-Header-Content-Length {hl} outside the body ({len(body)} bytes)"
            head = loads_answer(body[:hl])
        else:
            hl = len(body)
            head = loads_answer(body)
    except (ValueError, orjson.JSONDecodeError) as e:
        return f"response is not OIP JSON: {e}"
    if not isinstance(head, dict):
        return "response is not an OIP JSON object"
    return head, hl, len(body) - hl


def structure_problem(head: dict[str, Any], binary_len: int, expected: list[str], batch: int | None) -> str | None:
    """Outputs present (the expected names among them), a batch-first shape when `batch` is given, binary sizes that
    add up to the bytes after the header, data in every output."""
    outs = head.get("outputs")
    if not isinstance(outs, list) or not outs or not all(isinstance(o, dict) for o in outs):
        return "response has no outputs"
    names = {o.get("name") for o in outs}
    missing = [n for n in expected if n not in names]
    if missing:
        return f"response lacks outputs {missing}"
    total_bin = 0
    for o in outs:
        shape = o.get("shape") or []
        if batch is not None and (not shape or shape[0] != batch):
            return f"output {o.get('name')} has shape {shape}, expected batch {batch} first"
        total_bin += int((o.get("parameters") or {}).get("binary_data_size", 0) or 0)
        if "data" not in o and not (o.get("parameters") or {}).get("binary_data_size"):
            return f"output {o.get('name')} carries no data"
    if total_bin != binary_len:
        return f"binary outputs declare {total_bin} bytes, body carries {binary_len}"
    return None


def decode_outputs(head: dict[str, Any], body: bytes, hl: int) -> dict[str, tuple[str, list[int], np.ndarray]]:
    """Output name → (datatype, shape, flat values): binary outputs read in order after the header, JSON data
    flattened; BYTES as bytes objects. Raises ValueError on a malformed output."""
    out: dict[str, tuple[str, list[int], np.ndarray]] = {}
    pos = hl
    for o in head["outputs"]:
        name, dt, shape = o.get("name"), o.get("datatype"), list(o.get("shape") or [])
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            chunk = body[pos : pos + int(size)]
            pos += int(size)
            if dt == "BYTES":
                try:
                    values = parse_bytes_elements(f"output {name!r}", chunk)
                except PayloadError as e:
                    raise ValueError(str(e)) from None
            elif dt in DTYPES:
                values = np.frombuffer(chunk, np.dtype(DTYPES[dt]))
            else:
                raise ValueError(f"output {name!r}: unknown datatype {dt}")
        else:
            flat = _flat(o.get("data"))
            if dt == "BYTES":
                values = np.empty(len(flat), object)
                values[:] = [s.encode("utf-8") if isinstance(s, str) else s for s in flat]
            elif dt in DTYPES:
                values = np.array([v if v is not None else np.nan for v in flat], np.float64 if "FP" in dt else None)
                if dt not in ("FP16", "FP32", "FP64"):
                    values = values.astype(np.dtype(DTYPES[dt]))
            else:
                raise ValueError(f"output {name!r}: unknown datatype {dt}")
        out[str(name)] = (str(dt), shape, values)
    return out


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(x, list) for x in data):
        return data
    flat: list[Any] = []
    for x in data:
        flat.extend(_flat(x))
    return flat


def validation_problem(
    outputs: dict[str, tuple[str, list[int], np.ndarray]],
    expected: list[dict[str, np.ndarray]],
    items: list[int],
    batched: bool,
) -> str | None:
    """Compare the decoded outputs of one answer with the validation_data of the entries it carried (`items`, in
    batch order). An output is checked when every item's entry names it."""
    label = f"entry {items[0]}" if len(items) == 1 else f"entries {items}"
    names = [n for n in expected[items[0]] if all(n in expected[k] for k in items)]
    for name in names:
        if name not in outputs:
            return f"output {name} of {label}: absent from the response"
        dt, shape, got = outputs[name]
        parts = [expected[k][name] for k in items]
        if all(p.shape == parts[0].shape for p in parts):
            want_shape = ([len(items)] if batched else []) + list(parts[0].shape)
            if len(want_shape) == len(shape) and shape != want_shape:
                return f"output {name} of {label} has shape {shape}, expected {want_shape}"
        want = np.concatenate([p.ravel() for p in parts]) if len(parts) > 1 else parts[0].ravel()
        if want.dtype != object and got.dtype == object:
            return f"output {name} of {label} differs: got strings, expected {dt} values"
        diff = compare(name, dt, got, want)
        if diff:
            return f"output {name} of {label} differs: {diff}"
    return None
