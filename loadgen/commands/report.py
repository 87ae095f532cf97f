"""`inferload report PATH... --html report.html`: one self-contained HTML page from results, sweeps, peak searches,
matrices and bench files (any mix)."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    paths: list[Path] = typer.Argument(
        ..., help="Result JSON, sweep dir or sweep.json, peak.json, matrix.json, tune.json, mlperf.json, bench JSON."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Write the HTML report here (otherwise print a terminal summary)."
    ),
    title: str | None = typer.Option(None, "--title", help="Page title (default: inferload report)."),
) -> None:
    """Build the HTML report (plots inline, no network) or, without --html, print terminal summaries."""
    from rich.console import Console

    from loadgen.results.io import ReportInputError, load_all

    console = Console()
    try:
        docs = load_all(paths)
    except ReportInputError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for d in docs:
        if d.missing:
            console.print(f"[yellow]{d.path}: referenced files not found: {', '.join(d.missing)}[/yellow]")
    if html is not None:
        from loadgen.report.html import write_html

        write_html(docs, html, title=title)
        console.print(f"wrote {html} ({html.stat().st_size / 1024:.0f} KiB, self-contained)")
        return
    from loadgen.report.terminal_search import curve_table

    for d in docs:
        if d.kind == "run":
            from loadgen.report.terminal import print_summary

            print_summary(d.data, console=console)
        elif d.kind == "sweep":
            console.print(curve_table(d.data.get("points") or [], f"Sweep {d.path}"))
        elif d.kind == "peak":
            console.print(
                f"{d.path}: peak {d.data.get('peak_rps')} req/s ({d.data.get('status')}): {d.data.get('reason')}"
            )
        elif d.kind == "matrix":
            console.print(f"{d.path}: matrix, best {d.data.get('best')}")
        elif d.kind == "mlperf":
            from loadgen.report.terminal_mlperf import print_mlperf

            print_mlperf(console, d.data, d.path)
        elif d.kind == "tune":
            from loadgen.report.terminal_search import print_tune

            print_tune(console, d.data, d.path)
        else:
            console.print(f"{d.path}: {d.kind}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
