"""Bodies for any JSON-over-HTTP endpoint (`--protocol http-json`): TorchServe, TF Serving, LitServe, BentoML, yours.

POST `--path` (below the target's prefix) with the file `--body-template` (normally JSON), its placeholders filled:

  {{tensor:NAME:nested}}  tensor NAME as a nested JSON list of exactly its shape: [[0.63,0.27],[0.04,0.82]]
  {{tensor:NAME:flat}}    the same values as one flat JSON list, row-major: [0.63,0.27,0.04,0.82]
  {{tensor:NAME:b64}}     base64 of its raw little-endian bytes (text without quotes: write "{{tensor:x:b64}}")
  {{tensor:NAME:raw}}     its raw little-endian bytes (a binary body)
  {{image:b64}}           an encoded image, base64, no quotes (seeded synthetic JPEGs, or --images DIR: JPEG/PNG)
  {{image:raw}}           the encoded image's bytes: a template holding only this sends the image itself as the body
  {{id}}                  a request id unique within the run, e.g. 0000c0de-17 (no quotes: write "{{id}}" in JSON)
  {{batch}}               the --batch value, a number (--batch also counts the items of a request for items/s)

NAME's shape is `--shape NAME:d1,d2,...`, exactly as sent (the template adds no batch dimension), or the arrays' of
`--input-data` (one entry per request; converted to the datatype without loss, loadgen.engine.inputs). A tensor's
datatype is FP32 unless a placeholder ends with one: `{{tensor:NAME:nested:INT64}}` (BOOL, UINT8..UINT64,
INT8..INT64, FP16, FP32, FP64; one per NAME). NAME may hold ':' (TF names like `x:0`: read from the right). In one
body, every placeholder of a NAME shows the same values, and each image placeholder takes the next image. Values:
seeded random (floats in [0, 1), integers 0..99) unless --input-data gives them (in order, or shuffled by the seed
with --input-order random). Every `{{` opens a placeholder: an unknown one is an error naming FILE:LINE and the fix
(loadgen.engine.template_syntax). One newline ending the file is dropped (a raw-image template stays the image).

Content-Type: a `--header Content-Type: ...` wins (none is added); else image/jpeg | image/png (sniffed) for a body
that is only {{image:raw}}, application/octet-stream for one that is only {{tensor:...:raw}} or a .bin template,
application/json otherwise. A JSON body must parse once filled (checked before any load).

Bodies that keep the schedule: a body is built at send time, so its cost is schedule lag. Every pool entry (POOL_SIZE,
or the --input-data entries; fewer when big: the pool holds at most POOL_BYTES) is rendered once, at start, and cut at
its `{{id}}` placeholders; `next_parts` puts a fresh id between the shared pieces (payloads.coalesce): microseconds
for a 2 MB body, never a copy of it. Without {{id}}, bodies repeat every pool entry.

Answers: a success is a 2xx status. `--expect POINTER` (RFC 6901) also needs the pointer in the JSON answer,
`--expect POINTER=JSON` that value there (loadgen.engine.jsonpointer). A failed check counts as "unexpected_answer",
an answer that is not JSON as "InvalidResponse". Every answer is judged while answers are small
(<= CHECK_EVERY_MAX_BYTES: parsing counts in the latency), else 1 in SAMPLE_CHECK_EVERY. Without --expect any 2xx
passes, an empty one (204) included.

Preflight (`template_info`): the template checked, then ONE request: 401/403, TLS failures, other non-2xx answers, a
redirect, or a first answer failing --expect stop the run (PayloadError) before any load.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadgen.engine.jsonpointer import loads_answer, parse_expect
from loadgen.engine.payloads import _DTYPES, POOL_SIZE, PayloadError, coalesce, load_images, synthetic_images
from loadgen.engine.target import Target, redact_url
from loadgen.engine.template_syntax import Slot, encode_tensor, parse_template

POOL_BYTES = 256 * 1024 * 1024
"""Memory of one codec's pre-rendered bodies (per generating process): fewer pool entries when bodies are huge."""
CHECK_EVERY_MAX_BYTES = 64 * 1024
"""--expect judges every answer up to this size (parsing ~20 KB of JSON costs ~30 us); past it, a sample."""
SHARED_MIN_BYTES = 64 * 1024
_MAGIC = ((b"\xff\xd8", "image/jpeg"), (b"\x89PNG", "image/png"))


def _random(dtype: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(_DTYPES[dtype])
    if dt.kind == "f":
        return rng.random(shape, dtype=np.float64).astype(dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, 100, shape).astype(dt)


def _oip_dtype(a: np.ndarray) -> str | None:
    le = a.dtype.newbyteorder("<") if a.dtype.byteorder in (">", "=") else a.dtype
    return next((k for k, v in _DTYPES.items() if np.dtype(v) == le), None)


class TemplateCodec:
    """loadgen.engine.codec.RequestCodec for `--protocol http-json` (see the module docstring)."""

    def __init__(self, scenario: Any, info: dict[str, Any] | None = None, seed: int = 1, pool_size: int | None = None):
        self.source = str(scenario.body_template)
        try:
            text = Path(self.source).read_bytes()
        except OSError as e:
            raise PayloadError(f"--body-template {self.source}: {e.strerror or e}") from None
        self.pieces = parse_template(text, self.source)
        self.slots = [p for p in self.pieces if isinstance(p, Slot)]
        path = scenario.path or "/"
        self.path = Target(url=scenario.target).path(path if path.startswith("/") else "/" + path)
        self.expect = parse_expect(scenario.expect) if scenario.expect is not None else None
        self.allow_empty = self.expect is None
        self.check_every = self.expect is not None
        self.batch = int(scenario.batch)
        self.n = 0
        self._id_prefix = b"%08x-" % (seed & 0xFFFFFFFF)
        self._n_ids = sum(s.kind == "id" for s in self.slots)
        self._n_images = sum(s.kind == "image" for s in self.slots)
        given = [h.partition(":") for h in scenario.headers]
        self._user_type = next((v.strip() for k, _, v in given if k.strip().lower() == "content-type"), None)
        rng = np.random.default_rng(seed)
        self.dtypes = self._dtypes()
        self.shapes: dict[str, list[int]] = {}
        values, count = self._values(scenario, rng)
        if pool_size is not None:
            count = min(count, pool_size)
        self.images_source = "synthetic"
        images: list[bytes] = []
        if scenario.images_dir and not self._n_images:
            raise PayloadError(
                f"--images {scenario.images_dir}: {self.source} has no {{{{image:b64}}}} or {{{{image:raw}}}}"
            )
        if self._n_images:
            self.images_source = scenario.images_dir or "synthetic"
            n_img = min(POOL_SIZE, count * self._n_images)
            images = load_images(scenario.images_dir) if scenario.images_dir else synthetic_images(n_img, seed)
        first = self._render(0, values(0), images)
        count = max(1, min(count, POOL_BYTES // max(1, sum(len(r) for r in first[0]))))
        self._entries = [first] + [self._render(k, values(k), images) for k in range(1, count)]
        self._ready = [coalesce(list(regions)) for regions, _ in self._entries] if not self._n_ids else []

    # ---- set-up ---------------------------------------------------------------------------------------------------
    def _dtypes(self) -> dict[str, str]:
        """Tensor name -> datatype (FP32 unless a placeholder names one; one per name)."""
        explicit: dict[str, Slot] = {}
        names: dict[str, None] = {}
        for s in self.slots:
            if s.kind != "tensor":
                continue
            names[s.name] = None
            if s.dtype is not None:
                first = explicit.setdefault(s.name, s)
                if first.dtype != s.dtype:
                    raise PayloadError(
                        f"{s.where}: tensor {s.name!r} is {s.dtype} here, {first.dtype} at {first.where}"
                    )
        return {n: (explicit[n].dtype if n in explicit else None) or "FP32" for n in names}

    def _values(self, scenario: Any, rng: np.random.Generator) -> tuple[Callable[[int], dict[str, np.ndarray]], int]:
        """(entry k -> {name: array}, natural pool size)."""
        if scenario.input_data:
            return self._data_values(scenario, rng)
        for name in self.dtypes:
            shape = scenario.shapes.get(name)
            if shape is None:
                where = next(s.where for s in self.slots if s.name == name)
                given = f" (--shape was given for {sorted(scenario.shapes)})" if scenario.shapes else ""
                raise PayloadError(
                    f"{where}: tensor {name!r} needs a shape: add --shape {name}:d1,d2,... "
                    f"(e.g. --shape {name}:1,3,224,224), or give its values with --input-data{given}"
                )
            self.shapes[name] = list(shape)

        def random_values(_k: int) -> dict[str, np.ndarray]:  # called once per entry, in order
            return {n: _random(d, self.shapes[n], rng) for n, d in self.dtypes.items()}

        return random_values, POOL_SIZE

    def _data_values(
        self, scenario: Any, rng: np.random.Generator
    ) -> tuple[Callable[[int], dict[str, np.ndarray]], int]:
        """--input-data: one entry per request, converted to each tensor's datatype without loss (inputs.py)."""
        path = scenario.input_data
        try:
            from loadgen.engine.inputs import read_input_file
        except ImportError:
            raise PayloadError(
                f"--input-data {path}: this build cannot read input files (no loadgen.engine.inputs)"
            ) from None
        dtypes, shapes = dict(self.dtypes), dict(scenario.shapes)
        only = next(iter(dtypes), "")
        if len(dtypes) == 1:  # a .npy holds the only input, under the name ""
            dtypes[""] = dtypes[only]
            if only in shapes:
                shapes[""] = shapes[only]
        try:
            entries = [dict(e) for e in read_input_file(path, dtypes, shapes).entries]
        except (ValueError, OSError, KeyError) as e:
            text = str(e)
            raise PayloadError(text if text.startswith("--input-data") else f"--input-data {path}: {text}") from None
        for entry in entries if len(self.dtypes) == 1 else []:
            if "" in entry:
                entry[only] = entry.pop("")
        order = [int(i) for i in rng.permutation(len(entries))] if scenario.input_order == "random" else None

        def data_values(k: int) -> dict[str, np.ndarray]:
            i = order[k] if order is not None else k
            out: dict[str, np.ndarray] = {}
            for name, want in self.dtypes.items():
                where = f"--input-data {path}: entry {i}, tensor {name!r}"
                if name not in entries[i]:
                    raise PayloadError(f"{where}: missing (the entry has {sorted(entries[i])})")
                a = np.asarray(entries[i][name])
                if _oip_dtype(a) != want:
                    raise PayloadError(f"{where}: {a.dtype} values, the template says {want} (no silent cast)")
                shape = scenario.shapes.get(name)
                if shape is not None and list(a.shape) != list(shape):
                    raise PayloadError(f"{where}: shape {list(a.shape)}, --shape says {shape}")
                self.shapes.setdefault(name, list(a.shape))
                out[name] = a.astype(np.dtype(_DTYPES[want]), copy=False)
            return out

        return data_values, len(entries)

    def _render(self, k: int, values: dict[str, np.ndarray], images: list[bytes]) -> tuple[list[Any], dict[str, str]]:
        """Entry k: the body's regions between {{id}} placeholders (big ones as shared views), and its headers."""
        regions: list[bytes | memoryview] = []
        cur: list[bytes] = []
        enc: dict[tuple[str, str], bytes] = {}
        img_i = k * self._n_images
        first_image = b""
        for p in self.pieces:
            if isinstance(p, bytes):
                cur.append(p)
            elif p.kind == "id":
                regions.append(_shared(b"".join(cur)))
                cur = []
            elif p.kind == "batch":
                cur.append(b"%d" % self.batch)
            elif p.kind == "image":
                img = images[img_i % len(images)]
                first_image = first_image or img
                img_i += 1
                cur.append(img if p.encoding == "raw" else base64.b64encode(img))
            else:
                key = (p.name, p.encoding)
                if key not in enc:
                    enc[key] = encode_tensor(values[p.name], p.encoding)
                cur.append(enc[key])
        regions.append(_shared(b"".join(cur)))
        ctype = self._content_type(first_image)
        return regions, ({"Content-Type": ctype} if ctype else {})

    def _content_type(self, image: bytes) -> str | None:
        if self._user_type is not None:
            return None
        only = [p for p in self.pieces if not isinstance(p, bytes) or p]
        if len(only) == 1 and isinstance(only[0], Slot) and only[0].encoding == "raw":
            if only[0].kind == "tensor":
                return "application/octet-stream"
            return next((t for magic, t in _MAGIC if image.startswith(magic)), "application/octet-stream")
        return "application/octet-stream" if self.source.lower().endswith(".bin") else "application/json"

    # ---- RequestCodec ---------------------------------------------------------------------------------------------
    def next_parts(self) -> tuple[list[bytes | memoryview], dict[str, str]]:
        n = self.n
        self.n = n + 1
        k = n % len(self._entries)
        regions, headers = self._entries[k]
        if not self._n_ids:
            return list(self._ready[k]), dict(headers)
        rid = b"%s%d" % (self._id_prefix, n)
        parts: list[bytes | memoryview] = [regions[0]]
        for r in regions[1:]:
            parts += (rid, r)
        return coalesce(parts), dict(headers)

    def success(self, status: int) -> bool:
        return 200 <= status < 300

    def judge(self, body: bytes, header: Callable[[str], Any]) -> tuple[str, str] | None:
        if self.expect is None:
            return None
        if len(body) > CHECK_EVERY_MAX_BYTES:
            self.check_every = False
        try:
            doc = loads_answer(body)
        except ValueError as e:
            return "InvalidResponse", f"the answer is not JSON ({e}); it starts {bytes(body[:80])!r}"
        problem = self.expect.problem(doc)
        return ("unexpected_answer", problem) if problem else None

    # ---- preflight ------------------------------------------------------------------------------------------------
    def is_json(self) -> bool:
        return "json" in (self._user_type or self._entries[0][1].get("Content-Type") or "").lower()

    def check_json(self) -> None:
        """A JSON body must parse once filled (placeholders render on one line: line numbers are the template's)."""
        if not self.is_json():
            return
        body = b"".join(self.sample_parts())
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise PayloadError(
                f"{self.source}:{e.lineno}: the body is not valid JSON once its placeholders are filled ({e.msg}); "
                'text placeholders need quotes: "{{id}}", "{{image:b64}}", "{{tensor:x:b64}}"'
            ) from None

    def sample_parts(self) -> list[bytes | memoryview]:
        regions = self._entries[0][0]
        return [x for r in regions[:-1] for x in (r, self._id_prefix + b"0")] + [regions[-1]]

    def describe_inputs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, dtype in self.dtypes.items():
            encodings = sorted({s.encoding for s in self.slots if s.kind == "tensor" and s.name == name})
            out.append({"name": name, "datatype": dtype, "shape": self.shapes.get(name), "encodings": encodings})
        if self._n_images:
            encodings = sorted({s.encoding for s in self.slots if s.kind == "image"})
            out.append(
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [self._n_images],
                    "encodings": encodings,
                    "source": self.images_source,
                }
            )
        return out


def _shared(b: bytes) -> bytes | memoryview:
    """Big regions as views: the transport slices them in chunks without copying."""
    return memoryview(b) if len(b) >= SHARED_MIN_BYTES else b


def template_info(scenario: Any, target: Target, timeout_s: float) -> dict[str, Any]:
    """preflight.model_info for http-json: the template checked (placeholders, shapes, JSON once filled), then ONE
    request, whose answer must be a 2xx (and pass --expect). Raises PayloadError with the fix."""
    codec = TemplateCodec(scenario, None, seed=scenario.seed, pool_size=1)
    codec.check_json()
    parts, headers = codec.next_parts()
    status, answer, reply = _send_first(target, codec.path, b"".join(parts), headers, timeout_s)
    where = f"{redact_url(target.origin)}{codec.path}"
    if codec.expect is not None:
        problem = codec.judge(answer, reply.get) if answer else ("", "the answer is empty")
        if problem:
            raise PayloadError(f"the first answer from {where} (HTTP {status}) does not pass --expect: {problem[1]}")
    return {
        "server": {
            "protocol": "http-json",
            "url": target.describe()["url"],
            "path": codec.path,
            "content_type": headers.get("Content-Type"),
            "first_answer": {"status": status, "bytes": len(answer), "content_type": reply.get("content-type")},
        },
        "metadata": {"name": scenario.model, "inputs": codec.describe_inputs(), "outputs": []},
        "config": None,
    }


def _send_first(
    target: Target, path: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int, bytes, Any]:
    """POST one body (no redirects followed: the load engine does not follow them either)."""
    import ssl
    import urllib.error
    import urllib.request

    from loadgen.engine.target import TargetError

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    where = f"{redact_url(target.origin)}{path}"
    try:
        ctx = target.ssl_context()
    except TargetError as e:
        raise PayloadError(str(e)) from None
    handlers: list[Any] = [NoRedirect()] + ([urllib.request.HTTPSHandler(context=ctx)] if ctx else [])
    req = urllib.request.Request(
        target.origin + path, data=body, headers={**target.request_headers(), **headers}, method="POST"
    )
    try:
        with urllib.request.build_opener(*handlers).open(req, timeout=timeout_s) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        try:
            detail = e.read()[:200].decode("utf-8", "replace")
        except Exception:
            detail = ""
        if e.code in (401, 403):
            raise PayloadError(
                f"the server refused the credentials (HTTP {e.code} from {where}; see --header / --bearer-token-file)"
            ) from None
        if 300 <= e.code < 400:
            raise PayloadError(
                f"{where} redirects (HTTP {e.code} to {e.headers.get('Location')}); inferload does not follow "
                "redirects: give the final URL with --target / --path"
            ) from None
        raise PayloadError(
            f"the first request to {where} answered HTTP {e.code}: {detail!r}; check --path, --body-template and "
            "--shape (docs/http-json.md)"
        ) from None
    except urllib.error.URLError as e:
        raise PayloadError(target._explain(e.reason, path)) from None
    except (ssl.SSLError, OSError) as e:
        raise PayloadError(target._explain(e, path)) from None
