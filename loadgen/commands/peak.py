"""`inferload peak`: the highest open-loop rate whose chosen percentile meets the SLO on a VALID run
(bracket, then bisect — MLPerf LoadGen's FindPeakPerformance). Writes probe-NNN.json + peak.json."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from loadgen.commands import _curves as C


def peak_doc(base, slo_ms: float, percentile: float, precision: float, growth: float, probes: list[dict],
             result: dict | None, raw_limit: dict | None) -> dict:
    doc = {
        "schema_version": 1,
        "kind": "peak",
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenario": base.model_dump(mode="json"),
        "slo_ms": slo_ms,
        "percentile": percentile,
        "precision": precision,
        "growth": growth,
        "method": "bracket (x growth up while passing / down while failing) then bisect until "
                  "(upper - lower) / upper <= precision; a probe passes on a VALID run whose percentile meets the SLO",
        "probes": probes,
        "raw_limit": raw_limit,
        "status": "running" if result is None else result["status"],
    }
    if result is not None:
        doc.update({k: result[k] for k in ("peak_rps", "reason", "lower_rps", "upper_rps", "capped")})
    return doc


def peak(
    slo_p99_ms: float = typer.Option(..., "--slo-p99-ms", min=0.001,
                                     help="Latency bound (ms) on the chosen percentile (p99 unless --percentile)."),
    percentile: float = typer.Option(99.0, "--percentile", min=1.0, max=99.999, help="Percentile the SLO applies to."),
    precision: float = typer.Option(0.05, "--precision", min=0.001, max=0.9,
                                    help="Stop bisecting when the bracket is narrower than this (relative)."),
    start_rate: float = typer.Option(10.0, "--start-rate", min=0.001, help="First probed rate (req/s)."),
    growth: float = typer.Option(2.0, "--growth", min=1.01, help="Bracketing factor (MLPerf doubles)."),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", min=0.001,
                                             help="Never probe above this; passing here is reported as capped."),
    min_rate: Optional[float] = typer.Option(None, "--min-rate", min=0.001,
                                             help="Never probe below this (default: max(start / 64, the lowest rate that can be VALID at --duration))."),
    max_probes: int = typer.Option(12, "--max-probes", min=1, help="At most this many runs."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: results/peak-<time>)."),
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
) -> None:
    """Find the peak rate under a latency SLO (open loop, Poisson arrivals by default)."""
    from rich.console import Console

    from loadgen.analysis import generator_limited
    from loadgen.matrix import min_valid_rate, probe_passes
    from loadgen.peak import find_peak
    from loadgen.sweep import summarize_point, write_json

    console = Console()
    base = C.build_scenario(scenario, target=target, model=model, duration_s=duration, warmup_s=warmup,
                            payload=payload, batch=batch, arrival=arrival, seed=seed, workers=workers,
                            timeout_ms=timeout_ms, slo_p99_ms=slo_p99_ms, mode="open", rate_rps=start_rate)
    out = out or C.default_out("peak")
    lim = C.load_raw_limit(raw_limit, base.batch)
    floor = min_valid_rate(base.duration_s, percentile)
    notes = []
    if start_rate < floor:
        notes.append(f"a VALID run needs >= {floor * base.duration_s:.0f} successes (p99 gating), so with "
                     f"{base.duration_s:g}s measured no rate below {floor:.4g} req/s can pass: the search starts "
                     f"there (run longer with --duration to probe lower rates)")
        console.print(f"[yellow]note: {notes[-1]}[/yellow]")
        start_rate = floor
    if min_rate is None:
        min_rate = max(start_rate / 64, floor)
    if max_rate is not None and max_rate < start_rate:
        console.print(f"[red]error:[/red] --max-rate {max_rate:g} is below the lowest rate that can be VALID "
                      f"({start_rate:.4g} req/s at --duration {base.duration_s:g})")
        raise typer.Exit(2)
    console.print(f"[bold]peak[/bold] {base.model} at {base.target}: p{percentile:g} <= {slo_p99_ms:g} ms, "
                  f"start {start_rate:g} req/s × {growth:g}, precision {precision:.0%}, "
                  f"{base.duration_s:g}s per probe (+{base.warmup_s:g}s warm-up) → {out}")
    run = C.runner(progress=True)
    probes: list[dict] = []

    def measure(rate: float) -> tuple[bool, dict]:
        i = len(probes)
        retried: list[dict] = []
        for attempt in range(2):  # a generator-limited INVALID run says nothing about the server: measure once more
            res = run(base.model_copy(update={"mode": "open", "rate_rps": rate, "users": None,
                                              "seed": base.seed + attempt}))
            fname = f"probe-{i:03d}.json" if attempt == 0 else f"probe-{i:03d}-retry.json"
            write_json(out / fname, res)
            row = summarize_point(res, fname, i)
            passed, info = probe_passes(row, slo_p99_ms, percentile)
            if passed or attempt == 1 or not generator_limited(res):
                break
            retried.append({"file": fname, "reason": info["reason"]})
            console.print(C.point_line(row) + "  [yellow]INCONCLUSIVE[/yellow] (the generator, not the server, "
                          "fell short): measuring again with another seed")
        if retried:
            info["retried"] = retried
        probes.append({"rate_rps": rate, "passed": passed, "phase": None, "file": fname, "info": info})
        console.print(C.point_line(row) + ("  [green]PASS[/green]" if passed else f"  [red]FAIL[/red] {info['reason']}"))
        write_json(out / "peak.json", peak_doc(base, slo_p99_ms, percentile, precision, growth, probes, None, lim))
        return passed, info

    result = find_peak(measure, start_rps=start_rate, precision=precision, growth=growth, max_rps=max_rate,
                       min_rps=min_rate, max_probes=max_probes).to_dict()
    for p, rp in zip(probes, result["probes"]):
        p["phase"] = rp["phase"]
    doc = peak_doc(base, slo_p99_ms, percentile, precision, growth, probes, result, lim)
    doc["notes"] = notes
    peak_rate = result["peak_rps"]
    at_peak = next((p["info"] for p in probes if p["rate_rps"] == peak_rate), {})
    doc["sizing"] = C.sizing_for(target_rps, headroom, at_peak.get("achieved_rps") or peak_rate,
                                 [p["info"] for p in probes], slo_p99_ms)
    write_json(out / "peak.json", doc)
    style = {"found": "green", "capped": "yellow", "probe_limit": "yellow"}.get(result["status"], "red")
    if peak_rate is not None:
        console.print(f"[bold {style}]peak: {peak_rate:.4g} req/s[/bold {style}] ({result['status']}) — {result['reason']}")
    else:
        console.print(f"[bold red]no peak[/bold red] ({result['status']}) — {result['reason']}")
    if doc["sizing"]:
        console.print(f"[bold]sizing[/bold]: {doc['sizing']['note']}")
    console.print(f"wrote {out / 'peak.json'}")
    if html is not None:
        from loadgen.report.html import write_html
        from loadgen.report.load import load_doc

        write_html([load_doc(out)], html)
        console.print(f"wrote {html}")
    if peak_rate is None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("peak")(peak)
