"""`inferload overload`: load past capacity in steps (1x, 1.5x, 2x, 3x): goodput, refusals, time to refuse, queue and
memory against their caps (loadgen.search.overload). Writes step-NN-Mx.json + overload.json."""

from __future__ import annotations

from pathlib import Path

import typer

from loadgen.commands import _curves as C
from loadgen.commands._request import fleet_options, request_options
from loadgen.engine.target import redact_url
from loadgen.report import terminal_search as TS


@fleet_options
@request_options
def overload(
    steps: str = typer.Option("1,1.5,2,3", "--steps", help="Multiples of the capacity to offer, in order."),
    capacity: float | None = typer.Option(
        None, "--capacity", min=0.001, help="Capacity (req/s) to multiply; default: a closed-loop probe."
    ),
    probe_users: int = typer.Option(8, "--probe-users", min=1, help="Users of the closed-loop capacity probe."),
    slo_p99_ms: float | None = typer.Option(
        None,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Also report goodput within this latency bound (--slo-p99-ms: the old name).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/overload-<time>)."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    scenario: Path | None = C.SCENARIO_FILE,
    target: str | None = C.TARGET,
    model: str | None = C.MODEL,
    duration: float | None = C.DURATION,
    warmup: float | None = C.WARMUP,
    payload: str | None = C.PAYLOAD,
    batch: int | None = C.BATCH,
    arrival: str | None = C.ARRIVAL,
    seed: int | None = C.SEED,
    workers: int | None = C.WORKERS,
    timeout_ms: float | None = C.TIMEOUT_MS,
    request: dict | None = None,
    fleet: dict | None = None,
) -> None:
    """How the server behaves past its capacity: does it keep serving at full speed and refuse the rest at once?"""
    from rich.console import Console

    from loadgen.search.overload import run_overload

    console = Console()
    mults = tuple(C.parse_floats(steps, "--steps"))
    base = C.build_scenario(
        scenario,
        **(request or {}),
        target=target,
        model=model,
        duration_s=duration,
        warmup_s=warmup,
        payload=payload,
        batch=batch,
        arrival=arrival,
        seed=seed,
        workers=workers,
        timeout_ms=timeout_ms,
        mode="open",
        rate_rps=1.0,
    )
    out = out or C.default_out("overload")
    console.print(
        f"[bold]overload[/bold] {base.model} at {redact_url(base.target)}: steps {', '.join(f'{m:g}x' for m in mults)} "
        f"of capacity, {base.duration_s:g} s each (+{base.warmup_s:g} s warm-up) → {out}"
    )
    with C.running(progress=True, fleet=fleet) as run:
        try:
            doc = run_overload(
                base,
                run,
                out,
                steps=mults,
                capacity_rps=capacity,
                slo_ms=slo_p99_ms,
                probe_users=probe_users,
                say=lambda m: console.print(f"[dim]{m}[/dim]"),
            )
        except ValueError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from None
    console.print(TS.overload_table(doc))
    console.print(f"wrote {out / 'overload.json'}")
    C.write_html_of(console, out, html)


def register(app: typer.Typer) -> None:
    app.command("overload")(overload)
