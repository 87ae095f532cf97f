"""`inferload compare A B`: deltas between two runs, sweeps, peak searches or tune documents (Rich table), then
which is better with confidence bounds."""

from __future__ import annotations

from pathlib import Path

import typer


def compare(
    a: Path = typer.Argument(..., help="Baseline: result JSON, sweep dir/sweep.json, peak.json or tune.json."),
    b: Path = typer.Argument(..., help="Candidate, of the same kind."),
) -> None:
    """Print metric, A, B, Δ, Δ% (green: B better; red: B worse), then the verdict: is B better, by how much."""
    from rich.console import Console

    from loadgen.report.compare import print_compare
    from loadgen.results.io import ReportInputError, load_doc

    console = Console()
    try:
        print_compare(load_doc(a), load_doc(b), console)
    except (ReportInputError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
