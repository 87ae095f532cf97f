"""What a worker on another machine needs besides the scenario: the files the scenario names, shipped by the master.

A worker that joins with `inferload worker --master HOST` has no copy of the scenario file, the input data, the
request-body template, the images, the arrival trace or the TLS and token files. The master packs each file a
scenario field names (`pack`), sends it with the scenario, and the worker unpacks them into a directory of its own
and rewrites the fields to point there (`unpack`). A bearer token given only in the master's environment
(INFERLOAD_BEARER_TOKEN) travels as a token file too, so every worker sends what the master would.

Limits: at most `MAX_SHIP_BYTES` in all (they travel in one message per worker); more is refused with the reason
and the fix, before any load. Pure: file reads and writes only, no sockets (unit-tested).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_SHIP_BYTES = 256 * 1024 * 1024
"""The files of one scenario shipped to each worker, at most (base64 on the wire: 4/3 of it)."""

FILE_FIELDS = ("bearer_token_file", "ca_file", "client_cert", "client_key", "body_template", "input_data")
"""Scenario fields that name one file (input_data may also be a keyword: zero | random)."""
INPUT_KEYWORDS = ("zero", "random")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TOKEN_ENV = "INFERLOAD_BEARER_TOKEN"


class ShipError(ValueError):
    """The scenario's files cannot be shipped to the workers; the message says why and what to do."""


def _size(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _files_of(fields: Mapping[str, Any], environ: Mapping[str, str]) -> list[tuple[str, str, Path | bytes]]:
    """(field, name, path-or-content) for every file the scenario needs; directories expand to their images."""
    out: list[tuple[str, str, Path | bytes]] = []
    for f in FILE_FIELDS:
        v = fields.get(f)
        if not v or (f == "input_data" and v in INPUT_KEYWORDS):
            continue
        p = Path(v)
        if not p.is_file():
            raise ShipError(f"{f} {v!r}: file not found on the master, so it cannot be shipped to the workers")
        out.append((f, p.name, p))
    if not fields.get("bearer_token_file") and environ.get(TOKEN_ENV):
        out.append(("bearer_token_file", "token", environ[TOKEN_ENV].encode()))
    d = fields.get("images_dir")
    if d:
        imgs = sorted(p for p in Path(d).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if Path(d).is_dir() else []
        if not imgs:
            raise ShipError(f"images_dir {d!r}: no .jpg/.jpeg/.png files on the master to ship to the workers")
        out += [("images_dir", p.name, p) for p in imgs]
    arrival = str(fields.get("arrival") or "")
    if arrival.startswith("trace:"):
        from loadgen.engine.arrivals import parse_trace_spec

        spec = parse_trace_spec(arrival)
        if not spec.path.is_file():
            raise ShipError(f"arrival {arrival!r}: trace file not found on the master")
        out.append(("arrival", spec.path.name, spec.path))
    return out


def pack(fields: Mapping[str, Any], environ: Mapping[str, str] | None = None, limit: int = MAX_SHIP_BYTES) -> dict:
    """{field: [[name, base64], ...]} of the files a scenario (its `with_secrets()` dict) names."""
    environ = os.environ if environ is None else environ
    files = _files_of(fields, environ)
    sizes = [len(c) if isinstance(c, bytes) else c.stat().st_size for _, _, c in files]
    total = sum(sizes)
    if total > limit:
        big = max(range(len(files)), key=lambda i: sizes[i])
        raise ShipError(
            f"the scenario's files total {_size(total)} (largest: {files[big][0]} {files[big][1]!r}, "
            f"{_size(sizes[big])}), more than the {_size(limit)} the master ships to each worker: "
            "use fewer or smaller inputs (e.g. input_data 'random' with --shape), or run the workers on this machine "
            "(--workers N)"
        )
    packed: dict[str, list[list[str]]] = {}
    for f, name, c in files:
        data = c if isinstance(c, bytes) else c.read_bytes()
        packed.setdefault(f, []).append([name, _b64(data)])
    return packed


def unpack(fields: dict[str, Any], packed: Mapping[str, list[list[str]]], into: str | Path) -> dict[str, Any]:
    """A copy of the scenario dict whose file fields point at the shipped copies, written under `into`."""
    into = Path(into)
    out = dict(fields)
    for f, items in packed.items():
        d = into / f
        d.mkdir(parents=True, exist_ok=True)
        for name, b64 in items:
            safe = Path(name).name or "file"  # a name, never a path: nothing lands outside `into`
            (d / safe).write_bytes(base64.b64decode(b64))
        if f == "images_dir":
            out[f] = str(d)
        elif f == "arrival":
            from loadgen.engine.arrivals import parse_trace_spec

            spec = parse_trace_spec(str(fields["arrival"]))
            local = d / Path(items[0][0]).name
            out[f] = f"trace:{local}" + (f":{spec.column}" if spec.column is not None else "")
        else:
            out[f] = str(d / Path(items[0][0]).name)
    return out
