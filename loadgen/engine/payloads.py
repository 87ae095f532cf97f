"""Request bodies for POST /v2/models/{m}/infer: OIP binary extension, OIP JSON, encoded images.

Shapes come from the model's metadata (GET /v2/models/{m}) and, when offered, the Triton model config
(GET /v2/models/{m}/config: max_batch_size tells whether the first dimension is the batch), with `--shape NAME:dims`
for variable dimensions (the dims after the batch dimension when the model batches, as perf_analyzer's --shape).
No locust import here; the module is usable (and tested) in a plain process.

Values: the entries of `--input-data` (loadgen.engine.inputs: perf_analyzer's JSON, .npy, .npz; sent exactly as
given, item i of request n being entry (n*batch + i) mod E, or a seeded shuffle), or else a pool of POOL_SIZE
distinct tensors of seeded random data (BYTES inputs: random strings of STRING_LENGTH characters, perf_analyzer's
default --string-length), or synthetic images. `--input-data zero` sends zeros, `random` the default (perf_analyzer's
keywords). Every request carries a unique `id` (its counter n); random data also carries n in its first tensor
element (binary/json) or a JPEG comment segment (images), so nothing can be cached server-side. Synthetic images
are natural-looking (smooth gradients + noise + shapes, seeded) at a few sizes.

`--output NAME` asks for only those outputs (binary payloads ask each for binary data). Answers: see
loadgen.engine.answers; with validation_data every answer is judged and compared with the entries it carried
(found again from the echoed id).
"""

from __future__ import annotations

import re
import struct
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from loadgen.engine.answers import decode_outputs, parse_answer, structure_problem, validation_problem
from loadgen.engine.images import IMAGE_SIZES, _jpeg_with_comment, load_images, synthetic_images
from loadgen.engine.inputs import conform, entry_sequence, read_input_file
from loadgen.engine.scenario import Scenario
from loadgen.engine.signature import InputSpec, check_shape_names, input_specs, signature
from loadgen.engine.target import Target, redact_url, target_of
from loadgen.engine.tensors import (
    DTYPES,
    PayloadError,
    after_first,
    first_value,
    join,
    json_text,
    random_tensor,
    raw_view,
)

POOL_SIZE = 64
SAMPLE_CHECK_EVERY = 64
"""Every response gets the cheap check (status 200, non-empty body); 1 in 64 (and the first 3) are parsed
in full (header JSON, expected output names, batch dimension, binary sizes)."""

_DTYPES = DTYPES  # the OIP datatype table (loadgen.engine.tensors); the name template.py imports
__all__ = [
    "IMAGE_SIZES",
    "POOL_SIZE",
    "SAMPLE_CHECK_EVERY",
    "InputSpec",
    "PayloadError",
    "PayloadPool",
    "coalesce",
    "fetch_model_info",
    "input_specs",
    "load_images",
    "synthetic_images",
]


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


Tensor = tuple[str, str, list[int], list[bytes | memoryview]]
"""(name, datatype, shape, raw pieces): one input of a request in binary form."""

_IMAGE_NAME = re.compile(r"image|img|jpe?g|png|picture|photo", re.I)


class PayloadPool:
    """Builds bodies for one scenario: `next_parts()` -> (body parts, headers), `next()` -> (body bytes, headers);
    `judge(...)` / `check(...)` validate answers.

    A body is built at send time, so its cost counts as schedule lag: the big pieces (tensor bytes, a tensor's
    JSON text) are encoded once, at start, and every body is a few small fresh bytes (the id, the first element of
    random data) around shared views of them: no copy of a 2 MB JSON tensor per request (that copy made every JSON
    send ~4 ms late). A request of several --input-data entries joins views of each entry's encoding. The transport
    writes the parts in order (users.PartsBody)."""

    def __init__(self, scenario: Scenario, info: dict[str, Any], seed: int, pool_size: int = POOL_SIZE) -> None:
        self.kind = scenario.payload
        self.batch = scenario.batch
        self.path = Target(url=scenario.target, model_version=scenario.model_version).model_path(
            scenario.model, "/infer"
        )
        self.sig = sig = signature(info)
        shapes = dict(getattr(scenario, "shapes", None) or {})
        self.outputs = list(getattr(scenario, "outputs", None) or [])
        unknown = [o for o in self.outputs if o not in {t.name for t in sig.outputs}]
        if unknown:
            raise PayloadError(
                f"--output {unknown[0]}: model {sig.name} has no such output (outputs: {[t.name for t in sig.outputs]})"
            )
        self.expected_outputs = self.outputs or [t.name for t in sig.outputs]
        self.batched = sig.batched
        self.n = 0
        self.check_every = False
        self.allow_empty = False
        self.expected: list[dict[str, np.ndarray]] | None = None
        self._per_request = 1
        self._prefix: list[int] = []
        """Random data: units are whole request tensors. --input-data: units are items, [batch] goes in front."""
        self._patch: int | None = None
        source = getattr(scenario, "input_data", None)
        if self.kind == "image":
            if source not in (None, "random"):
                raise PayloadError(
                    "--input-data gives the tensors themselves: use --payload binary or json "
                    "(encoded images go in the BYTES input's entries)"
                )
            self.specs = input_specs(info, scenario.batch, shapes)
            if len(self.specs) != 1 or self.specs[0].datatype != "BYTES":
                raise PayloadError(
                    f"--payload image needs a model with one BYTES input (e.g. mobilenet_v2_jpeg); "
                    f"{scenario.model} has {[(s.name, s.datatype) for s in self.specs]}"
                )
            self.images = load_images(scenario.images_dir) if scenario.images_dir else synthetic_images(pool_size, seed)
            self._outputs_field = [{"name": o, "parameters": {"binary_data": True}} for o in self.outputs]
            return
        if source in (None, "random", "zero"):
            self._random_units(scenario, info, shapes, seed, pool_size, zero=source == "zero")
        else:
            self._data_units(scenario, read_input_file(source), shapes, seed)
        self._encode()

    # ---- values ---------------------------------------------------------------------------------------------------
    def _random_units(
        self, scenario: Scenario, info: dict[str, Any], shapes: dict[str, list[int]], seed: int, pool: int, zero: bool
    ) -> None:
        self.specs = input_specs(info, scenario.batch, shapes)
        bytes_in = [s for s in self.specs if s.datatype == "BYTES"]
        if len(self.specs) == 1 and bytes_in and _IMAGE_NAME.search(bytes_in[0].name):
            raise PayloadError(
                f"model {scenario.model} takes encoded images (BYTES input {bytes_in[0].name!r}): use --payload image, "
                f"or give your own values with --input-data"
            )
        rng = np.random.default_rng(seed)
        self._seq = np.arange(1 if zero else pool)
        self.names = [s.name for s in self.specs]
        self.datatypes = [s.datatype for s in self.specs]
        self.units = [
            [random_tensor(s.name, s.datatype, s.shape, rng, zero) for s in self.specs]
            for _ in range(1 if zero else pool)
        ]
        if not zero:
            t0 = self.units[0]
            numeric = [i for i, t in enumerate(t0) if t.size and t.dtype.kind not in "bO"]
            strings = [i for i, t in enumerate(t0) if t.size and t.dtype.kind == "O"]
            self._patch = (numeric or strings or [None])[0]

    def _data_units(self, scenario: Scenario, data: Any, shapes: dict[str, list[int]], seed: int) -> None:
        sig, batch = self.sig, scenario.batch
        check_shape_names(sig, shapes)
        if not sig.batched and batch != 1:
            raise PayloadError(f"model {sig.name} does not batch (max_batch_size 0); use --batch 1")
        if sig.max_batch_size and batch > sig.max_batch_size:
            raise PayloadError(f"--batch {batch} exceeds the model's max_batch_size {sig.max_batch_size}")
        c = conform(data, sig, shapes)
        self.names = c.names
        self.datatypes = [next(t.datatype for t in sig.inputs if t.name == n) for n in c.names]
        self.units = c.entries
        self._per_request = batch if sig.batched else 1
        self._prefix = [batch] if sig.batched else []
        if batch > 1:
            for k, e in enumerate(self.units):
                for name, a, b in zip(self.names, e, self.units[0]):
                    if a.shape != b.shape:
                        raise PayloadError(
                            f"--input-data {data.path}: entry {k}, input {name!r} has shape {list(a.shape)}, entry 0 "
                            f"{list(b.shape)}: a request of --batch {batch} joins several entries, which needs equal "
                            f"shapes (use --batch 1)"
                        )
        self._seq = entry_sequence(len(self.units), scenario.input_order, seed)
        self.specs = [
            InputSpec(n, d, self._prefix + list(a.shape)) for n, d, a in zip(self.names, self.datatypes, c.entries[0])
        ]
        if c.expected is not None and any(c.expected):
            named = sorted({n for e in c.expected for n in e})
            skipped = [n for n in named if self.outputs and n not in self.outputs]
            if skipped:
                raise PayloadError(
                    f"--input-data {data.path}: validation_data gives output {skipped[0]!r}, which --output does not "
                    f"request ({self.outputs}); request it too"
                )
            self.expected = c.expected
            self.check_every = True

    def _encode(self) -> None:
        """Each unit's tensors, encoded once: raw bytes (binary) and JSON text (json)."""
        self._raw: list[list[bytes | memoryview]] = []
        self._json: list[list[bytes]] = []
        for unit in self.units:
            if self.kind == "binary":
                self._raw.append([raw_view(t) for t in unit])
            else:
                self._json.append([json_text(n, t) for n, t in zip(self.names, unit)])
        self._inner = [[memoryview(text)[1:-1] for text in texts] for texts in self._json]  # a batch joins these
        if self.outputs:
            binary = {"parameters": {"binary_data": True}} if self.kind == "binary" else {}
            self._outputs_field: list[dict[str, Any]] = [{"name": o, **binary} for o in self.outputs]
            self._json_outputs = b',"outputs":' + orjson.dumps(self._outputs_field)

    def items(self, n: int) -> list[int]:
        """The entries (units) request n carries, in batch order."""
        seq, per = self._seq, self._per_request
        return [int(seq[(n * per + j) % len(seq)]) for j in range(per)]

    # ---- bodies ---------------------------------------------------------------------------------------------------
    def next(self) -> tuple[bytes, dict[str, str]]:
        parts, headers = self.next_parts()
        return b"".join(parts), headers

    def next_tensors(self) -> tuple[str, list[Tensor]]:
        """The next request's id and its tensors in binary form, each (name, datatype, shape, raw pieces in order):
        what the OIP binary extension (`next_parts`) and gRPC's raw_input_contents (grpc_codec) frame. Binary and
        image payloads only."""
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
            return rid, [(spec.name, "BYTES", list(spec.shape), elems)]
        items = self.items(n)
        prefix = self._prefix
        out: list[Tensor] = []
        for i, (name, dt) in enumerate(zip(self.names, self.datatypes)):
            pieces = [self._raw[k][i] for k in items] if self._patch != i else self._patched_raw(n, items[0], i)
            out.append((name, dt, self._shape(items[0], i, prefix), pieces))
        return rid, out

    def next_parts(self) -> tuple[list[bytes | memoryview], dict[str, str]]:
        if self.kind in ("binary", "image"):
            rid, tensors = self.next_tensors()
            blobs: list[bytes | memoryview] = []
            inputs = []
            for name, dt, shape, pieces in tensors:
                blobs += pieces
                inputs.append(
                    {
                        "name": name,
                        "shape": shape,
                        "datatype": dt,
                        "parameters": {"binary_data_size": sum(len(p) for p in pieces)},
                    }
                )
            head: dict[str, Any] = {"id": rid, "inputs": inputs, "parameters": {"binary_data_output": True}}
            if self.outputs:
                head["outputs"] = self._outputs_field
            header = orjson.dumps(head)
            return coalesce([header, *blobs]), {
                "Inference-Header-Content-Length": str(len(header)),
                "Content-Type": "application/octet-stream",
            }
        n = self.n
        self.n += 1
        rid = str(n)
        items = self.items(n)
        prefix = self._prefix
        parts: list[bytes | memoryview] = [b'{"id":"', rid.encode(), b'","inputs":[']
        for i, (name, dt) in enumerate(zip(self.names, self.datatypes)):
            if i:
                parts.append(b",")
            meta = {"name": name, "shape": self._shape(items[0], i, prefix), "datatype": dt}
            parts += [orjson.dumps(meta)[:-1], b',"data":']
            if self._patch == i:
                parts += self._patched_json(n, items[0], i)
            elif len(items) == 1:
                parts.append(self._json[items[0]][i])
            else:
                inner = [self._inner[k][i] for k in items]
                parts.append(b"[")
                parts += join([p for p in inner if len(p)], b",")
                parts.append(b"]")
            parts.append(b"}")
        parts.append(b"]")
        if self.outputs:
            parts.append(self._json_outputs)
        parts.append(b"}")
        return coalesce(parts), {"Content-Type": "application/json"}

    def _shape(self, k: int, i: int, prefix: list[int]) -> list[int]:
        return prefix + list(self.units[k][i].shape)

    def _patched_raw(self, n: int, k: int, i: int) -> list[bytes | memoryview]:
        """Random data: unit k's input i with request n's counter as its first element (or first 16 characters)."""
        t, raw = self.units[k][i], self._raw[k][i]
        if t.dtype.kind == "O":
            return [raw[:4], b"%016x" % n, raw[20:]]
        first = np.array([first_value(t.dtype, n // len(self.units))], t.dtype).tobytes()
        return [first, raw[len(first) :]]

    def _patched_json(self, n: int, k: int, i: int) -> list[bytes | memoryview]:
        t, text = self.units[k][i], self._json[k][i]
        if t.dtype.kind == "O":
            return [b'["', b"%016x" % n, memoryview(text)[18:]]
        return [b"[", orjson.dumps(first_value(t.dtype, n // len(self.units))), after_first(text)]

    # ---- answers --------------------------------------------------------------------------------------------------
    def success(self, status: int) -> bool:
        return status == 200

    def judge(self, body: bytes, header: Any) -> tuple[str, str] | None:
        """RequestCodec.judge: the OIP answer's structure ("InvalidResponse"), then, with validation_data, its
        values against the entries the request carried, found from the echoed id ("invalid_output")."""
        parsed = parse_answer(body, header("inference-header-content-length"))
        if isinstance(parsed, str):
            return ("InvalidResponse", parsed)
        head, hl, binary_len = parsed
        return self.judge_head(head, body, hl, binary_len)

    def judge_head(self, head: dict[str, Any], body: bytes, hl: int, binary_len: int) -> tuple[str, str] | None:
        """`judge` after parsing: an answer as an OIP head, its binary outputs at body[hl:] (`binary_len` bytes), from
        REST or from gRPC (grpc_codec, raw outputs joined)."""
        problem = structure_problem(head, binary_len, self.expected_outputs, self.batch if self.batched else None)
        if problem:
            return ("InvalidResponse", problem)
        if self.expected is None:
            return None
        rid = head.get("id")
        try:
            n = int(rid) if isinstance(rid, str) else -1
        except ValueError:
            n = -1
        if not 0 <= n < self.n:
            return (
                "InvalidResponse",
                f"response id {rid!r} is not one this run sent: checking validation_data needs the server to echo "
                f"the request id (OIP)",
            )
        try:
            outputs = decode_outputs(head, body, hl)
        except ValueError as e:
            return ("InvalidResponse", str(e))
        mismatch = validation_problem(outputs, self.expected, self.items(n), self.batched)
        return ("invalid_output", mismatch) if mismatch else None

    def check(self, body: bytes, header_length: str | None) -> str | None:
        """Full parse of one answer's structure; returns an error description or None."""
        parsed = parse_answer(body, header_length)
        if isinstance(parsed, str):
            return parsed
        head, _hl, binary_len = parsed
        return structure_problem(head, binary_len, self.expected_outputs, self.batch if self.batched else None)
