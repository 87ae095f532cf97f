"""The `inferload` command. Each subcommand lives in `loadgen/commands/<name>.py` and exposes
`register(app: typer.Typer) -> None`; this module discovers them.

Rule (DESIGN.md §1/§4): nothing here imports locust at module level. Importing locust imports gevent, which
monkey-patches the process; only the subcommands that generate load import it, inside their functions.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import loadgen.commands as _commands

app = typer.Typer(
    name="inferload",
    help="Inference-serving load tester: serve ONNX models over OIP v2 and measure them with Locust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # help texts are plain text: "[instances]" and "START:END:DURATION" print as written
)


def _register_all() -> None:
    for mod in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"loadgen.commands.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
