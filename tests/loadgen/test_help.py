"""Every command's --help renders its text as written (no markup eaten: "[instances]", "START:END:DURATION"), and
the request options are on every load command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loadgen.cli import app

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_help_renders(name):
    r = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and "🔚" not in r.output


def _help(*args: str) -> str:
    return " ".join(CliRunner().invoke(app, [*args, "--help"]).output.split())  # the wrapping is the terminal's


def test_help_texts_print_as_written():
    assert "START:END:DURATION" in _help("run")
    assert "[instances] allow_spinning" in _help("bench")
    assert "'Name: value'" in _help("run")


@pytest.mark.parametrize("name", ["run", "sweep", "peak", "overload"])
def test_load_commands_take_the_request_options(name):
    text = _help(name)
    for flag in ("--header", "--bearer-token-file", "--ca-file", "--client-cert", "--client-key", "--insecure",
                 "--model-version", "--input-data", "--shape", "--output", "--protocol", "--body-template",
                 "--server-metrics"):  # fmt: skip
        assert flag in text, (name, flag)
