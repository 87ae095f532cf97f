"""Request options shared by every load command (run, sweep, peak, overload, matrix, tune): how to reach the
server (headers, bearer token, TLS, model version), what to send (protocol, your own inputs, shapes, outputs) and
where its metrics are. One list, added to each command's signature by `@request_options`, so the commands cannot
drift apart; the command receives them as `request`, a dict of Scenario fields (only the flags given).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

_P = "Target"  # rich help panel: keeps these apart from each command's own flags
_I = "Inputs and protocol"

OPTIONS: list[tuple[str, Any, Any]] = [
    (
        "header",
        list[str] | None,
        typer.Option(
            None,
            "--header",
            "-H",
            help="Extra request header 'Name: value' (repeatable), e.g. 'Host: m.default.example.com'. "
            "Credential values are redacted in every report.",
            rich_help_panel=_P,
        ),
    ),
    (
        "bearer_token_file",
        str | None,
        typer.Option(
            None,
            "--bearer-token-file",
            help="File holding a bearer token, sent as 'Authorization: Bearer ...' (or set INFERLOAD_BEARER_TOKEN).",
            rich_help_panel=_P,
        ),
    ),
    (
        "ca_file",
        str | None,
        typer.Option(
            None, "--ca-file", help="https: CA bundle (PEM) that signed the server's certificate.", rich_help_panel=_P
        ),
    ),
    (
        "client_cert",
        str | None,
        typer.Option(None, "--client-cert", help="https: client certificate (PEM) for mutual TLS.", rich_help_panel=_P),
    ),
    (
        "client_key",
        str | None,
        typer.Option(
            None, "--client-key", help="https: the client certificate's private key (PEM).", rich_help_panel=_P
        ),
    ),
    (
        "insecure",
        bool | None,
        typer.Option(
            None, "--insecure", help="https: do not verify the server's certificate (testing only).", rich_help_panel=_P
        ),
    ),
    (
        "model_version",
        str | None,
        typer.Option(
            None, "--model-version", help="OIP model version (/v2/models/M/versions/V/...).", rich_help_panel=_P
        ),
    ),
    (
        "server_metrics",
        str | None,
        typer.Option(
            None,
            "--server-metrics",
            help="The server's Prometheus metrics URL (Triton: http://HOST:8002/metrics); default: TARGET/metrics.",
            rich_help_panel=_P,
        ),
    ),
    (
        "protocol",
        str | None,
        typer.Option(
            None,
            "--protocol",
            help="oip (Open Inference Protocol v2 REST, default) | grpc (OIP gRPC: --target grpc://HOST:PORT or "
            "grpcs://; matrix/tune serve gRPC too) | http-json (any JSON endpoint: --path, --body-template).",
            rich_help_panel=_I,
        ),
    ),
    (
        "path",
        str | None,
        typer.Option(
            None,
            "--path",
            help="http-json: request path below the target, e.g. /predictions/resnet.",
            rich_help_panel=_I,
        ),
    ),
    (
        "body_template",
        str | None,
        typer.Option(
            None, "--body-template", help="http-json: file with the request body and placeholders.", rich_help_panel=_I
        ),
    ),
    (
        "expect",
        str | None,
        typer.Option(
            None,
            "--expect",
            help="http-json: a JSON pointer the answer must contain (e.g. /predictions), or POINTER=JSON.",
            rich_help_panel=_I,
        ),
    ),
    (
        "input_data",
        str | None,
        typer.Option(
            None,
            "--input-data",
            help="Your inputs: perf_analyzer's --input-data JSON, .npy or .npz (key = input name).",
            rich_help_panel=_I,
        ),
    ),
    (
        "input_order",
        str | None,
        typer.Option(
            None,
            "--input-order",
            help="sequential (default) | random: order of --input-data entries.",
            rich_help_panel=_I,
        ),
    ),
    (
        "shape",
        list[str] | None,
        typer.Option(
            None,
            "--shape",
            help="NAME:d1,d2,... concrete shape of an input with dynamic dimensions, without the batch dimension "
            "when the model batches (as perf_analyzer's --shape; repeatable).",
            rich_help_panel=_I,
        ),
    ),
    (
        "output",
        list[str] | None,
        typer.Option(None, "--output", help="OIP: request only this output (repeatable).", rich_help_panel=_I),
    ),
]
NAMES = [name for name, _, _ in OPTIONS]


def parse_shapes(items: list[str]) -> dict[str, list[int]]:
    """['input:1,3,224,224'] → {'input': [1, 3, 224, 224]}; BadParameter naming the item otherwise."""
    out: dict[str, list[int]] = {}
    for item in items:
        name, sep, dims = item.rpartition(":")
        try:
            values = [int(d) for d in dims.split(",")]
        except ValueError:
            values = []
        if not sep or not name or not values or any(v < 1 for v in values):
            raise typer.BadParameter(f"--shape {item!r}: expected NAME:d1,d2,... with dimensions >= 1")
        out[name] = values
    return out


def to_fields(given: dict[str, Any]) -> dict[str, Any]:
    """Flag values (None = not given) → Scenario fields."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or value == []:
            continue
        if name == "header":
            out["headers"] = list(value)
        elif name == "shape":
            out["shapes"] = parse_shapes(list(value))
        elif name == "output":
            out["outputs"] = list(value)
        else:
            out[name] = value
    return out


def add_options(
    options: list[tuple[str, Any, Any]], key: str, convert: Callable[[dict[str, Any]], Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding `options` to a Typer command, which gets them as one keyword `key` (= convert(given))."""
    names = [name for name, _, _ in options]

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != key]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=t) for n, t, o in options]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n, None) for n in names}
            return fn(*args, **{key: convert(given)}, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the new signature, not the original's
        return wrapper

    return deco


request_options = add_options(OPTIONS, "request", to_fields)
"""Add OPTIONS to a Typer command; the command gets `request` (Scenario fields of the flags given)."""

_W = "Workers on other machines"
FLEET_OPTIONS: list[tuple[str, Any, Any]] = [
    (
        "expect_workers",
        int | None,
        typer.Option(
            None,
            "--expect-workers",
            min=1,
            help="Wait for N workers started elsewhere with `inferload worker --master THIS_HOST[:PORT]`, then run "
            "with them (and any --workers here); every run of the command reuses them.",
            rich_help_panel=_W,
        ),
    ),
    (
        "master_bind",
        str | None,
        typer.Option(
            None,
            "--master-bind",
            help="Where workers connect: ADDR[:PORT] (default 0.0.0.0:5557 with --expect-workers).",
            rich_help_panel=_W,
        ),
    ),
    (
        "worker_timeout",
        float | None,
        typer.Option(
            None,
            "--worker-timeout",
            min=1.0,
            help="Give up (exit 3, naming who is missing) if the workers have not all joined within this (s; "
            "default 120).",
            rich_help_panel=_W,
        ),
    ),
]
fleet_options = add_options(FLEET_OPTIONS, "fleet", lambda given: {k: v for k, v in given.items() if v is not None})
"""Add FLEET_OPTIONS to a Typer command; the command gets `fleet` (the flags given) for `_curves.runner(fleet=)`."""
