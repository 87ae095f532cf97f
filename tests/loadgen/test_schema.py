"""The typed result schema (loadgen.results.schema): every writer is held to it, readers upgrade older documents,
and the published JSON Schema files are the models' own."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from loadgen.results.io import load_doc, write_json
from loadgen.results.schema import MODELS, SCHEMA_VERSION, SchemaError, validate_document
from loadgen.results.schema_files import json_schemas
from tests.curves.fakes import fake_bench, fake_result, write_fake_matrix, write_fake_sweep

ROOT = Path(__file__).resolve().parents[2]


def test_documents_from_the_builders_validate(tmp_path):
    run = fake_result(100)
    assert run["kind"] == "run" and run["schema_version"] == SCHEMA_VERSION
    assert type(validate_document(run)).__name__ == "RunResult"
    assert type(validate_document(fake_bench())).__name__ == "BenchDoc"
    sweep = orjson.loads(write_fake_sweep(tmp_path / "s").read_bytes())
    assert type(validate_document(sweep)).__name__ == "SweepDoc"
    matrix = orjson.loads(write_fake_matrix(tmp_path / "m").read_bytes())
    assert type(validate_document(matrix)).__name__ == "MatrixDoc"


def test_a_renamed_or_mistyped_field_fails_where_it_is_written(tmp_path):
    run = fake_result(100)
    renamed = dict(run)
    renamed["achieved_rps"] = renamed.pop("achieved_rate_rps")
    with pytest.raises(SchemaError, match="achieved_rate_rps"):
        write_json(tmp_path / "r.json", renamed)
    assert not (tmp_path / "r.json").exists()
    wrong = dict(run, completed="many")
    with pytest.raises(SchemaError, match="completed"):
        write_json(tmp_path / "r.json", wrong)
    with pytest.raises(SchemaError, match="unknown document kind"):
        validate_document({"kind": "nonsense", "schema_version": SCHEMA_VERSION})


def test_a_schema_2_run_result_is_read_as_a_run(tmp_path):
    old = dict(fake_result(100))
    del old["kind"]
    old["schema_version"] = 2
    (tmp_path / "old.json").write_text(json.dumps(old))
    doc = load_doc(tmp_path / "old.json")
    assert doc.kind == "run" and doc.data["completed"] == old["completed"]


def test_published_json_schemas_are_current():
    folder = ROOT / "schemas"
    current = json_schemas()
    assert set(current) == set(MODELS)
    for kind, schema in current.items():
        on_disk = json.loads((folder / f"{kind}.schema.json").read_text())
        assert on_disk == schema, (
            f"schemas/{kind}.schema.json is stale: python -m loadgen.results.schema_files --write schemas"
        )
    run = current["run"]
    assert "achieved_rate_rps" in run["properties"] and "achieved_rate_rps" in run["required"]
