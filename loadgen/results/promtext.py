"""The Prometheus text exposition format (0.0.4) as samples, and lookups over one scrape (pure, no I/O).

Tolerant: comments and `# HELP` are skipped, `# TYPE` kept (a labelled family that has not been used yet has a TYPE
line and no sample), label values may hold escaped quotes, backslashes and newlines and unescaped commas, braces and
`=`, timestamps are optional, NaN / +Inf / -Inf are numbers, OpenMetrics' `# EOF` and exemplars are ignored; a
malformed line is skipped and counted, never fatal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float
    timestamp: float | None = None


@dataclass
class Snapshot:
    """One scrape: its samples by name, the `# TYPE` of each family, malformed lines skipped, and when (monotonic s,
    set by the caller) it was taken."""

    by_name: dict[str, list[Sample]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    t_s: float | None = None

    @property
    def samples(self) -> list[Sample]:
        return [s for group in self.by_name.values() for s in group]

    def names(self) -> set[str]:
        """Every metric name seen: sample names and families declared by `# TYPE` (a labelled series has no sample
        until first used, but its TYPE line is there)."""
        return set(self.by_name) | set(self.types)


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WS = " \t"


def parse(text: str, t_s: float | None = None) -> Snapshot:
    """The samples of a Prometheus text exposition. Malformed lines are skipped and counted, never fatal."""
    snap = Snapshot(t_s=t_s)
    for raw in text.split("\n"):
        line = raw.strip(_WS + "\r")
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].split(None, 3)
            if len(parts) >= 3 and parts[0] == "TYPE":
                snap.types[parts[1]] = parts[2].lower()
            continue
        s = parse_sample(line)
        if s is None:
            snap.skipped += 1
        else:
            snap.by_name.setdefault(s.name, []).append(s)
    return snap


def parse_samples(text: str) -> list[Sample]:
    return parse(text).samples


def parse_sample(line: str) -> Sample | None:
    """`name{label="value",...} value [timestamp]`; label values may hold escaped quotes, backslashes, newlines, and
    unescaped commas, braces and `=`. None if the line is not a sample."""
    m = _NAME.match(line)
    if m is None:
        return None
    name, i, n = m.group(), m.end(), len(line)
    labels: dict[str, str] = {}
    try:
        while i < n and line[i] in _WS:
            i += 1
        if i < n and line[i] == "{":
            i += 1
            while True:
                while line[i] in _WS:
                    i += 1
                if line[i] == "}":
                    i += 1
                    break
                lm = _LABEL.match(line, i)
                if lm is None:
                    return None
                key, i = lm.group(), lm.end()
                while line[i] in _WS:
                    i += 1
                if line[i] != "=":
                    return None
                i += 1
                while line[i] in _WS:
                    i += 1
                if line[i] != '"':
                    return None
                i += 1
                buf: list[str] = []
                while line[i] != '"':
                    if line[i] == "\\":
                        esc = line[i + 1]
                        buf.append("\n" if esc == "n" else esc if esc in '\\"' else "\\" + esc)
                        i += 2
                    else:
                        buf.append(line[i])
                        i += 1
                i += 1
                labels[key] = "".join(buf)
                while line[i] in _WS:
                    i += 1
                if line[i] == ",":
                    i += 1
                elif line[i] != "}":
                    return None
    except IndexError:  # the line ended inside the label set
        return None
    rest = line[i:].split()
    if "#" in rest:  # an OpenMetrics exemplar follows the value
        rest = rest[: rest.index("#")]
    if not rest or len(rest) > 2:
        return None
    value = _number(rest[0])
    if value is None:
        return None
    ts = _number(rest[1]) if len(rest) == 2 else None
    if len(rest) == 2 and ts is None:
        return None
    return Sample(name, labels, value, ts)


def _number(tok: str) -> float | None:
    if "_" in tok:  # Python's float() accepts 1_000; Prometheus does not
        return None
    try:
        return float(tok)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------- lookup --
Match = Mapping[str, str]


def select(snap: Snapshot, names: tuple[str, ...], where: Match | None = None) -> list[Sample]:
    """The samples of the first name in `names` that has any sample whose labels include `where` (NaN skipped)."""
    for name in names:
        got = [
            s
            for s in snap.by_name.get(name, ())
            if not math.isnan(s.value) and all(s.labels.get(k) == v for k, v in (where or {}).items())
        ]
        if got:
            return got
    return []


def total(snap: Snapshot, names: tuple[str, ...], where: Match | None = None) -> float | None:
    """The sum over every matching series (versions, instances, reasons) or None when none matches."""
    got = select(snap, names, where)
    return sum(s.value for s in got) if got else None
