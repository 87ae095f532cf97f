"""Documents on disk: `write_json` (atomic) and loading for reports: a run result, a sweep (directory or sweep.json), a peak.json, a matrix.json,
or a bench JSON (in-process baseline). Each becomes a `Doc` with its kind, path and the documents it refers to
(sweep points, peak probes), loaded from beside it when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadgen.results.schema import SCHEMA_VERSION, SchemaError, upgrade, validate_document


def write_json(path: str | Path, doc: Any) -> None:
    """The one way documents reach disk: orjson, 2-space indent, written to a temporary file and renamed (a
    reader never sees half a document; an interrupted search leaves the previous one)."""
    if isinstance(doc, dict) and doc.get("schema_version") == SCHEMA_VERSION:
        validate_document(doc)  # a builder that renamed or forgot a field fails here, in tests and in use
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n"
    )
    tmp.replace(path)


class ReportInputError(ValueError):
    pass


@dataclass
class Doc:
    kind: str  # "run" | "sweep" | "peak" | "matrix" | "bench" | "overload" | "tune" | "mlperf"
    path: Path
    data: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)  # point / probe results, in order
    missing: list[str] = field(default_factory=list)  # referenced files that were not found

    @property
    def title(self) -> str:
        return (
            self.path.parent.name
            if self.path.name in ("sweep.json", "peak.json", "matrix.json", "overload.json", "tune.json", "mlperf.json")
            else self.path.stem
        )


def read_json(path: Path) -> dict:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise ReportInputError(f"{path}: file not found") from None
    except orjson.JSONDecodeError as e:
        raise ReportInputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ReportInputError(f"{path}: expected a JSON object at the top level")
    data = upgrade(data)
    if data.get("schema_version") == SCHEMA_VERSION and data.get("kind") is not None:
        try:
            validate_document(data)
        except SchemaError as e:
            raise ReportInputError(f"{path}: {e}") from None
    return data


def detect_kind(data: dict) -> str:
    kind = data.get("kind")
    if kind in ("run", "sweep", "peak", "matrix", "bench", "overload", "tune", "mlperf"):
        return str(kind)
    if isinstance(data.get("results"), list) and any("throughput_items_per_s" in r for r in data["results"]):
        return "bench"
    raise ReportInputError(
        "not a recognised inferload file (expected a run result, sweep.json, peak.json, "
        "matrix.json, overload.json, tune.json, mlperf.json or a bench JSON)"
    )


def load_doc(path: Path) -> Doc:
    path = Path(path)
    if path.is_dir():
        for name in ("sweep.json", "peak.json", "matrix.json", "overload.json", "tune.json", "mlperf.json"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ReportInputError(
                f"{path}: directory holds no sweep.json, peak.json, matrix.json, overload.json, tune.json or mlperf.json"
            )
    data = read_json(path)
    try:
        kind = detect_kind(data)
    except ReportInputError as e:
        raise ReportInputError(f"{path}: {e}") from None
    doc = Doc(kind, path, data)
    refs: list[str | None] = []
    if kind == "sweep":
        refs = [p.get("file") for p in data.get("points") or []]
    elif kind == "peak":
        refs = [p.get("file") for p in data.get("probes") or []]
    for ref in refs:
        if not ref:
            doc.children.append({})
            continue
        f = path.parent / ref
        if f.is_file():
            try:
                doc.children.append(read_json(f))
                continue
            except ReportInputError:
                pass
        doc.children.append({})
        doc.missing.append(ref)
    return doc


def load_all(paths: list[Path]) -> list[Doc]:
    return [load_doc(p) for p in paths]
