"""`inferload peak`: the highest open-loop rate whose chosen percentile meets the SLO with stated confidence on a
VALID run (capacity probe, then bracket, bisect and confirm; loadgen.search.peaksearch). Writes probe-NNN.json + peak.json."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.commands._request import fleet_options, request_options
from loadgen.engine.target import redact_url
from loadgen.report import terminal_search as TS
from loadgen.search.peaksearch import finish_peak_doc


class ConfirmRule(str, Enum):
    pooled = "pooled"
    majority = "majority"


@fleet_options
@request_options
def peak(
    slo_p99_ms: float = typer.Option(
        ...,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Latency bound (ms) on --percentile (p99 by default; --slo-p99-ms: the old name).",
    ),
    percentile: float = typer.Option(99.0, "--percentile", min=1.0, max=99.999, help="Percentile the SLO applies to."),
    confidence: float = typer.Option(
        0.99,
        "--confidence",
        min=0.5,
        max=0.9999,
        help="Confidence with which a probe's percentile must meet the SLO to pass.",
    ),
    precision: float = typer.Option(
        0.05,
        "--precision",
        min=0.001,
        max=0.9,
        help="Stop bisecting when the bracket is narrower than this (relative).",
    ),
    start_rate: float | None = typer.Option(
        None, "--start-rate", min=0.001, help="First probed rate (req/s); default: 60% of a closed-loop capacity probe."
    ),
    growth: float | None = typer.Option(
        None,
        "--growth",
        min=1.01,
        help="Bracketing factor (default 2 from --start-rate, 1.25 from the capacity probe).",
    ),
    max_rate: float | None = typer.Option(
        None,
        "--max-rate",
        min=0.001,
        help="Never probe above this (default: 120% of the capacity probe); passing here is reported as capped.",
    ),
    min_rate: float | None = typer.Option(
        None,
        "--min-rate",
        min=0.001,
        help="Never probe below this (default: start / 16, and no lower than a rate whose longest probe can decide).",
    ),
    max_probes: int = typer.Option(20, "--max-probes", min=1, help="At most this many runs (confirmations included)."),
    confirm: int = typer.Option(
        3,
        "--confirm",
        min=1,
        help="Runs at the answer (and, with --confirm-rule pooled, at the rate above it) (1 = no confirmation).",
    ),
    confirm_rule: ConfirmRule = typer.Option(
        ConfirmRule.pooled,
        "--confirm-rule",
        help="pooled (default): one verdict over the --confirm runs at each end, their queries and per-second windows "
        "pooled, so a burst in one run weighs against the others (docs/mlperf.md: as close to MLPerf LoadGen's "
        "boundary and less often optimistic); majority: a majority of separate verdicts at the answer must pass "
        "(undecided probes extended).",
    ),
    max_probe_duration: float = typer.Option(
        60.0,
        "--max-probe-duration",
        min=1.0,
        help="Longest measured window of one probe (s): low rates need longer probes to collect the queries a verdict needs.",
    ),
    probe_users: int = typer.Option(8, "--probe-users", min=1, help="Users of the closed-loop capacity probe."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/peak-<time>)."),
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
    asserts: list[str] | None = A.assert_option("peak"),
    allow_invalid: bool = A.ALLOW_INVALID,
    junit: Path | None = A.JUNIT,
    request: dict | None = None,
    fleet: dict | None = None,
) -> None:
    """Find the peak rate under a latency SLO (open loop, Poisson arrivals by default), with stated confidence."""
    from rich.console import Console

    from loadgen.search.peaksearch import PeakOptions, run_peak_search

    console = Console()
    thresholds = A.parse(asserts, "peak")
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
        mode="open",
        rate_rps=start_rate or 1.0,
    )
    out = out or C.default_out("peak")
    if max_rate is not None and start_rate is not None and max_rate < start_rate:
        console.print(f"[red]error:[/red] --max-rate {max_rate:g} is below --start-rate {start_rate:g}")
        raise typer.Exit(2)
    opts = PeakOptions(
        slo_ms=slo_p99_ms,
        percentile=percentile,
        confidence=confidence,
        precision=precision,
        start_rps=start_rate,
        growth=growth,
        max_rps=max_rate,
        min_rps=min_rate,
        max_probes=max_probes,
        confirm=confirm,
        confirm_rule=confirm_rule.value,
        max_probe_s=max_probe_duration,
        probe_users=probe_users,
    )
    console.print(
        f"[bold]peak[/bold] {base.model} at {redact_url(base.target)}: p{percentile:g} <= {slo_p99_ms:g} ms with "
        f"{confidence:.0%} confidence, precision {precision:.0%}, confirm by {confirm} runs ({confirm_rule.value}), "
        f"probes of {base.duration_s:g}-{max_probe_duration:g} s (+{base.warmup_s:g} s warm-up) → {out}"
    )
    with C.running(progress=True, fleet=fleet) as run:
        doc = run_peak_search(
            base,
            run,
            out,
            opts,
            say=lambda m: console.print(f"[dim]{m}[/dim]"),
            on_probe=lambda e: console.print(TS.probe_line(e)),
            raw_limit=C.load_raw_limit(raw_limit, base.batch),
        )
    finish_peak_doc(doc, out, target_rps, headroom)
    TS.print_peak(console, doc, out)
    C.write_html_of(console, out, html)
    A.check(console, doc, thresholds, junit, source=str(out / "peak.json"), allow_invalid=allow_invalid)
    if doc["peak_rps"] is None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("peak")(peak)
