"""Parse the `Server-Timing` response header (W3C Server Timing) — pure, tolerant, fast.

Example: `preprocess;dur=1.31, queue;dur=4.02, compute;dur=38.10, batch;desc="8", total;dur=43.9`
Durations are milliseconds. The executed batch size travels as `batch;desc="8"` (also accepted:
`batch;desc=8` or `batch;dur=8`). Unknown metrics and parameters are kept or ignored, never fatal;
malformed entries are skipped.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

_TOKEN = r"[^\s;,=\"]+"
_VALUE = r"(?:\"(?:[^\"\\]|\\.)*\"|[^\s;,\"]*)"
_PARAM_RE = re.compile(rf"\s*;\s*({_TOKEN})\s*(?:=\s*({_VALUE}))?")
_METRIC_RE = re.compile(rf"\s*({_TOKEN})((?:\s*;\s*{_TOKEN}\s*(?:=\s*{_VALUE})?)*)\s*(?:,|$)")


class ServerTiming(NamedTuple):
    durations_ms: dict[str, float]
    """metric name (lower case) -> dur in ms, for metrics that carry a numeric dur."""
    descriptions: dict[str, str]
    """metric name (lower case) -> desc (unquoted)."""
    batch: int | None
    """executed batch size (items), when the server reported it."""

    def get(self, name: str) -> float | None:
        return self.durations_ms.get(name)


EMPTY = ServerTiming({}, {}, None)


def _duration(v: str) -> float | None:
    try:
        d = float(v)
    except ValueError:
        return None
    return d if math.isfinite(d) else None


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


_QUOTED_SEPARATOR = re.compile(r'"[^"]*[,;\\][^"]*"')
_BAD_NAME = re.compile(r'[\s="]')


def parse_server_timing(header: str | None) -> ServerTiming:
    """Parse one header value (several headers may be joined with ', ')."""
    if not header:
        return EMPTY
    if "\\" in header or _QUOTED_SEPARATOR.search(header):
        return _parse_general(header)
    # fast path (no quoted separators, no escapes): plain splits, same results as the general parser
    durations: dict[str, float] = {}
    descs: dict[str, str] = {}
    for entry in header.split(","):
        parts = entry.split(";")
        name = parts[0].strip().lower()
        if not name or _BAD_NAME.search(name):
            continue
        for prm in parts[1:]:
            key, eq, val = prm.partition("=")
            if not eq:
                continue
            key, val = key.strip().lower(), val.strip()
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                val = val[1:-1]
            elif '"' in val or " " in val:
                continue
            _store(name, key, val, durations, descs)
    return _finish(durations, descs)


def _parse_general(header: str) -> ServerTiming:
    durations: dict[str, float] = {}
    descs: dict[str, str] = {}
    pos, n = 0, len(header)
    while pos < n:
        m = _METRIC_RE.match(header, pos)
        if m is None or m.end() == pos:
            nxt = header.find(",", pos)  # skip a malformed entry
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        pos = m.end()
        name = m.group(1).lower()
        for pm in _PARAM_RE.finditer(m.group(2) or ""):
            key = pm.group(1).lower()
            val = pm.group(2)
            if val is None:
                continue
            _store(name, key, _unquote(val), durations, descs)
    return _finish(durations, descs)


def _store(name: str, key: str, val: str, durations: dict[str, float], descs: dict[str, str]) -> None:
    """Keep one metric parameter: `dur` as milliseconds (when numeric), `desc` as text; others are ignored."""
    if key == "dur":
        d = _duration(val)
        if d is not None:
            durations[name] = d
    elif key == "desc":
        descs[name] = val


def _finish(durations: dict[str, float], descs: dict[str, str]) -> ServerTiming:
    batch: int | None = None
    raw = descs.get("batch")
    if raw is None and "batch" in durations:
        raw = str(durations.pop("batch"))
    if raw is not None:
        try:
            b = int(float(raw))
            batch = b if b > 0 else None
        except ValueError:
            batch = None
    durations.pop("batch", None)
    return ServerTiming(durations, descs, batch)
