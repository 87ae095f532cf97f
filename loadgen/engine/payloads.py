"""Request bodies for POST /v2/models/{m}/infer: OIP binary extension, OIP JSON, encoded images.

Shapes come from the model's metadata (GET /v2/models/{m}) and, when offered, the Triton model config
(GET /v2/models/{m}/config: max_batch_size tells whether the first dimension is the batch). No locust
import here; the module is usable (and tested) in a plain process.

Nothing can be cached server-side: a pool of POOL_SIZE distinct tensors (seeded random data) or
synthetic images is rotated, and every request additionally carries a unique `id` and a per-request
counter written into its first tensor element (binary/json) or a JPEG comment segment (images).
Synthetic images are natural-looking (smooth gradients + noise + shapes, seeded) at a few sizes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from loadgen.engine.scenario import Scenario
from loadgen.engine.target import Target, redact_url, target_of

POOL_SIZE = 64
IMAGE_SIZES = [(224, 224), (256, 256), (320, 240), (400, 300)]
SAMPLE_CHECK_EVERY = 64
"""Every response gets the cheap check (status 200, non-empty body); 1 in 64 (and the first 3) are parsed
in full (header JSON, expected output names, batch dimension, binary sizes)."""

_DTYPES: dict[str, str] = {
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


class PayloadError(ValueError):
    pass


def fetch_model_info(target: Target | str, model: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """{"server": GET /v2, "metadata": GET /v2/models/m, "config": GET /v2/models/m/config or None}, through the
    target's prefix, headers and TLS. Raises PayloadError with a message a user can act on (credentials refused,
    TLS, unreachable, unknown model)."""
    import urllib.error

    from loadgen.engine.target import TargetError

    t = target_of(target) if isinstance(target, str) else target
    where = redact_url(t.origin)
    try:
        server = t.get_json(t.path("/v2"), timeout_s)
    except TargetError as e:
        raise PayloadError(str(e)) from None
    except Exception as e:
        raise PayloadError(f"cannot read server metadata at {where}{t.path('/v2')}: {e}") from e
    meta_path = t.model_path(model)
    try:
        metadata = t.get_json(meta_path, timeout_s)
    except TargetError as e:
        raise PayloadError(str(e)) from None
    except urllib.error.HTTPError as e:
        raise PayloadError(f"cannot read metadata of model {model!r} at {where}{meta_path}: HTTP {e.code}") from None
    except Exception as e:
        raise PayloadError(f"cannot read metadata of model {model!r} at {where}{meta_path}: {e}") from e
    try:
        config = t.get_json(t.path(f"/v2/models/{quote(model, safe='')}/config"), timeout_s)
    except Exception:
        config = None
    return {"server": server, "metadata": metadata, "config": config}


@dataclass
class InputSpec:
    name: str
    datatype: str
    shape: list[int]  # concrete, batch included when the model batches


def input_specs(info: dict[str, Any], batch: int) -> list[InputSpec]:
    meta = info["metadata"]
    cfg = info.get("config") or {}
    max_bs = int(cfg.get("max_batch_size", 0) or 0)
    cfg_dims = {i.get("name"): i.get("dims") for i in cfg.get("input", []) if isinstance(i, dict)}
    specs = []
    for inp in meta.get("inputs", []):
        shape = [int(d) for d in inp["shape"]]
        batched = max_bs > 0 or (len(shape) > 0 and shape[0] == -1)
        if batched:
            rest = shape[1:] if len(shape) > 0 else []
            dims = cfg_dims.get(inp["name"])
            if dims and len(dims) == len(rest):
                rest = [r if r != -1 else int(d) for r, d in zip(rest, dims)]
            if any(d < 0 for d in rest):
                raise PayloadError(
                    f"input {inp['name']!r} has variable dimensions {shape}; this model needs a concrete shape"
                )
            full = [batch] + rest
        else:
            if batch != 1:
                raise PayloadError(f"model {meta.get('name')} does not batch (input shape {shape}); use --batch 1")
            full = shape
            if any(d < 0 for d in full):
                raise PayloadError(f"input {inp['name']!r} has variable dimensions {shape}")
        specs.append(InputSpec(inp["name"], inp["datatype"], full))
    if not specs:
        raise PayloadError(f"model {meta.get('name')} lists no inputs in its metadata")
    if max_bs and batch > max_bs:
        raise PayloadError(f"--batch {batch} exceeds the model's max_batch_size {max_bs}")
    return specs


def synthetic_images(n: int, seed: int, sizes: list[tuple[int, int]] = IMAGE_SIZES, quality: int = 88) -> list[bytes]:
    """n seeded JPEGs that look like photos to a codec: gradients, low-frequency noise, shapes."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            a, b, c0 = rng.uniform(-1, 1, 3)
            img[..., c] = 128 + 90 * (a * xx / w + b * yy / h) * 0.8 + 40 * c0
        low = rng.normal(0, 1, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
        low = np.kron(low, np.ones((16, 16, 1), np.float32))[:h, :w]
        img += 18 * low + rng.normal(0, 6, (h, w, 3))
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(3, 8))):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=color)
        pil = pil.filter(ImageFilter.GaussianBlur(0.6))
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def load_images(directory: str) -> list[bytes]:
    d = Path(directory)
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if d.is_dir() else []
    if not files:
        raise PayloadError(f"--images {directory}: no .jpg/.jpeg/.png files found")
    return [p.read_bytes() for p in files]


def _jpeg_with_comment(jpeg: bytes, text: bytes) -> bytes:
    """Insert a COM segment after SOI: different bytes, identical pixels."""
    if jpeg[:2] != b"\xff\xd8":
        return jpeg
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


SMALL_PART_BYTES = 64 * 1024
"""Body parts below this are merged (one write); larger ones are sent as they are, never copied."""


def coalesce(parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """Merge runs of small parts (one send each would cost a syscall); big parts stay shared views."""
    out: list[bytes | memoryview] = []
    run: list[bytes | memoryview] = []
    for p in parts:
        if len(p) < SMALL_PART_BYTES:
            run.append(p)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(p)
    if run:
        out.append(b"".join(run))
    return out


class PayloadPool:
    """Builds bodies for one scenario: `next_parts()` -> (body parts, headers), `next()` -> (body bytes, headers);
    `check(...)` validates answers.

    A body is built at send time, so its cost counts as schedule lag: the big pieces (tensor bytes, a tensor's
    JSON text) are encoded once, at start, and every body is a few small fresh bytes (the id, the first element)
    around shared views of them: no copy of a 2 MB JSON tensor per request (that copy made every JSON send ~4 ms
    late). The transport writes the parts in order (users.PartsBody)."""

    def __init__(self, scenario: Scenario, info: dict[str, Any], seed: int, pool_size: int = POOL_SIZE) -> None:
        self.kind = scenario.payload
        self.batch = scenario.batch
        self.path = Target(url=scenario.target, model_version=scenario.model_version).model_path(
            scenario.model, "/infer"
        )
        self.specs = input_specs(info, scenario.batch)
        meta = info["metadata"]
        self.expected_outputs = [o["name"] for o in meta.get("outputs", [])]
        self.batched = bool((info.get("config") or {}).get("max_batch_size")) or any(
            (o.get("shape") or [0])[0] == -1 for o in meta.get("outputs", [])
        )
        self.n = 0
        self.check_every = False
        self.allow_empty = False
        rng = np.random.default_rng(seed)
        has_bytes = any(s.datatype == "BYTES" for s in self.specs)
        if self.kind == "image":
            if not has_bytes or len(self.specs) != 1:
                raise PayloadError(
                    f"--payload image needs a model with one BYTES input (e.g. mobilenet_v2_jpeg); "
                    f"{scenario.model} has {[(s.name, s.datatype) for s in self.specs]}"
                )
            imgs = load_images(scenario.images_dir) if scenario.images_dir else synthetic_images(pool_size, seed)
            self.images = imgs
        else:
            if has_bytes:
                raise PayloadError(f"model {scenario.model} takes BYTES (encoded images): use --payload image")
            self.tensors = [[self._random(s, rng) for s in self.specs] for _ in range(pool_size)]
            self._raw = [[memoryview(np.ascontiguousarray(t)).cast("B") for t in ts] for ts in self.tensors]
            if self.kind == "json":
                self._json_data = [[orjson.dumps(t.ravel().tolist()) for t in ts] for ts in self.tensors]
                # The first input's text after its first element (",x,y,...]"), shared by every body of that entry.
                self._json_tail = [_after_first(ds[0]) for ds in self._json_data]

    @staticmethod
    def _random(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
        dt = _DTYPES.get(spec.datatype)
        if dt is None:
            raise PayloadError(f"input {spec.name!r}: unsupported datatype {spec.datatype}")
        dtype = np.dtype(dt)
        if dtype.kind == "f":
            return rng.random(spec.shape, dtype=np.float64).astype(dtype)
        if dtype.kind == "b":
            return rng.random(spec.shape) < 0.5
        return rng.integers(0, 100, spec.shape).astype(dtype)

    def _first_value(self, dtype: np.dtype, n: int) -> Any:
        if dtype.kind == "f":
            return (n % 1_000_003) / 1_000_003.0
        if dtype.kind == "b":
            return bool(n & 1)
        return n % 100

    def next(self) -> tuple[bytes, dict[str, str]]:
        parts, headers = self.next_parts()
        return b"".join(parts), headers

    def next_parts(self) -> tuple[list[bytes | memoryview], dict[str, str]]:
        n = self.n
        self.n += 1
        rid = str(n)
        if self.kind == "image":
            spec = self.specs[0]
            k = len(self.images)
            elems: list[bytes | memoryview] = []
            for j in range(self.batch):
                img = self.images[(n * self.batch + j) % k]
                if j == 0:
                    img = _jpeg_with_comment(img, b"inferload %d" % n)
                elems.append(struct.pack("<I", len(img)))
                elems.append(img)
            size = sum(len(e) for e in elems)
            header = orjson.dumps(
                {
                    "id": rid,
                    "inputs": [
                        {
                            "name": spec.name,
                            "shape": spec.shape,
                            "datatype": "BYTES",
                            "parameters": {"binary_data_size": size},
                        }
                    ],
                    "parameters": {"binary_data_output": True},
                }
            )
            return coalesce([header, *elems]), {
                "Inference-Header-Content-Length": str(len(header)),
                "Content-Type": "application/octet-stream",
            }
        k = n % len(self.tensors)
        tensors = self.tensors[k]
        if self.kind == "binary":
            blobs: list[bytes | memoryview] = []
            inputs = []
            for i, (spec, t, raw) in enumerate(zip(self.specs, tensors, self._raw[k])):
                if i == 0 and t.size and t.dtype.kind != "b":
                    first = np.array([self._first_value(t.dtype, n // len(self.tensors))], t.dtype).tobytes()
                    blobs += [first, raw[len(first) :]]
                else:
                    blobs.append(raw)
                inputs.append(
                    {
                        "name": spec.name,
                        "shape": spec.shape,
                        "datatype": spec.datatype,
                        "parameters": {"binary_data_size": t.nbytes},
                    }
                )
            header = orjson.dumps({"id": rid, "inputs": inputs, "parameters": {"binary_data_output": True}})
            return coalesce([header, *blobs]), {
                "Inference-Header-Content-Length": str(len(header)),
                "Content-Type": "application/octet-stream",
            }
        # json
        datas = self._json_data[k]
        parts: list[bytes | memoryview] = [b'{"id":"', rid.encode(), b'","inputs":[']
        for i, (spec, t, data) in enumerate(zip(self.specs, tensors, datas)):
            if i:
                parts.append(b",")
            parts.append(orjson.dumps({"name": spec.name, "shape": spec.shape, "datatype": spec.datatype})[:-1])
            parts.append(b',"data":')
            if i == 0 and t.size and t.dtype.kind != "b":
                first = orjson.dumps(self._first_value(t.dtype, n // len(self.tensors)))
                parts += [b"[", first, self._json_tail[k]]
            else:
                parts.append(data)
            parts.append(b"}")
        parts.append(b"]}")
        return coalesce(parts), {"Content-Type": "application/json"}

    def success(self, status: int) -> bool:
        return status == 200

    def judge(self, body: bytes, header: Any) -> tuple[str, str] | None:
        """RequestCodec.judge: the OIP answer's structure (`check`)."""
        problem = self.check(body, header("inference-header-content-length"))
        return ("InvalidResponse", problem) if problem else None

    def check(self, body: bytes, header_length: str | None) -> str | None:
        """Full parse of one answer; returns an error description or None."""
        try:
            if header_length is not None:
                hl = int(header_length)
                if not 0 < hl <= len(body):
                    return f"Inference-Header-Content-Length {hl} outside the body ({len(body)} bytes)"
                head = _loads_oip(body[:hl])
                binary_len = len(body) - hl
            else:
                head = _loads_oip(body)
                binary_len = 0
        except (ValueError, orjson.JSONDecodeError) as e:
            return f"response is not OIP JSON: {e}"
        outs = head.get("outputs")
        if not isinstance(outs, list) or not outs:
            return "response has no outputs"
        names = {o.get("name") for o in outs}
        missing = [n for n in self.expected_outputs if n not in names]
        if missing:
            return f"response lacks outputs {missing}"
        total_bin = 0
        for o in outs:
            shape = o.get("shape") or []
            if self.batched and (not shape or shape[0] != self.batch):
                return f"output {o.get('name')} has shape {shape}, expected batch {self.batch} first"
            total_bin += int((o.get("parameters") or {}).get("binary_data_size", 0) or 0)
            if "data" not in o and not (o.get("parameters") or {}).get("binary_data_size"):
                return f"output {o.get('name')} carries no data"
        if total_bin != binary_len:
            return f"binary outputs declare {total_bin} bytes, body carries {binary_len}"
        return None


def _after_first(data: bytes) -> memoryview:
    """A flat JSON array's text after its first element: ',x,y,...]' (or ']' for one element), as a shared view."""
    comma = data.find(b",")
    view = memoryview(data)
    return view[comma:] if comma > 0 else view[len(data) - 1 :]


def _loads_oip(raw: bytes) -> Any:
    """OIP JSON as Triton writes it: strict JSON, or (only when orjson refuses it) the NaN / Infinity / -Infinity
    literals Triton-compatible servers write for non-finite float outputs (the stdlib parser accepts those)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if b"NaN" not in raw and b"Infinity" not in raw:
            raise
        import json

        return json.loads(raw)
