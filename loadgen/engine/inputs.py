"""Your own inputs (`--input-data FILE`): perf_analyzer's --input-data JSON, .npy or .npz, read and checked against the
model's metadata before any load. Pure: no I/O but reading the file, no gevent.

**The JSON format is perf_analyzer's** (triton-inference-server/perf_analyzer docs/input_data.md and
src/data_loader.cc), so one file serves both tools:

    {"data": [ {"INPUT0": [1, 2, 3, 4], "INPUT1": ["a", "b"]},              # flat values, row-major
               {"INPUT0": {"content": [1, 2, 3, 4], "shape": [2, 2]}},      # with an explicit shape
               {"INPUT0": {"b64": "AAAAAAAAgD8="}},                         # raw little-endian bytes, base64
               {"INPUT0": {"content": {"b64": "..."}, "shape": [2]}} ],
     "validation_data": [ {"OUTPUT0": [0.5, 0.25]}, ... ]}                  # optional, aligned with "data"

- Each entry of "data" is **one batch item** (perf_analyzer: "the exact size expected by the model for a single
  batch"). A request of `--batch b` carries b consecutive entries, item i of request n being entry (n*b + i) mod E
  (perf_analyzer's step_id = request * batch); with input_order "random" the entries follow a seeded sequence of
  shuffles instead. All entries of a request must then have the same shapes.
- **Shapes exclude the batch dimension when the model batches** (max_batch_size > 0 in its config; without a config,
  when every input's first dimension is -1): a "shape" field, `--shape NAME:d1,...` and the model's own dims all
  describe one item, as in perf_analyzer (its ModelParser drops the first metadata dimension when max_batch_size > 0,
  and --shape replaces what is left). A model that does not batch takes its full shape and --batch 1.
- An input's shape comes from the entry's "shape" field, else `--shape`, else the model's dims if they are concrete,
  else (inferload only) from the number of values when exactly one dimension is variable; it must have the model's
  rank and equal every fixed dimension, and the values must fill it exactly.
- BYTES (STRING) inputs take lists of strings (sent UTF-8 encoded); their b64 form holds the serialized tensor (each
  element a 4-byte little-endian length, then its bytes), as perf_analyzer says.
- Values: JSON integers go to integer inputs when in range, and to float inputs when exactly representable; JSON
  floats go to float inputs (rounded to the input's precision like any decimal literal; an overflow to inf is an
  error) and never to integer or BOOL inputs; BOOL takes true/false (or 0/1). Typed arrays (.npy/.npz) are cast to
  the model's datatype only when no value changes (float64 data for an FP32 input must hold float32 values; save
  the array as float32 otherwise). Nothing is cast silently. (perf_analyzer is stricter on two points: it wants
  float literals for FP32/FP64 and refuses explicit FP16 content; a file written for it works here.)
- The multi-stream form `{"data": [[...], [...]]}` (streams for sequence models) is read; like perf_analyzer for a
  model without sequence batching, only the first stream is used. An entry key "model" holding a string is skipped
  (perf_analyzer allows it). Unknown names, missing inputs (unless the config marks them optional) and mismatches
  are PayloadErrors naming the file, the entry, the tensor, and what was expected against what was found.
- `.npy`: the model's only input. `.npz`: one array per input (key = input name). An array of the item's rank is
  one entry; with one more dimension, its first dimension indexes the entries (the batch taken from the array: N
  rows are N items; `--batch N` sends them all in one request).
- validation_data: per entry, expected outputs by name (same forms; perf_analyzer compares bytes exactly, inferload
  compares integers, BOOL and BYTES exactly and floats with a tolerance: loadgen.engine.tensors.TOLERANCE). With it
  every answer is judged; the echoed request id (the request counter n) says which entries it carried, so answers
  may arrive in any order. A difference counts under "invalid_output".
- `--input-data zero` and `--input-data random` are perf_analyzer's keywords, not files (loadgen.engine.payloads).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.engine.signature import ModelTensor, Signature, resolve_shape, signature
from loadgen.engine.tensors import DTYPES, TOLERANCE, PayloadError, Tensor, to_dtype

__all__ = [
    "DTYPES",
    "TOLERANCE",
    "Conformed",
    "InputData",
    "PayloadError",
    "Signature",
    "Tensor",
    "conform",
    "entry_sequence",
    "read_input_file",
    "signature",
]


@dataclass
class InputData:
    path: str
    entries: list[dict[str, np.ndarray]]
    """Per entry, input name → values (shaped when the file gives a shape; BYTES as object arrays of bytes; a b64
    tensor as its raw bytes in uint8). .npy: one entry under the key "" (the model's only input)."""
    validation: list[dict[str, np.ndarray]] | None = None
    kind: str = "json"
    """json | npy | npz"""
    streams: int = 1
    """Data streams in the file (perf_analyzer's sequence form); only the first is read."""
    tensors: list[dict[str, Tensor]] = field(default_factory=list)
    validation_tensors: list[dict[str, Tensor]] | None = None


# ---------------------------------------------------------------------------------------------------- reading


def read_input_file(
    path: str, datatypes: dict[str, str] | None = None, shapes: dict[str, list[int]] | None = None
) -> InputData:
    """Read a perf_analyzer --input-data JSON file, a .npy or a .npz (by extension; anything else is JSON).

    Without a model, `entries` hold the values as the file types them (JSON: int64, float64, bool, bytes objects;
    b64: raw uint8). A caller that knows a tensor's datatype (`datatypes`: name → OIP datatype) gets it converted by
    the rules above (b64 decoded, no lossy cast); `shapes` (name → shape) reshape flat values that carry no shape
    of their own. Validation entries are left as the file types them."""
    data = _read_file(path)
    if datatypes or shapes:
        for k, (entry, ts) in enumerate(zip(data.entries, data.tensors)):
            for name, t in ts.items():
                where = f"--input-data {path}: entry {k}, tensor {name!r}"
                v = to_dtype(where, t, datatypes[name]) if datatypes and name in datatypes else t.values
                want = t.shape if t.shape is not None else (shapes or {}).get(name)
                if want is not None and list(v.shape) != list(want):
                    if v.size != math.prod(want):
                        raise PayloadError(f"{where}: {v.size} values do not fill shape {list(want)}")
                    v = v.reshape(want)
                entry[name] = v
    return data


def _read_file(path: str) -> InputData:
    p = Path(path)
    if p.is_dir():
        raise PayloadError(
            f"--input-data {path}: a directory (perf_analyzer's one-raw-file-per-input form) is not supported; "
            'give a JSON file (raw bytes go in {"b64": ...}), a .npy or a .npz'
        )
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise PayloadError(f"--input-data {path}: cannot read it ({e.strerror or e})") from None
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _read_numpy(path, raw, suffix)
    return _read_json(path, raw)


def _read_numpy(path: str, raw: bytes, suffix: str) -> InputData:
    import io

    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as e:
        raise PayloadError(f"--input-data {path}: not a readable {suffix} file ({e})") from None
    if suffix == ".npy":
        arrays = {"": np.asarray(loaded)}
    else:
        arrays = {k: np.asarray(loaded[k]) for k in loaded.files}
        if not arrays:
            raise PayloadError(f"--input-data {path}: the .npz holds no arrays")
    tensors = {k: Tensor(_typed_strings(a), list(a.shape), typed=True) for k, a in arrays.items()}
    return InputData(path, [{k: t.values for k, t in tensors.items()}], kind=suffix[1:], tensors=[tensors])


def _typed_strings(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "US":
        return np.array([s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in a.ravel()], object).reshape(
            a.shape
        )
    return a


def _read_json(path: str, raw: bytes) -> InputData:
    try:  # the stdlib parser accepts NaN / Infinity, like perf_analyzer's (kParseNanAndInfFlag)
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"--input-data {path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise PayloadError(
            f'--input-data {path}: expected an object with a "data" list (perf_analyzer\'s --input-data format), '
            f"got {type(doc).__name__}{' keys ' + str(sorted(doc)) if isinstance(doc, dict) else ''}"
        )
    data, streams = _first_stream(path, "data", doc["data"])
    if not data:
        raise PayloadError(f'--input-data {path}: "data" is empty')
    tensors = [_read_entry(path, "data", k, e) for k, e in enumerate(data)]
    vtensors = None
    if "validation_data" in doc:
        if not isinstance(doc["validation_data"], list) or len(doc["validation_data"]) != len(doc["data"]):
            raise PayloadError(f'--input-data {path}: "validation_data" must be a list aligned with "data"')
        vdata, _ = _first_stream(path, "validation_data", doc["validation_data"])
        if len(vdata) != len(data):
            raise PayloadError(
                f'--input-data {path}: "validation_data" has {len(vdata)} entries, "data" {len(data)}: they must align'
            )
        vtensors = [_read_entry(path, "validation_data", k, e) for k, e in enumerate(vdata)]
    return InputData(
        path,
        [{k: t.values for k, t in ts.items()} for ts in tensors],
        [{k: t.values for k, t in ts.items()} for ts in vtensors] if vtensors is not None else None,
        kind="json",
        streams=streams,
        tensors=tensors,
        validation_tensors=vtensors,
    )


def _first_stream(path: str, key: str, items: list[Any]) -> tuple[list[Any], int]:
    nested = [isinstance(x, list) for x in items]
    if items and all(nested):
        return items[0], len(items)
    if any(nested):
        raise PayloadError(f'--input-data {path}: "{key}" mixes entries (objects) and streams (lists); use one form')
    return items, 1


def _read_entry(path: str, key: str, k: int, entry: Any) -> dict[str, Tensor]:
    where = f"--input-data {path}: {key} entry {k}"
    if not isinstance(entry, dict):
        raise PayloadError(f"{where}: expected an object of tensors by name, got {type(entry).__name__}")
    out = {}
    for name, value in entry.items():
        if name == "model" and isinstance(value, str):
            continue
        out[name] = _read_tensor(f"{where}, tensor {name!r}", value)
    return out


def _read_tensor(where: str, value: Any) -> Tensor:
    shape = None
    if isinstance(value, dict):
        if "shape" in value:
            s = value["shape"]
            if not isinstance(s, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s):
                raise PayloadError(f'{where}: "shape" must be a list of integers >= 0, got {s!r}')
            shape = list(s)
        content = value if "b64" in value else value.get("content")
        if content is None:
            raise PayloadError(f'{where}: an object needs "content" (a list or {{"b64": ...}}) or "b64"')
        if isinstance(content, dict):
            if not isinstance(content.get("b64"), str):
                raise PayloadError(f'{where}: "b64" must be a base64 string')
            try:
                blob = base64.b64decode(content["b64"], validate=True)
            except (binascii.Error, ValueError) as e:
                raise PayloadError(f"{where}: invalid base64 ({e})") from None
            return Tensor(np.frombuffer(blob, np.uint8), shape, b64=True)
        value = content
    if not isinstance(value, list):
        raise PayloadError(
            f'{where}: expected a list of values, {{"content": [...], "shape": [...]}} or {{"b64": ...}}'
        )
    flat, nested_shape = _flatten(where, value)
    return Tensor(_json_array(where, flat), shape if shape is not None else nested_shape)


def _flatten(where: str, value: list[Any]) -> tuple[list[Any], list[int] | None]:
    """Nested lists (OIP style) → flat values and their shape (None when flat already)."""
    if not any(isinstance(v, list) for v in value):
        return value, None
    shape = [len(value)]
    level = value
    while level and isinstance(level[0], list):
        shape.append(len(level[0]))
        if not all(isinstance(v, list) and len(v) == shape[-1] for v in level):
            raise PayloadError(f"{where}: nested lists are ragged (not a tensor)")
        level = [x for v in level for x in v]
    if any(isinstance(v, list) for v in level):
        raise PayloadError(f"{where}: nested lists are ragged (not a tensor)")
    return level, shape


def _json_array(where: str, flat: list[Any]) -> np.ndarray:
    if not flat:
        return np.zeros(0, np.float64)
    kinds = {type(v) for v in flat}
    if kinds == {str}:
        arr = np.empty(len(flat), object)
        arr[:] = [v.encode("utf-8") for v in flat]
        return arr
    if kinds == {bool}:
        return np.array(flat, bool)
    if bool in kinds or str in kinds or not kinds <= {int, float}:
        bad = sorted(k.__name__ if k is not type(None) else "null" for k in kinds)
        raise PayloadError(f"{where}: values must be all numbers, all booleans or all strings, got {bad}")
    if kinds == {int}:
        lo, hi = min(flat), max(flat)
        if lo >= -(2**63) and hi < 2**63:
            return np.array(flat, np.int64)
        if lo >= 0 and hi < 2**64:
            return np.array(flat, np.uint64)
        raise PayloadError(f"{where}: integer {hi if hi >= 2**63 else lo} is outside 64 bits")
    return np.array(flat, np.float64)


# ---------------------------------------------------------------------------------------------------- the model


@dataclass
class Conformed:
    entries: list[list[np.ndarray]]
    """Per entry, the inputs in `names` order (metadata order; optional inputs the file omits left out), item-shaped,
    in the model's datatypes."""
    names: list[str]
    expected: list[dict[str, np.ndarray]] | None
    """Per entry, expected outputs by name (model dtype; item-shaped when the shape is known, flat otherwise)."""


def conform(data: InputData, sig: Signature, shapes: dict[str, list[int]] | None = None) -> Conformed:
    """Check every entry against the model and convert it: item shapes (batch excluded when the model batches),
    model datatypes, all inputs present, no unknown names."""
    shapes = shapes or {}
    known = {t.name for t in sig.inputs}
    tensors = _split_rows(data, sig) if data.kind in ("npy", "npz") else data.tensors
    entries: list[dict[str, np.ndarray]] = []
    for k, ts in enumerate(tensors):
        where = f"--input-data {data.path}: entry {k}"
        unknown = [n for n in ts if n not in known]
        if unknown:
            raise PayloadError(
                f"{where}: input {unknown[0]!r} is not an input of model {sig.name} (inputs: {sorted(known)})"
            )
        row: dict[str, np.ndarray] = {}
        for mt in sig.inputs:
            t = ts.get(mt.name)
            if t is None:
                if mt.optional:
                    continue
                raise PayloadError(f"{where}: input {mt.name!r} of model {sig.name} is missing")
            row[mt.name] = _conform_tensor(f"{where}, input {mt.name!r}", sig, mt, t, shapes.get(mt.name), True)
        if entries and row.keys() != entries[0].keys():
            raise PayloadError(
                f"{where}: gives inputs {sorted(row)}, entry 0 gives {sorted(entries[0])}: an optional input must be "
                f"in every entry or in none"
            )
        entries.append(row)
    expected = None
    if data.validation_tensors is not None:
        outs = {t.name: t for t in sig.outputs}
        expected = []
        for k, ts in enumerate(data.validation_tensors):
            exp = {}
            for name, t in ts.items():
                where = f"--input-data {data.path}: validation_data entry {k}, output {name!r}"
                if name not in outs:
                    raise PayloadError(f"{where}: not an output of model {sig.name} (outputs: {sorted(outs)})")
                exp[name] = _conform_tensor(where, sig, outs[name], t, None, False)
            expected.append(exp)
    names = [t.name for t in sig.inputs if t.name in entries[0]]
    return Conformed([[e[n] for n in names] for e in entries], names, expected)


def _conform_tensor(
    where: str, sig: Signature, mt: ModelTensor, t: Tensor, cli: list[int] | None, need_shape: bool
) -> np.ndarray:
    values = to_dtype(where, t, mt.datatype)
    given: list[int] | None = t.shape if t.shape is not None else cli
    source = ("its array shape" if t.typed else 'its "shape"') if t.shape is not None else "--shape"
    source += f" {given}"
    try:
        shape = resolve_shape(sig, mt, given, source, values.size)
    except PayloadError as e:
        if need_shape or given is not None:
            raise PayloadError(f"{where}: {e}") from None
        return values  # an output of variable shape: compared flat
    if math.prod(shape) != values.size:
        raise PayloadError(
            f"{where}: {values.size} values do not fill shape {shape} ({math.prod(shape)} expected; {sig.batch_note()})"
        )
    return values.reshape(shape)


def _split_rows(data: InputData, sig: Signature) -> list[dict[str, Tensor]]:
    """An .npy/.npz array of the item's rank is one entry; with one more dimension, its rows are the entries."""
    arrays = dict(data.tensors[0])
    if data.kind == "npy":
        if len(sig.inputs) != 1:
            raise PayloadError(
                f"--input-data {data.path}: a .npy feeds a model's only input; model {sig.name} has "
                f"{[t.name for t in sig.inputs]}: use a .npz (key = input name) or JSON"
            )
        arrays = {sig.inputs[0].name: arrays[""]}
    ranks = {t.name: len(t.dims) for t in sig.inputs}
    rows: dict[str, int | None] = {}
    for name, t in arrays.items():
        if name in ranks and t.values.ndim == ranks[name] + 1:
            rows[name] = t.values.shape[0]
        elif name in ranks and t.values.ndim != ranks[name]:
            raise PayloadError(
                f"--input-data {data.path}: array {name or '(.npy)'!r} has shape {list(t.values.shape)}; input "
                f"{name!r} takes items of rank {ranks[name]} ({sig.batch_note()}), or a stack of them (rank "
                f"{ranks[name] + 1}, first dimension = items)"
            )
        else:
            rows[name] = None
    counts = {n for n in rows.values() if n is not None}
    if len(counts) > 1:
        raise PayloadError(f"--input-data {data.path}: arrays stack different numbers of items: {rows}")
    if not counts:
        return [arrays]
    n = counts.pop()
    if n == 0:
        raise PayloadError(f"--input-data {data.path}: the arrays hold no items")
    out = []
    for i in range(n):
        entry = {}
        for name, t in arrays.items():
            v = t.values[i] if rows[name] is not None else t.values
            entry[name] = Tensor(np.asarray(v), list(np.shape(v)), typed=True)
        out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------------- order


def entry_sequence(n_entries: int, order: str, seed: int, min_length: int = 4096) -> np.ndarray:
    """Item i of the run uses entry seq[i % len(seq)]. sequential: 0..E-1. random: seeded shuffles, concatenated
    until at least `min_length` items (every entry used once per shuffle), recomputable from the seed."""
    if order != "random" or n_entries < 2:
        return np.arange(n_entries)
    rng = np.random.default_rng([seed, 0x1A7A])
    rounds = max(1, -(-min_length // n_entries))
    return np.concatenate([rng.permutation(n_entries) for _ in range(rounds)])
