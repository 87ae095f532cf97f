"""`--assert EXPR` and `--junit FILE` for run, sweep, peak, tune and mlperf (CI thresholds, loadgen.results.thresholds).

Exit codes: 0 every threshold passed, 1 a threshold failed, 2 usage error (a bad expression exits before any load
is generated), 3 the measurement is INVALID (wins over a failed threshold). An INVALID measurement exits 3 even
without --assert (like k6's non-zero exit on failed checks: a script must not take untrustworthy figures for a
result); `--allow-invalid` keeps exit 0 for it (the document still says INVALID and why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

_EXAMPLES = {
    "run": "'p99<50ms', 'p99_ucb<60ms', 'errors<0.1%', 'throughput>=100rps'",
    "sweep": "'peak>=80rps', 'throughput>=100rps'",
    "peak": "'peak>=80rps'",
    "tune": "'peak>=80rps', 'throughput>=100rps'",
    "mlperf": "'p90<20ms', 'throughput>=100rps'",
}


def assert_option(kind: str) -> Any:
    """`--assert` with examples this command accepts (a run has no peak; a peak document has no p99)."""
    return typer.Option(
        None,
        "--assert",
        help=f"CI threshold, repeatable, e.g. {_EXAMPLES[kind]} (exit 1 when one fails, 3 when the measurement "
        "is INVALID; see docs/reports.md).",
    )


ASSERT = assert_option("run")
ALLOW_INVALID = typer.Option(
    False,
    "--allow-invalid",
    help="Exit 0 even when the measurement is INVALID (default: exit 3; the document says why either way).",
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


def check(
    console: Any,
    doc: dict,
    thresholds: list[Any],
    junit: Path | None,
    source: str | None = None,
    allow_invalid: bool = False,
) -> None:
    """Evaluate, print each outcome, write the JUnit file; exit with the thresholds' code unless it is 0. With no
    threshold, exit 3 for an INVALID measurement unless `allow_invalid`."""
    if not thresholds and junit is None:
        from loadgen.results.thresholds import EXIT_INVALID, document_kind, validity_of

        valid, reasons = validity_of(doc, document_kind(doc))
        if not valid and not allow_invalid:
            console.print(
                f"exit {EXIT_INVALID}: the measurement is INVALID ({'; '.join(reasons) or 'see above'}); "
                "--allow-invalid exits 0",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(EXIT_INVALID)
        return
    from loadgen.report.terminal import print_thresholds
    from loadgen.results.junit import write_junit
    from loadgen.results.thresholds import EXIT_INVALID, EXIT_USAGE, ThresholdError, evaluate, exit_code

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
    if code == EXIT_INVALID and allow_invalid:
        code = 1 if ev.failed else 0
    if code:
        raise typer.Exit(code)
