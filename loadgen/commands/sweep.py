"""`inferload sweep`: the latency–throughput curve, one full run per point (open-loop rates or closed-loop users)."""

from __future__ import annotations

from pathlib import Path

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.commands._request import fleet_options, request_options
from loadgen.engine.target import redact_url
from loadgen.report import terminal_search as TS


@fleet_options
@request_options
def sweep(
    rates: str | None = typer.Option(
        None,
        "--rates",
        help="Open loop: '5,10,20' req/s, or 'auto' (geometric steps "
        "from --start-rate until the SLO breaks, the server saturates or errors appear).",
    ),
    users: str | None = typer.Option(None, "--users", help="Closed loop: '1,2,4,8' concurrent users."),
    start_rate: float = typer.Option(5.0, "--start-rate", min=0.001, help="auto: first rate (req/s)."),
    factor: float = typer.Option(1.5, "--factor", min=1.01, help="auto: multiply the rate by this each step."),
    max_rate: float | None = typer.Option(None, "--max-rate", min=0.001, help="auto: never go above this rate."),
    max_points: int = typer.Option(12, "--max-points", min=1, help="auto: at most this many points."),
    slo_p99_ms: float | None = typer.Option(
        None,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Latency bound (ms) on --percentile (--slo-p99-ms: the old name).",
    ),
    percentile: float = typer.Option(99.0, "--percentile", min=1.0, max=99.999, help="Percentile the SLO bounds."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/sweep-<time>)."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    target_rps: float | None = C.TARGET_RPS,
    headroom: float = C.HEADROOM,
    raw_limit: Path | None = C.RAW_LIMIT,
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
    asserts: list[str] | None = A.assert_option("sweep"),
    allow_invalid: bool = A.ALLOW_INVALID,
    junit: Path | None = A.JUNIT,
    request: dict | None = None,
    fleet: dict | None = None,
) -> None:
    """Run a rate (open loop) or concurrency (closed loop) sweep; writes point-NNN.json + sweep.json.

    Each point is a full load test (warm-up, measurement, validity). The sweep's peak is the highest measured VALID point whose p99 met --slo-p99-ms (use `inferload peak` for a bisected answer).
    """
    from rich.console import Console

    from loadgen.search.sweep import SweepPlan, add_sizing, run_sweep

    console = Console()
    thresholds = A.parse(asserts, "sweep")
    try:
        plan = SweepPlan.parse(
            rates, users, start_rps=start_rate, factor=factor, max_rps=max_rate, max_points=max_points
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
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
        slo_p99_ms=slo_p99_ms,
        slo_percentile=percentile,
        **plan.first(),
    )
    slo = slo_p99_ms if slo_p99_ms is not None else base.slo_p99_ms
    out = out or C.default_out("sweep")
    console.print(
        f"[bold]sweep[/bold] {base.model} at {redact_url(base.target)}: {plan.describe()}; {base.duration_s:g}s per "
        f"point (+{base.warmup_s:g}s warm-up)" + (f"; SLO p{percentile:g} {slo:g} ms" if slo else "") + f" → {out}"
    )
    if note := plan.undecided_note(base, slo):
        console.print(f"[yellow]note: {note}[/yellow]")
    with C.running(progress=True, fleet=fleet) as run:
        doc = run_sweep(
            base,
            run,
            out,
            rates=plan.rates,
            users=plan.users,
            auto=plan.auto,
            slo_ms=slo,
            percentile=percentile,
            raw_limit=C.load_raw_limit(raw_limit, base.batch),
            on_point=lambda row, _res: console.print(TS.point_line(row)),
        )
    add_sizing(doc, out, target_rps, headroom)
    TS.print_sweep(console, doc, out / "sweep.json")
    C.write_html_of(console, out, html)
    A.check(console, doc, thresholds, junit, source=str(out / "sweep.json"), allow_invalid=allow_invalid)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
