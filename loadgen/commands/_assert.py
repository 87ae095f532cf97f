"""`--assert EXPR` and `--junit FILE` for run, sweep, peak and tune (CI thresholds, loadgen.results.thresholds).

Exit codes: 0 every threshold passed, 1 a threshold failed, 2 usage error (a bad expression exits before any load
is generated), 3 the measurement is INVALID (wins over a failed threshold). Without --assert or --junit a command's
exit code is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

ASSERT = typer.Option(
    None,
    "--assert",
    help="CI threshold, repeatable: 'p99<50ms', 'errors<0.1%', 'throughput>=100rps', "
    "'peak>=80rps' (exit 1 when one fails, 3 when the measurement is INVALID; see README).",
)
JUNIT = typer.Option(None, "--junit", help="Write the thresholds' outcomes as JUnit XML here.")


def parse(texts: list[str] | None, kind: str) -> list[Any]:
    """The thresholds of a command writing a `kind` document; exit 2 with the grammar's message when one is bad."""
    from loadgen.results.thresholds import EXIT_USAGE, ThresholdError, parse_thresholds

    try:
        return parse_thresholds(list(texts or []), kind=kind)
    except ThresholdError as e:
        typer.echo(f"error: --assert: {e}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def check(console: Any, doc: dict, thresholds: list[Any], junit: Path | None, source: str | None = None) -> None:
    """Evaluate, print each outcome, write the JUnit file; exit with the thresholds' code unless it is 0."""
    if not thresholds and junit is None:
        return
    from loadgen.report.terminal import print_thresholds
    from loadgen.results.junit import write_junit
    from loadgen.results.thresholds import EXIT_USAGE, ThresholdError, evaluate, exit_code

    try:
        ev = evaluate(doc, thresholds)
    except ThresholdError as e:
        console.print(f"[red]error:[/red] --assert: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    print_thresholds(console, ev)
    if junit is not None:
        write_junit(junit, ev, source=source)
        console.print(f"JUnit XML: {junit}")
    code = exit_code(ev)
    if code:
        raise typer.Exit(code)
