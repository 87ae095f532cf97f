"""Rich terminal summary of one run result (loadgen.results.schema.RunResult)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from loadgen.results.validity import reason_list


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 10 else (f"{v:.2f}" if v < 100 else f"{v:.1f}")


def _print_workers(console: Console, w: dict[str, Any] | None) -> None:
    """One line per worker of a run made by several (loadgen.results.workers), and the one that limited it."""
    if not w:
        return
    for r in w["per_worker"]:
        lag, cpu = r["schedule_lag_ms"], r["cpu_percent"]
        console.print(
            f"  worker {r['name']} (stream {r['stream']}): sent {r['sent']}, ok {r['completed']}, failed {r['failed']}, "
            f"dropped {r['dropped']}; lag p99 {_ms(lag.get('p99'))} ms; CPU max {cpu.get('max')} %"
            + (f"; [red]{', '.join(r['problems'])}[/red]" if r["problems"] else ""),
            highlight=False,
        )
    if w.get("joined_late"):
        console.print(f"  joined during the run (used from the next run on): {', '.join(w['joined_late'])}")
    if w.get("limited_reason"):
        console.print(f"[yellow]limited by {w['limited_reason']}[/yellow]")


def print_summary(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    sc = result.get("scenario", {})
    if result["mode"] == "open":
        load = f"open loop, {shape_text(sc, result.get('target_rate_rps'))}"
    else:
        load = f"closed loop, {result['users']} users, think {sc.get('think_time_ms', 0):g} ms"
    if sc.get("protocol") == "http-json":
        sent = f"protocol http-json, POST {sc.get('path')} ({sc.get('body_template')})"
    else:
        sent = f"payload {sc.get('payload', '?')}" + (f", inputs {sc['input_data']}" if sc.get("input_data") else "")
    console.print(
        f"[bold]inferload[/bold] {sc.get('model', '?')} @ {sc.get('target', '?')} — {load}, "
        f"batch {sc.get('batch', 1)}, {sent}, "
        f"{result['duration_s']:g} s measured after {result['warmup_s']:g} s warm-up"
    )

    t = Table(title="Throughput", show_header=True, header_style="bold")
    for col in ("completed", "failed", "dropped", "offered req/s", "achieved req/s", "items/s", "delayed"):
        t.add_column(col, justify="right")
    t.add_row(
        str(result["completed"]),
        str(result["failed"]),
        str(result["dropped"]),
        f"{result['offered_rate_rps']:.1f}",
        f"{result['achieved_rate_rps']:.1f}",
        f"{result['items_per_s']:.1f}",
        f"{result['delayed_fraction']:.2%}" if result.get("mode") == "open" else "-",  # no schedule in closed loop
    )
    console.print(t)

    lat = result["latency_ms"]
    ucb = result.get("latency_ucb_ms") or {}
    conf = result.get("confidence") or 0.99
    insufficient = set(result.get("latency_insufficient", []))
    lt = Table(title="Latency of successes (ms, from the scheduled instant)", header_style="bold")
    keys = ["min", "p50", "p90", "p95", "p99", "p999", "max", "mean", "stdev"]
    lt.add_column("")
    for k in keys:
        lt.add_column(k + ("*" if k in insufficient else ""), justify="right")
    lt.add_row("measured", *[_ms(lat.get(k)) for k in keys])
    if ucb:
        lt.add_row(f"≤ at {conf:.0%}", *[_ms(ucb.get(k)) if k in ucb else "" for k in keys])
    console.print(lt)
    if ucb:
        console.print(f"  ≤ at {conf:.0%}: upper confidence bound on the true percentile (order statistics)")
    if insufficient:
        console.print(f"  * too few samples for a {conf:.0%} upper bound: {', '.join(sorted(insufficient))}")

    dec = result.get("decomposition_ms", {})
    if any(v.get("p50") is not None for k, v in dec.items() if k != "client_lag"):
        dt = Table(title="Latency decomposition (ms)", header_style="bold")
        dt.add_column("stage")
        dt.add_column("p50", justify="right")
        dt.add_column("mean", justify="right")
        for k, v in dec.items():
            dt.add_row(k, _ms(v.get("p50")), _ms(v.get("mean")))
        console.print(dt)
    from loadgen.report.server_metrics_view import summary_lines

    for line in summary_lines(result.get("server_metrics")):
        console.print(line, markup=False, highlight=False)
    if result.get("batch_size"):
        console.print("executed batch sizes: " + ", ".join(f"{k}: {v}" for k, v in result["batch_size"].items()))
    if result.get("errors"):
        console.print("[red]errors:[/red] " + ", ".join(f"{k}: {v}" for k, v in result["errors"].items()))
    lag = result.get("schedule_lag_ms", {})
    cpu = result.get("generator_cpu_percent", {})
    console.print(
        f"schedule lag p50/p99/max: {_ms(lag.get('p50'))}/{_ms(lag.get('p99'))}/{_ms(lag.get('max'))} ms; "
        f"generator CPU max/mean: {cpu.get('max')}/{cpu.get('mean')} %"
    )
    _print_workers(console, result.get("workers"))
    slo = result.get("slo")
    if slo:
        console.print(slo_line(slo))
    if result["valid"]:
        console.print("[bold green]VALID[/bold green]")
    else:
        console.print("[bold red]INVALID[/bold red]")
        for r in reason_list(result["invalid_reasons"]):
            console.print(f"  [red]✗[/red] {r['message']} [dim]({r['code']})[/dim]")
    for w in reason_list(result.get("warnings", [])):
        console.print(f"  [yellow]![/yellow] {w['message']} [dim]({w['code']})[/dim]")
    for n in result.get("notes", []):
        console.print(f"  [dim]note: {n}[/dim]")


VERDICT_STYLE = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "undecided": "[yellow]UNDECIDED[/yellow]"}


def shape_text(sc: dict[str, Any], rate: float | None) -> str:
    """'poisson arrivals at 100 req/s', 'ramp 10:200:60s (poisson)', 'trace:FILE x2', 'burst 400 req/s, 1 s on / 4 s off'."""
    arrival = str(sc.get("arrival", "?"))
    if sc.get("ramp"):
        return f"ramp {sc['ramp']} ({arrival} arrivals)"
    if arrival == "burst":
        return (
            f"burst arrivals: {rate or 0:g} req/s for {sc.get('burst_on_s', 1):g} s on, "
            f"{sc.get('burst_off_s', 4):g} s off"
        )
    if arrival.startswith("trace:"):
        scale = f" x{sc['speedup']:g}" if sc.get("speedup") else (f" rescaled to {rate:g} req/s" if rate else "")
        return f"replay of {arrival}{scale}"
    return f"{arrival} arrivals at {rate or 0:g} req/s"


def print_thresholds(console: Any, ev: Any) -> None:
    """Each --assert outcome (PASS / FAIL) and, first, whether the measurement is trustworthy."""
    if not ev.valid:
        console.print(
            "[bold red]INVALID measurement[/bold red] (exit 3; thresholds are not trusted): "
            + "; ".join(ev.invalid_reasons)
        )
    for o in ev.outcomes:
        tag = "[green]PASS[/green]" if o.status == "pass" else "[red]FAIL[/red]"
        console.print(f"threshold {tag} {o.threshold.text}: {o.message}")


def slo_line(slo: dict[str, Any]) -> str:
    """'SLO p99 <= 100 ms: PASS at 99% confidence (p99 47.5 ms, ≤ 52.1 ms) — message'."""
    if "verdict" not in slo:  # schema 1
        return f"SLO p99 <= {slo['p99_ms']:g} ms: " + ("[green]met[/green]" if slo.get("met") else "[red]missed[/red]")
    name = f"p{slo['percentile']:g}"
    est = "—" if slo.get("estimate_ms") is None else f"{slo['estimate_ms']:g} ms"
    ucb = (
        "failures"
        if slo.get("ucb_is_failure")
        else ("unbounded" if slo.get("ucb_ms") is None else f"{slo['ucb_ms']:g} ms")
    )
    return (
        f"SLO {name} <= {slo['bound_ms']:g} ms: {VERDICT_STYLE.get(slo['verdict'], slo['verdict'])} at "
        f"{slo['confidence']:.0%} confidence ({name} {est}, upper bound {ucb}) — {slo['message']}"
    )
