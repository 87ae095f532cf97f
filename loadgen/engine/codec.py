"""The request codec: what the load engine asks of a protocol. The dispatcher, users, recorder and validity never
know which protocol ran (DESIGN.md §1 "Transports"); they see only this interface.

A codec builds each request's body (`next_parts`: parts written in order, never joined; see users.PartsBody), says
which statuses are a success (`success(status)`), and judges an answer (`judge`: None, or a (code, message) pair;
the code becomes the failure's key in the result's `errors`, e.g. "InvalidResponse", "invalid_output").
`check_every` asks for every answer to be judged (a data file with expected outputs); otherwise 1 answer in
SAMPLE_CHECK_EVERY (and the first 3) is, the rest get the cheap check (a success status and a non-empty body).

Codecs: loadgen.engine.payloads.PayloadPool (OIP v2 REST: binary tensors, JSON, encoded images),
loadgen.engine.grpc_codec.GrpcCodec (OIP gRPC ModelInfer, `--protocol grpc`; `success` takes a gRPC status code, 0 =
OK) and loadgen.engine.template.TemplateCodec (any JSON-over-HTTP endpoint, `--protocol http-json`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Problem = tuple[str, str]
"""(code, message) of an answer that is not a valid success."""


class RequestCodec(Protocol):
    path: str
    """Request path (the target's prefix included)."""
    check_every: bool
    allow_empty: bool
    """A success may have an empty body (http-json endpoints that answer 204)."""

    def next_parts(self) -> tuple[list[bytes | memoryview], dict[str, str]]: ...

    def success(self, status: int) -> bool: ...

    def judge(self, body: bytes, header: Callable[[str], Any]) -> Problem | None:
        """`header(name)` reads a response header (lower-case name), None when absent."""


def make_codec(scenario: Any, info: dict[str, Any], seed: int) -> RequestCodec:
    """The codec of a scenario's protocol."""
    if scenario.protocol == "http-json":
        from loadgen.engine.template import TemplateCodec

        return TemplateCodec(scenario, info, seed=seed)
    if scenario.protocol == "grpc":
        from loadgen.engine.grpc_codec import GrpcCodec

        return GrpcCodec(scenario, info, seed=seed)
    from loadgen.engine.payloads import PayloadPool

    return PayloadPool(scenario, info, seed=seed)
