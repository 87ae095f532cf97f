"""The published JSON Schema files (schemas/<kind>.schema.json), generated from loadgen.results.schema's models.

python -m loadgen.results.schema_files --write schemas
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from loadgen.results.schema import MODELS, SCHEMA_VERSION


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of every document kind, keyed by kind."""
    out = {}
    for kind, model in MODELS.items():
        s = TypeAdapter(model).json_schema(mode="serialization")
        s["$id"] = f"https://inferload.dev/schema/{SCHEMA_VERSION}/{kind}.schema.json"
        s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[kind] = s
    return out


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, s in json_schemas().items():
        p = folder / f"{kind}.schema.json"
        p.write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")
        paths.append(p)
    return paths


if __name__ == "__main__":  # python -m loadgen.results.schema_files --write schemas
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        for p in write_schemas(Path(sys.argv[2])):
            print(p)
    else:
        print("usage: python -m loadgen.results.schema_files --write DIR", file=sys.stderr)
        sys.exit(2)
