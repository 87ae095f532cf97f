"""`--provider` for bench, matrix and tune: ONNX Runtime execution providers (server/providers.py), parsed and checked
against what this environment's ONNX Runtime has before anything is measured. Imports the server lazily (these
commands run it in-process or locally)."""

from __future__ import annotations

from typing import Any

import typer


def provider_option(default_note: str) -> Any:
    return typer.Option(
        None,
        "--provider",
        help="ONNX Runtime execution providers, e.g. cpu,openvino (cpu | openvino | cuda | tensorrt | ...); "
        f"default: {default_note}. Each must be installed (openvino: `make openvino`, then use "
        ".venv-openvino/bin/inferload; docs/providers.md).",
    )


def parse_providers(text: str | None) -> list[str] | None:
    """`cpu,openvino` → ["cpu", "openvino"]; None stays None (the caller's default)."""
    from server.providers import parse_provider_list

    if text is None:
        return None
    try:
        return parse_provider_list(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--provider") from None


def installed_providers() -> list[str]:
    """The execution providers of this environment that a config can name (in server/providers.py's order)."""
    from server.providers import PROVIDER_NAMES
    from server.runtime import available_providers

    have = set(available_providers())
    return [p for p in PROVIDER_NAMES if p in have]


def check_or_exit(console, providers: list[str], command: str) -> None:
    """Exit 2 with the refusal (provider, installed ones, fix) when one of `providers` is not installed."""
    from rich.markup import escape

    from server.providers import ProviderError
    from server.runtime import check_providers

    try:
        check_providers(providers, f"inferload {command} --provider")
    except ProviderError as e:
        console.print(f"[red]{command}:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None
