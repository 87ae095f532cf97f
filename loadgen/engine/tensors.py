"""Tensors between a file, the model and the wire: OIP datatypes, the value rules of --input-data (`to_dtype`),
BYTES serialization, the comparison of outputs with validation_data (`compare`, TOLERANCE), and the encodings a
request body shares (raw bytes views, JSON text). Pure: no I/O, no gevent."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

DTYPES: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
"""OIP datatype → little-endian numpy dtype (BYTES: object arrays of bytes)."""

TOLERANCE: dict[str, tuple[float, float]] = {"FP16": (1e-3, 1e-3), "FP32": (1e-5, 1e-6), "FP64": (1e-5, 1e-6)}
"""(rtol, atol) per float datatype for validation_data: |got - expected| <= atol + rtol * |expected| (np.isclose,
NaN equal to NaN). FP32/FP64: rtol 1e-5 as np.allclose, atol 1e-6 instead of its 1e-8 (float32 sums computed in
another order differ by about 1e-7 near zero). Other datatypes compare exactly."""


class PayloadError(ValueError):
    """A request that cannot be built; the message names the file, the entry, the tensor and the fix."""


@dataclass
class Tensor:
    """One tensor as a file gives it, before it meets the model."""

    values: np.ndarray
    """Numbers/bools as parsed, strings as an object array of bytes; b64: the decoded bytes as uint8."""
    shape: list[int] | None = None
    """The "shape" field, or the array's own shape (.npy/.npz, nested JSON lists); None: flat, shape from the model."""
    b64: bool = False
    typed: bool = False
    """True for .npy/.npz arrays (a numpy dtype to cast losslessly), False for JSON text."""


def to_dtype(where: str, t: Tensor, datatype: str) -> np.ndarray:
    """Values of a file tensor as the model's datatype (flat), by the rules in the module docstring."""
    v = t.values
    if datatype == "BYTES":
        if t.b64:
            return parse_bytes_elements(where, v.tobytes())
        if v.size == 0:
            return np.zeros(0, object)
        if v.dtype != object or not all(isinstance(x, bytes) for x in v.ravel()):
            raise PayloadError(f"{where}: the model's BYTES input takes strings, got {v.dtype} values")
        return v.ravel()
    dt_str = DTYPES.get(datatype)
    if dt_str is None:
        raise PayloadError(f"{where}: datatype {datatype} is not supported")
    dt = np.dtype(dt_str)
    if t.b64:
        raw = v.tobytes()
        if len(raw) % dt.itemsize:
            raise PayloadError(f"{where}: {len(raw)} b64 bytes are not a whole number of {datatype} values")
        return np.frombuffer(raw, dt)
    flat = v.ravel()
    if flat.size == 0:
        return np.zeros(0, dt)
    if flat.dtype == object:
        raise PayloadError(f"{where}: the model's input is {datatype}, got strings")
    src = flat.dtype.kind
    if t.typed:
        out = flat.astype(dt)
        same = out.astype(flat.dtype) == flat
        if src == "f":
            same |= np.isnan(flat)
        if not bool(np.all(same)):
            bad = flat[~same][0]
            raise PayloadError(
                f"{where}: {flat.dtype} value {_show(bad)} changes as {datatype}; the model's datatype is {datatype}: "
                f"save the array as {dt.name} (a cast is done only when no value changes)"
            )
        return out
    if dt.kind == "b":
        if src == "b" or (src in "iu" and bool(np.all((flat == 0) | (flat == 1)))):
            return flat.astype(dt)
        raise PayloadError(f"{where}: the model's input is BOOL, got {_kind_name(src)} values (use true/false)")
    if dt.kind in "iu":
        if src not in "iu":
            raise PayloadError(
                f"{where}: the model's input is {datatype}, got {_kind_name(src)} values "
                f"(integer inputs take JSON integers; nothing is cast silently)"
            )
        info = np.iinfo(dt)
        lo, hi = int(flat.min()), int(flat.max())
        if lo < info.min or hi > info.max:
            raise PayloadError(f"{where}: value {lo if lo < info.min else hi} is outside {datatype}")
        return flat.astype(dt)
    if src == "b":
        raise PayloadError(f"{where}: the model's input is {datatype}, got booleans")
    with np.errstate(over="ignore", invalid="ignore"):
        out = flat.astype(dt)
    if src in "iu" and not bool(np.all(out.astype(np.float64) == flat.astype(np.float64))):
        raise PayloadError(f"{where}: an integer value is not exactly representable as {datatype}")
    if bool(np.any(np.isinf(out) & np.isfinite(flat.astype(np.float64)))):
        raise PayloadError(f"{where}: a value overflows {datatype}")
    return out


def _kind_name(kind: str) -> str:
    return {"f": "float", "i": "integer", "u": "integer", "b": "boolean"}.get(kind, kind)


def serialize_bytes(values: np.ndarray) -> bytes:
    """BYTES tensor → its binary form: each element a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(b)) + b for b in values.ravel())


def parse_bytes_elements(where: str, raw: bytes) -> np.ndarray:
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise PayloadError(f"{where}: serialized BYTES end inside an element's 4-byte length")
        (n,) = struct.unpack_from("<I", raw, i)
        if i + 4 + n > len(raw):
            raise PayloadError(f"{where}: serialized BYTES element of {n} bytes runs past the data")
        out.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    arr = np.empty(len(out), object)
    arr[:] = out
    return arr


def compare(name: str, datatype: str, got: np.ndarray, expected: np.ndarray) -> str | None:
    """None when `got` matches `expected` (flat), else a description. Floats: TOLERANCE; others exactly."""
    g, e = got.ravel(), expected.ravel()
    if g.size != e.size:
        return f"{g.size} values, expected {e.size}"
    if datatype == "BYTES" or e.dtype == object:
        bad = [i for i, (a, b) in enumerate(zip(g.tolist(), e.tolist())) if a != b]
    elif datatype in TOLERANCE:
        rtol, atol = TOLERANCE[datatype]
        ok = np.isclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
        bad = np.flatnonzero(~ok).tolist()
    else:
        bad = np.flatnonzero(g != e).tolist()
    if not bad:
        return None
    i = bad[0]
    tol = f"; rtol {TOLERANCE[datatype][0]:g}, atol {TOLERANCE[datatype][1]:g}" if datatype in TOLERANCE else ""
    first = f"first at flat index {i}: got {_show(g[i])}, expected {_show(e[i])}{tol}"
    return f"{len(bad)} of {e.size} values differ ({first})"


def _show(v: Any) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    return f"{v:.7g}" if isinstance(v, float) else repr(v)


STRING_LENGTH = 128
"""Random BYTES elements: this many ASCII letters and digits (perf_analyzer's default --string-length)."""
_CHARS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", np.uint8)


def random_tensor(
    name: str, datatype: str, shape: list[int], rng: np.random.Generator, zero: bool = False
) -> np.ndarray:
    """Seeded values: floats in [0, 1), integers 0..99, random booleans, strings of STRING_LENGTH letters and digits
    (BYTES); zeros (BYTES: "0" * STRING_LENGTH) with `zero`."""
    if datatype == "BYTES":
        count = int(np.prod(shape))
        size = count * STRING_LENGTH
        raw = b"0" * size if zero else _CHARS[rng.integers(0, len(_CHARS), size)].tobytes()
        out = np.empty(count, object)
        out[:] = [raw[i * STRING_LENGTH : (i + 1) * STRING_LENGTH] for i in range(count)]
        return out.reshape(shape)
    dt = DTYPES.get(datatype)
    if dt is None:
        raise PayloadError(f"input {name!r}: unsupported datatype {datatype}")
    dtype = np.dtype(dt)
    if zero:
        return np.zeros(shape, dtype)
    if dtype.kind == "f":
        return rng.random(shape, dtype=np.float64).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, 100, shape).astype(dtype)


def first_value(dtype: np.dtype[Any], n: int) -> Any:
    """Random data's first element in request n (so that no two bodies are alike)."""
    if dtype.kind == "f":
        return (n % 1_000_003) / 1_000_003.0
    if dtype.kind == "b":
        return bool(n & 1)
    return n % 100


def raw_view(t: np.ndarray) -> memoryview:
    """A tensor's binary-extension bytes: a view of its memory (BYTES: serialized once); slices share it."""
    if t.dtype == object:
        return memoryview(serialize_bytes(t))
    return memoryview(np.ascontiguousarray(t).data).cast("B")


def json_text(name: str, t: np.ndarray) -> bytes:
    """A tensor's flat JSON list, the exact values (float32 in its shortest form; NaN / Infinity literals)."""
    flat = np.ascontiguousarray(t).ravel()
    if t.dtype == object:
        try:
            return orjson.dumps([b.decode("utf-8") for b in flat])
        except UnicodeDecodeError:
            raise PayloadError(
                f"input {name!r} holds bytes that are not UTF-8, which JSON cannot carry: use --payload binary"
            ) from None
    if flat.dtype.kind == "f" and not bool(np.all(np.isfinite(flat))):
        return json.dumps(flat.tolist(), separators=(",", ":")).encode()
    return orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)


def join(pieces: list[memoryview], sep: bytes) -> list[bytes | memoryview]:
    out: list[bytes | memoryview] = []
    for i, p in enumerate(pieces):
        if i:
            out.append(sep)
        out.append(p)
    return out


def after_first(data: bytes) -> memoryview:
    """A flat JSON array's text after its first element: ',x,y,...]' (or ']' for one element), as a shared view."""
    comma = data.find(b",")
    view = memoryview(data)
    return view[comma:] if comma > 0 else view[len(data) - 1 :]
