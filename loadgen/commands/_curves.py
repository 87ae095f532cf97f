"""Shared pieces of the curve commands (sweep, peak, matrix): common run flags, scenario building, the lazy
runner, raw-limit loading and sizing output. The leading underscore keeps it out of subcommand discovery.

Nothing here imports locust at module level: `runner()` imports loadgen.engine.runner (and so locust/gevent) only
when a command actually generates load.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import typer

# Common run flags, shared by sweep / peak / matrix (typer OptionInfo objects can be reused as defaults).
SCENARIO_FILE = typer.Option(None, "--scenario", help="Scenario TOML file; flags given here override it.")
TARGET = typer.Option(None, "--target", help="Server base URL (default: http://127.0.0.1:8000).")
MODEL = typer.Option(None, "--model", help="Model name on the server.")
DURATION = typer.Option(None, "--duration", min=0.1, help="Measured seconds per run (default: 10).")
WARMUP = typer.Option(None, "--warmup", min=0.0, help="Warm-up seconds per run, excluded (default: 2).")
PAYLOAD = typer.Option(None, "--payload", help="binary | json | image (default: binary).")
BATCH = typer.Option(None, "--batch", min=1, help="Items per request (client-side batch) (default: 1).")
ARRIVAL = typer.Option(None, "--arrival", help="Open-loop arrivals: poisson | constant | burst (each rate is the "
                       "on-period rate) | trace:FILE[:COLUMN] (each rate rescales the trace) (default: poisson).")
SEED = typer.Option(None, "--seed", help="Seed of the arrival schedule and payloads.")
WORKERS = typer.Option(None, "--workers", min=0, help="Local Locust worker processes (0 = in-process).")
TIMEOUT_MS = typer.Option(None, "--timeout-ms", min=1.0, help="Per-request client timeout (ms).")
TARGET_RPS = typer.Option(None, "--target-rps", min=0.001,
                          help="Sizing: replicas needed to serve this many req/s (uses the measured peak).")
HEADROOM = typer.Option(0.2, "--headroom", min=0.0, max=0.95,
                        help="Sizing: capacity kept in reserve per replica (0.2 = 20%).")
RAW_LIMIT = typer.Option(None, "--raw-limit",
                         help="A bench JSON (inferload bench --out): its max items/s is marked as the raw limit.")


def parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise typer.BadParameter(f"{what}: expected positive numbers, got {text!r}")
    return vals


def parse_ints(text: str, what: str, minimum: int = 1) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not vals or any(v < minimum for v in vals):
        raise typer.BadParameter(f"{what}: expected integers >= {minimum}, got {text!r}")
    return vals


def build_scenario(scenario_file: Optional[Path], **fields: Any):
    """Scenario from an optional TOML file plus flags (None = not given). Exits with a clear message on error."""
    from loadgen.engine.scenario import Scenario, ScenarioError

    given = {k: v for k, v in fields.items() if v is not None}
    try:
        if scenario_file is not None:
            return Scenario.from_toml(scenario_file, **given)
        given.setdefault("target", "http://127.0.0.1:8000")
        if "model" not in given:
            raise ScenarioError("--model is required (or a --scenario file naming the model)")
        return Scenario.build(given, source="command line")
    except ScenarioError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)


def runner(progress: bool = True, **kw: Any) -> Callable[[Any], dict]:
    """run_scenario bound with progress (and run_scenario's other keywords); imports locust (gevent) now, not before."""
    from loadgen.engine.runner import prepare_engine, run_scenario

    prepare_engine()
    return lambda scenario: run_scenario(scenario, progress=progress, **kw)


def default_out(kind: str) -> Path:
    return Path("results") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_raw_limit(path: Optional[Path], items_per_request: int) -> dict | None:
    if path is None:
        return None
    from loadgen.results.io import ReportInputError, read_json
    from loadgen.results.points import raw_limit_from_bench

    try:
        lim = raw_limit_from_bench(read_json(path), items_per_request)
    except ReportInputError as e:
        typer.echo(f"error: --raw-limit {e}", err=True)
        raise typer.Exit(2)
    if lim:
        lim["file"] = str(path)
    return lim


def point_line(row: dict) -> str:
    load = f"{row['users']} users" if row.get("mode") == "closed" else f"{row.get('offered_rps') or 0:.1f} req/s"
    verdict = "[green]VALID[/green]" if row.get("valid") else "[red]INVALID[/red]"
    p = lambda k: "–" if row.get(k) is None else f"{row[k]:.1f}"  # noqa: E731
    from loadgen.results.analysis import reason_text

    extra = "" if row.get("valid") else " — " + reason_text(row.get("invalid_reasons") or [])
    return (f"  {load:>14}: achieved {row.get('achieved_rps') or 0:8.1f} req/s, p50 {p('p50_ms')} ms, "
            f"p95 {p('p95_ms')} ms, p99 {p('p99_ms')} ms, failed {row.get('failed') or 0} {verdict}{extra}")


def curve_table(rows: list[dict], title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in ("#", "offered req/s", "users", "achieved req/s", "items/s", "p50 ms", "p95 ms", "p99 ms", "failed",
              "verdict"):
        t.add_column(c, justify="right" if c != "verdict" else "left")
    f = lambda v: "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    for r in rows:
        t.add_row(f(r.get("index")), f(r.get("offered_rps") if r.get("mode") != "closed" else None), f(r.get("users")),
                  f(r.get("achieved_rps")), f(r.get("items_per_s")), f(r.get("p50_ms")), f(r.get("p95_ms")),
                  f(r.get("p99_ms")), f(r.get("failed")),
                  "[green]VALID[/green]" if r.get("valid") else "[red]INVALID[/red]")
    from loadgen.results.analysis import reason_text

    reasons = [f"#{r.get('index')}: " + reason_text(r.get("invalid_reasons") or ["no reason recorded"])
               for r in rows if not r.get("valid")]
    if not reasons:
        return t
    from rich.console import Group
    from rich.text import Text

    return Group(t, Text("INVALID because:\n" + "\n".join("  " + x for x in reasons), style="red"))


OUTCOME_STYLE = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "undecided": "[yellow]UNDECIDED[/yellow]",
                 "generator_limited": "[yellow]GENERATOR-LIMITED[/yellow]"}


def probe_line(entry: dict) -> str:
    """One peak-search probe: the run's figures, the outcome and why."""
    info = entry.get("info") or {}
    v = info.get("verdict") or {}
    ucb = "" if not v else (f", p{v.get('percentile', 99):g} ≤ {v['ucb_ms']:.1f} ms at {v.get('confidence', 0.99):.0%}"
                            if v.get("ucb_ms") is not None else ", no upper bound yet")
    why = (info.get("reason") or {}).get("message", "") if isinstance(info.get("reason"), dict) else str(info.get("reason") or "")
    runs = f" [{len(info.get('files') or [])} runs]" if len(info.get("files") or []) > 1 else ""
    p = lambda k: "–" if info.get(k) is None else f"{info[k]:.1f}"  # noqa: E731
    # the verdict's estimate covers every run pooled at this rate (an extension included); the row, the last run
    est = v.get("estimate_ms") if v and (info.get("pooled_runs") or 1) > 1 else info.get("p99_ms")
    est_s = "–" if est is None else f"{est:.1f}"
    return (f"  {entry['rate_rps']:>9.2f} req/s: achieved {info.get('achieved_rps') or 0:8.1f}, p50 {p('p50_ms')} ms, "
            f"p99 {est_s} ms{ucb}{runs}  {OUTCOME_STYLE.get(entry['outcome'], entry['outcome'])} — {why}")


def finish_peak_doc(doc: dict, out: Path, target_rps: Optional[float], headroom: float) -> None:
    """Add the sizing line (replicas for --target-rps) from the peak's achieved rate; rewrite peak.json."""
    from loadgen.results.io import write_json

    peak_rate = doc.get("peak_rps")
    at_peak = [p["info"] for p in doc.get("probes") or [] if p["rate_rps"] == peak_rate]
    achieved = [i.get("achieved_rps") for i in at_peak if i.get("achieved_rps")]
    per_replica = min(achieved) if achieved else peak_rate
    from loadgen.search.sizing import sizing_for

    doc["sizing"] = sizing_for(target_rps, headroom, per_replica, [p["info"] for p in doc.get("probes") or []],
                               doc.get("slo_ms"))
    if doc["sizing"] and doc["sizing"].get("replicas") and doc.get("status") == "found":
        doc["advice"] = (f"deploy {doc['sizing']['replicas']} replicas for {target_rps:g} req/s "
                         f"({headroom:.0%} headroom per replica)")
    write_json(Path(out) / "peak.json", doc)


def print_peak(console: Any, doc: dict, out: Path) -> None:
    status = doc["status"]
    style = {"found": "green", "capped": "yellow", "probe_limit": "yellow", "generator_limited": "yellow"}.get(status, "red")
    conf = doc.get("confirmation") or {}
    if doc["peak_rps"] is not None:
        spread = (conf.get("percentile_ms") or {})
        extra = (f"; p{doc['percentile']:g} over {conf.get('runs')} runs there: {spread['min']:.1f}-{spread['max']:.1f} ms"
                 if spread.get("min") is not None else "")
        console.print(f"[bold {style}]peak: {doc['peak_rps']:.4g} req/s[/bold {style}] ({status}) — {doc['reason']}{extra}")
    else:
        console.print(f"[bold red]no peak[/bold red] ({status}) — {doc['reason']}")
    for nm in doc.get("non_monotone") or []:
        console.print(f"  [yellow]non-monotone:[/yellow] {nm['rate_rps']:.4g} req/s, below the peak, did not pass "
                      f"({nm['outcome']}: {nm['reason']})")
    if doc.get("advice"):
        console.print(f"[bold]advice[/bold]: {doc['advice']}")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold]: {doc['sizing']['note']}")
    console.print(f"wrote {Path(out) / 'peak.json'}")


def overload_table(doc: dict) -> Any:
    """The overload steps as a Rich table (shared by the terminal and the command)."""
    from rich import box
    from rich.table import Table

    f = lambda v, d=1: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))  # noqa: E731
    t = Table(title=f"Overload: {doc['scenario'].get('model')}, capacity {doc['capacity_rps']:.1f} req/s "
                    "(req/s; ref ms: the server's p99 time to refuse)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for c in ("step", "offer", "good", "%cap", "inSLO", "refus", "504", "ref ms", "queue", "admit", "+RSS"):
        t.add_column(c, justify="right", no_wrap=True, min_width=len(c))
    for r in doc["steps"]:
        t.add_row(f"{r['multiple']:g}x", f(r.get("offered_rps")), f(r.get("goodput_rps")),
                  "–" if r.get("goodput_share") is None else f"{r['goodput_share']:.0%}", f(r.get("goodput_slo_rps")),
                  f(r.get("refused_rps")), f(r.get("timeout_rps")), f((r.get("refusal_server_ms") or {}).get("p99"), 2),
                  f"{f(r.get('queue_depth_max'), 0)}/{f(r.get('queue_cap'))}",
                  f"{f(r.get('inflight_max'), 0)}/{f(r.get('admission_limit'), 0)}", f(r.get("rss_growth_mb")))
    t.caption = ("good: successes/s; inSLO: within the SLO; refus: 429+503/s; queue: max depth/max_queue_size; "
                 "admit: max admitted/limit; +RSS: server memory growth, MB (from its /metrics)")
    return t


def write_html_of(console: Any, out: Path, html: Optional[Path]) -> None:
    """`--html FILE`: the HTML report of the document a command just wrote to `out`."""
    if html is None:
        return
    from loadgen.report.html import write_html
    from loadgen.results.io import load_doc

    write_html([load_doc(out)], html)
    console.print(f"wrote {html}")
