"""`inferload sweep`: the latency–throughput curve, one full run per point (open-loop rates or closed-loop users)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.report import terminal as T


def sweep(
    rates: Optional[str] = typer.Option(None, "--rates", help="Open loop: '5,10,20' req/s, or 'auto' (geometric steps "
                                        "from --start-rate until the SLO breaks, the server saturates or errors appear)."),
    users: Optional[str] = typer.Option(None, "--users", help="Closed loop: '1,2,4,8' concurrent users."),
    start_rate: float = typer.Option(5.0, "--start-rate", min=0.001, help="auto: first rate (req/s)."),
    factor: float = typer.Option(1.5, "--factor", min=1.01, help="auto: multiply the rate by this each step."),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", min=0.001, help="auto: never go above this rate."),
    max_points: int = typer.Option(12, "--max-points", min=1, help="auto: at most this many points."),
    slo_p99_ms: Optional[float] = typer.Option(None, "--slo-p99-ms", min=0.001, help="Latency SLO on p99 (ms)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: results/sweep-<time>)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML report here."),
    target_rps: Optional[float] = C.TARGET_RPS,
    headroom: float = C.HEADROOM,
    raw_limit: Optional[Path] = C.RAW_LIMIT,
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
    asserts: Optional[List[str]] = A.ASSERT,
    junit: Optional[Path] = A.JUNIT,
) -> None:
    """Run a rate (open loop) or concurrency (closed loop) sweep; writes point-NNN.json + sweep.json.

    Each point is a full load test (warm-up, measurement, validity). The sweep's peak is the highest measured VALID point whose p99 met --slo-p99-ms (use `inferload peak` for a bisected answer).
    """
    from rich.console import Console

    from loadgen.search.sweep import SweepPlan, add_sizing, run_sweep

    console = Console()
    thresholds = A.parse(asserts, "sweep")
    try:
        plan = SweepPlan.parse(rates, users, start_rps=start_rate, factor=factor, max_rps=max_rate,
                               max_points=max_points)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    base = C.build_scenario(scenario, target=target, model=model, duration_s=duration, warmup_s=warmup,
                            payload=payload, batch=batch, arrival=arrival, seed=seed, workers=workers,
                            timeout_ms=timeout_ms, slo_p99_ms=slo_p99_ms, **plan.first())
    slo = slo_p99_ms if slo_p99_ms is not None else base.slo_p99_ms
    out = out or C.default_out("sweep")
    console.print(f"[bold]sweep[/bold] {base.model} at {base.target}: {plan.describe()}; {base.duration_s:g}s per "
                  f"point (+{base.warmup_s:g}s warm-up)" + (f"; SLO p99 {slo:g} ms" if slo else "") + f" → {out}")
    if note := plan.undecided_note(base, slo):
        console.print(f"[yellow]note: {note}[/yellow]")
    doc = run_sweep(base, C.runner(progress=True), out, rates=plan.rates, users=plan.users, auto=plan.auto,
                    slo_ms=slo, raw_limit=C.load_raw_limit(raw_limit, base.batch),
                    on_point=lambda row, _res: console.print(T.point_line(row)))
    add_sizing(doc, out, target_rps, headroom)
    T.print_sweep(console, doc, out / "sweep.json")
    C.write_html_of(console, out, html)
    A.check(console, doc, thresholds, junit, source=str(out / "sweep.json"))


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
