"""`inferload overload`: load past capacity in steps (1x, 1.5x, 2x, 3x): goodput, refusals, time to refuse, queue and
memory against their caps (loadgen.search.overload). Writes step-NN-Mx.json + overload.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from loadgen.commands import _curves as C
from loadgen.report import terminal as T


def overload(
    steps: str = typer.Option("1,1.5,2,3", "--steps", help="Multiples of the capacity to offer, in order."),
    capacity: Optional[float] = typer.Option(None, "--capacity", min=0.001,
                                             help="Capacity (req/s) to multiply; default: a closed-loop probe."),
    probe_users: int = typer.Option(8, "--probe-users", min=1, help="Users of the closed-loop capacity probe."),
    slo_p99_ms: Optional[float] = typer.Option(None, "--slo-p99-ms", min=0.001,
                                               help="Also report goodput within this latency bound."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: results/overload-<time>)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML report here."),
    scenario: Optional[Path] = C.SCENARIO_FILE,
    target: Optional[str] = C.TARGET,
    model: Optional[str] = C.MODEL,
    duration: Optional[float] = C.DURATION,
    warmup: Optional[float] = C.WARMUP,
    payload: Optional[str] = C.PAYLOAD,
    batch: Optional[int] = C.BATCH,
    arrival: Optional[str] = C.ARRIVAL,
    seed: Optional[int] = C.SEED,
    workers: Optional[int] = C.WORKERS,
    timeout_ms: Optional[float] = C.TIMEOUT_MS,
) -> None:
    """How the server behaves past its capacity: does it keep serving at full speed and refuse the rest at once?"""
    from rich.console import Console

    from loadgen.search.overload import run_overload

    console = Console()
    mults = tuple(C.parse_floats(steps, "--steps"))
    base = C.build_scenario(scenario, target=target, model=model, duration_s=duration, warmup_s=warmup,
                            payload=payload, batch=batch, arrival=arrival, seed=seed, workers=workers,
                            timeout_ms=timeout_ms, mode="open", rate_rps=1.0)
    out = out or C.default_out("overload")
    console.print(f"[bold]overload[/bold] {base.model} at {base.target}: steps {', '.join(f'{m:g}x' for m in mults)} "
                  f"of capacity, {base.duration_s:g} s each (+{base.warmup_s:g} s warm-up) → {out}")
    try:
        doc = run_overload(base, C.runner(progress=True), out, steps=mults, capacity_rps=capacity, slo_ms=slo_p99_ms,
                           probe_users=probe_users, say=lambda m: console.print(f"[dim]{m}[/dim]"))
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    console.print(T.overload_table(doc))
    console.print(f"wrote {out / 'overload.json'}")
    C.write_html_of(console, out, html)


def register(app: typer.Typer) -> None:
    app.command("overload")(overload)
