"""`--expect`: a check of a JSON answer by an RFC 6901 JSON pointer, optionally with the value it must hold.

`POINTER` needs the pointer to exist; `POINTER=JSON` (split at the first '=') needs it to hold that JSON value, by
JSON equality (numbers by value, 1 == 1.0; booleans are not numbers; objects by members, arrays in order). Pointer
syntax: '' is the whole answer, else '/'-separated tokens in which '~1' stands for '/' and '~0' for '~'; an array
takes a decimal index without leading zeros ('-', past the end, never exists). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from loadgen.engine.tensors import PayloadError

_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_TILDE = re.compile(r"~(?![01])")


class PointerMissing(Exception):
    """The pointer does not resolve; the message says where the path broke and what was there."""


@dataclass(frozen=True)
class Expect:
    """A parsed `--expect POINTER[=JSON]`."""

    spec: str
    pointer: str
    tokens: tuple[str, ...]
    has_value: bool = False
    value: Any = None

    def problem(self, doc: Any) -> str | None:
        """None when the answer passes, else what was found (naming the pointer)."""
        what = self.pointer or "(the whole answer)"
        try:
            found = resolve_pointer(doc, self.tokens)
        except PointerMissing as e:
            return f"--expect {self.spec}: the answer lacks {what}: {e}"
        if self.has_value and not json_equal(found, self.value):
            return f"--expect {self.spec}: {what} is {show(found)}, expected {show(self.value)}"
        return None


def parse_expect(spec: str) -> Expect:
    """`POINTER` or `POINTER=JSON`; PayloadError with the fix otherwise."""
    pointer, sep, raw = spec.partition("=")
    tokens = parse_pointer(pointer, spec)
    if not sep:
        return Expect(spec, pointer, tokens)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PayloadError(
            f"--expect {spec}: the value after '=' must be JSON, e.g. {pointer}=3, {pointer}=true or "
            f"'{pointer}=\"cat\"' (a string in quotes)"
        ) from None
    return Expect(spec, pointer, tokens, True, value)


def parse_pointer(pointer: str, spec: str | None = None) -> tuple[str, ...]:
    """RFC 6901 pointer -> its reference tokens, unescaped (~1 -> '/', then ~0 -> '~')."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise PayloadError(
            f"--expect {spec or pointer}: a JSON pointer starts with '/' (RFC 6901), e.g. /predictions/0"
        )
    tokens = pointer[1:].split("/")
    if any(_BAD_TILDE.search(t) for t in tokens):
        raise PayloadError(
            f"--expect {spec or pointer}: in a JSON pointer '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')"
        )
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def format_pointer(tokens: tuple[str, ...]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def resolve_pointer(doc: Any, tokens: tuple[str, ...]) -> Any:
    """The value at `tokens`; raises PointerMissing naming where the path broke and what was there."""
    cur = doc
    for i, tok in enumerate(tokens):
        here = format_pointer(tokens[:i]) or "the answer"
        if isinstance(cur, dict):
            if tok not in cur:
                keys = sorted(cur)
                more = "..." if len(keys) > 12 else ""
                raise PointerMissing(f"{here} has no member {tok!r} (it has {keys[:12]}{more})")
            cur = cur[tok]
        elif isinstance(cur, list):
            if not _INDEX.fullmatch(tok):
                raise PointerMissing(f"{here} is an array and {tok!r} is not an index")
            if int(tok) >= len(cur):
                raise PointerMissing(f"{here} is an array of {len(cur)}, no index {tok}")
            cur = cur[int(tok)]
        else:
            raise PointerMissing(f"{here} is {show(cur)}, not an object or array")
    return cur


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), booleans apart from numbers, objects by members."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and bool(a == b)


def show(v: Any, limit: int = 80) -> str:
    """A value as compact JSON, cut at `limit` characters."""
    try:
        text = orjson.dumps(v).decode()
    except TypeError:
        text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def loads_answer(raw: bytes) -> Any:
    """An answer's JSON (OIP or http-json): strict JSON, or (only when orjson refuses it) with the NaN / Infinity /
    -Infinity literals that Python and Triton-compatible servers write for non-finite floats."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if b"NaN" not in raw and b"Infinity" not in raw:
            raise
        import json

        return json.loads(raw)
