"""Before any load: reach the server with the target's options, learn what the model takes, and build one request.

Every problem a user can fix is found here and said plainly, so no load is sent to a server that will refuse it:
credentials refused (401/403), TLS failures, an unreachable server, an unknown model, a data file whose shapes or
dtypes don't fit the model's metadata, a body template that cannot be filled. All of them raise PayloadError (the
commands exit 2 with its message).
"""

from __future__ import annotations

from typing import Any

from loadgen.engine.codec import make_codec
from loadgen.engine.payloads import PayloadError, fetch_model_info
from loadgen.engine.target import Target, TargetError, target_of


def target_or_error(scenario: Any) -> Target:
    try:
        return target_of(scenario)
    except TargetError as e:
        raise PayloadError(str(e)) from None


def model_info(scenario: Any, timeout_s: float | None = None) -> dict[str, Any]:
    """What a run needs to know of the server: OIP metadata and config through the target (prefix, headers, TLS),
    or, for protocol http-json, the description the template codec derives (and its first request's answer)."""
    timeout_s = min(10.0, scenario.timeout_ms / 1000) if timeout_s is None else timeout_s
    target = target_or_error(scenario)
    if scenario.protocol == "http-json":
        from loadgen.engine.template import template_info

        return template_info(scenario, target, timeout_s)
    if scenario.protocol == "grpc":
        from loadgen.engine.grpc_transport import fetch_model_info_grpc

        try:
            return fetch_model_info_grpc(target, scenario.model, timeout_s)
        except TargetError as e:
            raise PayloadError(str(e)) from None
    return fetch_model_info(target, scenario.model, timeout_s)


def preflight(scenario: Any) -> dict[str, Any]:
    """model_info, then one request body built the way the run will build them (inputs checked against the
    model's metadata). Returns the info for the run."""
    info = model_info(scenario)
    try:
        make_codec(scenario, info, seed=scenario.seed).next_parts()
    except PayloadError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise PayloadError(f"cannot build a request: {e}") from None
    return info
