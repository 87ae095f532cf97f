"""The pieces every result document's model is built from (loadgen.results.schema): the schema version, the
strict base models, `{code, message}` reasons and the shared field types."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 3
"""3: every document has `kind` (run results: "run"); machine descriptions use `cpus`. 2: verdicts (reasons as
{code, message}, latency_ucb_ms, slo). 1: first version."""

Num = float | None
Percentiles = dict[str, float | None]
Json = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Reason(_Strict):
    code: str
    message: str


class _Doc(_Strict):
    schema_version: int = SCHEMA_VERSION
