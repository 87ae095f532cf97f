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

    from loadgen.search.sizing import sizing_for
    from loadgen.search.sweep import run_sweep

    console = Console()
    thresholds = A.parse(asserts, "sweep")
    if (rates is None) == (users is None):
        raise typer.BadParameter("give exactly one of --rates (open loop) or --users (closed loop)")
    rate_list = user_list = auto = None
    if users is not None:
        user_list = C.parse_ints(users, "--users")
        first = {"mode": "closed", "users": user_list[0]}
    elif rates.strip().lower() == "auto":
        auto = {"start_rps": start_rate, "factor": factor, "max_rps": max_rate, "max_points": max_points}
        first = {"mode": "open", "rate_rps": start_rate}
    else:
        rate_list = C.parse_floats(rates, "--rates")
        first = {"mode": "open", "rate_rps": rate_list[0]}
    base = C.build_scenario(scenario, target=target, model=model, duration_s=duration, warmup_s=warmup,
                            payload=payload, batch=batch, arrival=arrival, seed=seed, workers=workers,
                            timeout_ms=timeout_ms, slo_p99_ms=slo_p99_ms, **first)
    slo = slo_p99_ms if slo_p99_ms is not None else base.slo_p99_ms
    out = out or C.default_out("sweep")
    lim = C.load_raw_limit(raw_limit, base.batch)
    what = (f"users {user_list}" if user_list else f"rates {rate_list} req/s" if rate_list else
            f"auto rates from {start_rate:g} req/s × {factor:g}")
    console.print(f"[bold]sweep[/bold] {base.model} at {base.target}: {what}; {base.duration_s:g}s per point "
                  f"(+{base.warmup_s:g}s warm-up)" + (f"; SLO p99 {slo:g} ms" if slo else "") + f" → {out}")
    if (rate_list or auto) and slo:
        from loadgen.results.confidence import min_queries

        need = min_queries(base.slo_percentile / 100.0, base.confidence) or 0
        floor = need / base.duration_s
        low = [r for r in (rate_list or [start_rate]) if r < floor]
        if low:
            console.print(f"[yellow]note: a {base.confidence:.0%}-confident p{base.slo_percentile:g} verdict needs "
                          f">= {need} queries; with {base.duration_s:g}s measured, points below {floor:.4g} req/s "
                          f"({', '.join(f'{r:g}' for r in low)}) can only be undecided — raise --duration, or use "
                          "`inferload peak`, which sizes each probe[/yellow]")
    run = C.runner(progress=True)
    doc = run_sweep(base, run, out, rates=rate_list, users=user_list, auto=auto, slo_ms=slo, raw_limit=lim,
                    on_point=lambda row, _res: console.print(T.point_line(row)))
    console.print(T.curve_table(doc["points"], f"Sweep: {base.model}"))
    if doc.get("stopped"):
        console.print(f"stopped: {doc['stopped']}")
    peak = doc.get("peak")
    if peak and peak.get("rate_rps"):
        console.print(f"[bold]peak under SLO[/bold] (highest measured valid point): {peak['rate_rps']:.4g} req/s "
                      f"(p{peak['percentile']:g} {peak['latency_ms']:.1f} ms)")
    elif peak:
        console.print(f"[yellow]{peak.get('reason')}[/yellow]")
    sizing = sizing_for(target_rps, headroom, (peak or {}).get("achieved_rps"), doc["points"], slo)
    if sizing:
        from loadgen.results.io import write_json

        doc["sizing"] = sizing
        write_json(out / "sweep.json", doc)
        console.print(f"[bold]sizing[/bold]: {sizing['note']}")
    console.print(f"wrote {out / 'sweep.json'}")
    C.write_html_of(console, out, html)
    A.check(console, doc, thresholds, junit, source=str(out / "sweep.json"))


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
