"""JSON as Triton reads and writes it: the stdlib/orjson parse plus RapidJSON's extra literals (NaN, Infinity,
-Infinity, and RapidJSON-only forms) outside strings, strict UTF-8 in strings; non-finite floats written as literals.
Pure (bytes in, values out); server.protocol builds OIP requests and responses on top of it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import orjson

from server.errors import InferError

JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


_RAPIDJSON_ONLY = re.compile(r'"(?:[^"\\]|\\.)*"|-NaN|Inf(?!inity)')


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _rapidjson_token(m: re.Match) -> str:
    tok = m.group(0)
    if tok[0] == '"':
        return tok
    return "NaN" if tok == "-NaN" else "Infinity"  # Inf → Infinity (a leading '-' stays in place)


def _check_strings(value: Any) -> None:
    """The stdlib parser lets a lone surrogate escape (\\ud800) through as a str that cannot be encoded."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            v.encode("utf-8")
        elif isinstance(v, dict):
            for k, item in v.items():
                k.encode("utf-8")
                if isinstance(item, (str, list, dict)):
                    stack.append(item)
        elif isinstance(v, list):
            stack.extend(item for item in v if isinstance(item, (str, list, dict)))


def loads_json(raw: bytes | memoryview) -> Any:
    """Parse JSON like Triton: strict JSON plus the NaN/Infinity literals (see the module docstring).

    The fast path is orjson alone. Only if orjson fails and the text holds such a literal is it parsed again
    with the stdlib parser. Raises ValueError (orjson.JSONDecodeError or json.JSONDecodeError) with a message.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        strict_error = e
    data = bytes(raw)
    if b"NaN" not in data and b"Inf" not in data:
        raise strict_error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise strict_error from None
    if "-NaN" in text or text.count("Inf") != text.count("Infinity"):
        text = _RAPIDJSON_ONLY.sub(_rapidjson_token, text)
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            _check_strings(value)
        except UnicodeEncodeError:
            raise ValueError("a JSON string holds a lone UTF-16 surrogate escape") from None
    return value


def _nonfinite_literal(v: float) -> bytes:
    if math.isnan(v):
        return b"NaN"
    return b"Infinity" if v > 0 else b"-Infinity"


def float_json(flat: np.ndarray) -> Any:
    """A flat float array for orjson; with NaN/±inf (which orjson writes as null) the JSON text with Triton's
    literals NaN, Infinity, -Infinity in their places, as a pre-serialised orjson.Fragment."""
    finite = np.isfinite(flat)
    if finite.all():
        return flat
    parts = orjson.dumps(flat, option=JSON_OPTS).split(b"null")  # a number array: 'null' only where non-finite
    literals = [_nonfinite_literal(float(v)) for v in flat[~finite]]
    if len(parts) != len(literals) + 1:  # pragma: no cover - orjson changed how it writes non-finite numbers
        raise InferError("cannot encode non-finite output values as JSON")
    out = [parts[0]]
    for lit, part in zip(literals, parts[1:]):
        out.append(lit)
        out.append(part)
    return orjson.Fragment(b"".join(out))
