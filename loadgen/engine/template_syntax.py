"""The body template's placeholders (the reference is loadgen.engine.template's docstring and docs/http-json.md):
parsing a template into literal text and Slots, and encoding a tensor the way a placeholder asks. Pure: no I/O.

Every `{{` opens a placeholder, closed by `}}` on the same line; what is between them (spaces trimmed) is `id`,
`batch`, `image:b64|raw` or `tensor:NAME:nested|flat|b64|raw[:DTYPE]` (read from the right: NAME may hold ':').
Anything else is a PayloadError naming FILE:LINE and the known forms. One newline ending the file is dropped.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import numpy as np
import orjson

from loadgen.engine.payloads import _DTYPES, PayloadError

ENCODINGS = ("nested", "flat", "b64", "raw")
KNOWN = "{{tensor:NAME:nested|flat|b64|raw[:DTYPE]}}, {{image:b64|raw}}, {{id}}, {{batch}}"
_PLACEHOLDER = re.compile(rb"\{\{([^{}\n]*)\}\}")


@dataclass(frozen=True)
class Slot:
    """One placeholder: kind tensor | image | id | batch; where = FILE:LINE."""

    kind: str
    where: str
    name: str = ""
    encoding: str = ""
    dtype: str | None = None


Piece = bytes | Slot


def parse_template(text: bytes, source: str = "template") -> list[Piece]:
    """Template text -> literal bytes and Slots, alternating (first and last are literal, maybe empty)."""
    text = text[:-2] if text.endswith(b"\r\n") else text[:-1] if text.endswith(b"\n") else text
    pieces: list[Piece] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        pieces.append(_literal(text, pos, m.start(), source))
        line = text.count(b"\n", 0, m.start()) + 1
        pieces.append(_slot(m.group(1).decode("utf-8", "replace").strip(), f"{source}:{line}"))
        pos = m.end()
    pieces.append(_literal(text, pos, len(text), source))
    return pieces


def _literal(text: bytes, start: int, end: int, source: str) -> bytes:
    bad = text.find(b"{{", start, end)
    if bad >= 0:
        line = text.count(b"\n", 0, bad) + 1
        raise PayloadError(
            f"{source}:{line}: '{{{{' without its closing '}}}}' on the same line; placeholders: {KNOWN}"
        )
    return text[start:end]


def _slot(content: str, where: str) -> Slot:
    parts = [p.strip() for p in content.split(":")]
    if content in ("id", "batch"):
        return Slot(content, where)
    if parts[0] == "image" and len(parts) == 2 and parts[1] in ("b64", "raw"):
        return Slot("image", where, encoding=parts[1])
    if parts[0] == "tensor":
        dtype = parts.pop().upper() if len(parts) > 3 and parts[-1].upper() in _DTYPES else None
        name = ":".join(parts[1:-1])
        if len(parts) >= 3 and parts[-1] in ENCODINGS and name:
            return Slot("tensor", where, name, parts[-1], dtype)
        raise PayloadError(
            f"{where}: {{{{{content}}}}}: expected {{{{tensor:NAME:ENCODING}}}} or {{{{tensor:NAME:ENCODING:DTYPE}}}}, "
            f"ENCODING one of {'|'.join(ENCODINGS)}, DTYPE one of {', '.join(_DTYPES)}"
        )
    raise PayloadError(f"{where}: unknown placeholder {{{{{content}}}}}; known: {KNOWN} (docs/http-json.md)")


def encode_tensor(a: np.ndarray, encoding: str) -> bytes:
    """nested | flat: JSON lists (orjson writes each float at its own precision); b64 | raw: little-endian bytes."""
    if encoding in ("b64", "raw"):
        raw = np.ascontiguousarray(a).tobytes()
        return base64.b64encode(raw) if encoding == "b64" else raw
    a = a.reshape(-1) if encoding == "flat" else a
    try:
        return orjson.dumps(np.ascontiguousarray(a), option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # 0-d, or not native byte order
        return orjson.dumps(a.tolist())
