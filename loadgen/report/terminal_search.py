"""Terminal rendering of the search documents: sweep points and tables, peak probes and answers, the matrix, the
overload steps and the tune table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from loadgen.report.html_parts import show_provider


def print_tune(console: Any, doc: dict, out: Any) -> None:
    """Every configuration measured (pooled figures), the Pareto frontier, the recommendation and sizing."""

    def f(v: Any, d: int = 1) -> str:
        if v is None:
            return "–"
        return f"{v:.{0 if abs(v) >= 100 else d}f}" if isinstance(v, float) else str(v)

    c = doc.get("constraints") or {}
    from rich import box

    t = Table(
        title=f"Tune: {doc['model']} ({doc.get('method')} search, objective "
        f"{(doc.get('objective') or {}).get('name')}"
        + (f", SLO p99 <= {c['slo_p99_ms']:g} ms" if c.get("slo_p99_ms") else "")
        + ")",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    width = max([len(r["name"]) for r in doc["configs"]] + [6])
    prov = show_provider(doc["configs"])
    for col in ("config", "n", "peak", "max", "raw", "p99 low", "RSS", "score", "verdict") + (("provider",) * prov):
        t.add_column(
            col,
            justify="left" if col in ("config", "verdict") else "right",
            no_wrap=col != "verdict",
            min_width=width if col == "config" else 11 if col == "verdict" else None,
            overflow="fold",
        )
    t.caption = (
        "n: measurements; peak (under the SLO), max (throughput), raw (in-process limit): req/s; p99 low: "
        "p99 at low load, ms; RSS: server memory, MB; score: vs the start"
    )
    rec = (doc.get("recommended") or {}).get("name")
    pareto = set(doc.get("pareto") or [])
    order = {n: i for i, n in enumerate(doc.get("ranking") or [])}
    for r in sorted(doc["configs"], key=lambda r: order.get(r["name"], len(order))):
        p = r.get("pooled") or {}
        verdict = (
            "[bold green]recommended[/bold green]"
            if r["name"] == rec
            else "pareto"
            if r["name"] in pareto
            else "ok"
            if r.get("feasible")
            else "[red]" + ("; ".join(r.get("violations") or []) or "no score") + "[/red]"
        )
        t.add_row(
            r["name"],
            str(len(r.get("measurements") or [])),
            f(p.get("peak_rps")),
            f(p.get("max_throughput_rps")),
            f(p.get("raw_rps")),
            f(p.get("p99_low_load_ms"), 2),
            f(p.get("rss_mb"), 0),
            f(r.get("score_vs_start"), 3),
            verdict,
            *([r.get("provider") or "cpu"] if prov else []),
        )
    console.print(t)
    console.print(
        f"[dim]score = T^wt / L^wl relative to the start ({doc.get('start')}); pooled = median over a "
        f"configuration's measurements; raw = in-process limit at the same batch × instances[/dim]"
    )
    console.print(
        f"measured {doc.get('configs_measured', len(doc['configs']))} of {doc.get('grid_size', '?')} "
        f"configurations in the grid ({doc.get('measure_calls')} measurement(s) taken now, "
        f"{doc.get('reused_from_checkpoint')} from the checkpoint)"
    )
    if doc.get("pareto"):
        console.print("Pareto frontier (p99 at low load vs throughput): " + ", ".join(doc["pareto"]))
    if rec:
        p = doc.get("recommended_pooled") or {}
        console.print(
            f"[bold green]recommended:[/bold green] [bold]{rec}[/bold] — peak {f(p.get('peak_rps'))} req/s "
            f"under the SLO, max {f(p.get('max_throughput_rps'))} req/s, p99 at low load "
            f"{f(p.get('p99_low_load_ms'), 2)} ms"
        )
        if doc.get("config_toml_path"):
            console.print(f"config.toml: {out.parent / doc['config_toml_path']}")
    else:
        console.print("[bold red]no configuration met every constraint[/bold red]: nothing recommended")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold] ({doc['sizing'].get('configuration')}): {doc['sizing']['note']}")
    console.print(f"wrote {out}")


def print_matrix(console: Any, doc: dict, out: Any) -> None:
    """The matrix table (one row per configuration, the in-process baseline first) and the best cells."""
    from rich.table import Table

    f = lambda v: "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731

    def fv(run: dict | None, key: str) -> str:  # a figure from a run, starred when the run was INVALID
        run = run or {}
        return f(run.get(key)) + ("" if run.get("valid") or run.get(key) is None else "*")

    t = Table(title=f"Matrix: {doc['model']}, SLO p{doc['percentile']:g} <= {doc['slo_ms']:g} ms", title_justify="left")
    width = max([len(r["label"]) for r in doc["configs"]] + [6])
    prov = show_provider(doc["configs"])
    for c in (
        "config",
        "p99 low load ms",
        "max items/s",
        "raw items/s",
        "peak req/s",
        "peak items/s",
        "p99 at peak ms",
        "status",
    ) + (("provider",) * prov):
        if c == "config":  # never cut a configuration's name (an 80-column terminal wraps the other columns)
            t.add_column(c, justify="left", no_wrap=True, min_width=width)
        else:
            t.add_column(c, justify="left" if c == "status" else "right")
    if doc.get("baseline"):
        lim = max(doc["baseline"]["results"], key=lambda r: r["throughput_items_per_s"])
        t.add_row(
            f"in-process baseline (b{lim['batch_size']}·i{lim['instances']})",
            "–",
            "–",
            f(lim["throughput_items_per_s"]),
            "–",
            "–",
            "–",
            "no HTTP",
            *([lim.get("provider") or "cpu"] if prov else []),
            style="dim",
        )
    best_labels = set(doc["best"].values())
    for r in doc["configs"]:
        t.add_row(
            r["label"],
            fv(r.get("low_load"), "p99_ms"),
            f(r.get("max_items_per_s")),
            f(r.get("raw_items_per_s")),
            f(r.get("peak_rps")),
            f(r.get("peak_items_per_s")),
            f(r.get("p99_at_peak_ms")),
            r.get("error") or (r.get("peak") or {}).get("status", ""),
            *([r.get("provider") or "cpu"] if prov else []),
            style="bold green" if r["label"] in best_labels else None,
        )
    console.print(t)
    console.print("[dim]* from an INVALID run (not used to pick the best); see matrix.json for the reasons[/dim]")
    if doc.get("baseline_note"):
        console.print(f"[dim]{doc['baseline_note']}[/dim]")
    b = doc["best"]
    console.print(f"best for latency (lowest p99 at low load): [bold]{b.get('latency') or '–'}[/bold]")
    console.print(f"best peak under the SLO: [bold]{b.get('peak') or '–'}[/bold]")
    console.print(f"best for throughput (max items/s): [bold]{b.get('throughput') or '–'}[/bold]")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold] ({doc['sizing'].get('configuration')}): {doc['sizing']['note']}")
    console.print(f"wrote {out}")


def point_line(row: dict) -> str:
    load = f"{row['users']} users" if row.get("mode") == "closed" else f"{row.get('offered_rps') or 0:.1f} req/s"
    verdict = "[green]VALID[/green]" if row.get("valid") else "[red]INVALID[/red]"
    p = lambda k: "–" if row.get(k) is None else f"{row[k]:.1f}"  # noqa: E731
    from loadgen.results.validity import reason_text

    extra = "" if row.get("valid") else " — " + reason_text(row.get("invalid_reasons") or [])
    return (
        f"  {load:>14}: achieved {row.get('achieved_rps') or 0:8.1f} req/s, p50 {p('p50_ms')} ms, "
        f"p95 {p('p95_ms')} ms, p99 {p('p99_ms')} ms, failed {row.get('failed') or 0} {verdict}{extra}"
    )


def curve_table(rows: list[dict], title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in (
        "#",
        "offered req/s",
        "users",
        "achieved req/s",
        "items/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "failed",
        "verdict",
    ):
        t.add_column(c, justify="right" if c != "verdict" else "left")
    f = lambda v: "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    for r in rows:
        t.add_row(
            f(r.get("index")),
            f(r.get("offered_rps") if r.get("mode") != "closed" else None),
            f(r.get("users")),
            f(r.get("achieved_rps")),
            f(r.get("items_per_s")),
            f(r.get("p50_ms")),
            f(r.get("p95_ms")),
            f(r.get("p99_ms")),
            f(r.get("failed")),
            "[green]VALID[/green]" if r.get("valid") else "[red]INVALID[/red]",
        )
    from loadgen.results.validity import reason_text

    reasons = [
        f"#{r.get('index')}: " + reason_text(r.get("invalid_reasons") or ["no reason recorded"])
        for r in rows
        if not r.get("valid")
    ]
    if not reasons:
        return t
    from rich.console import Group
    from rich.text import Text

    return Group(t, Text("INVALID because:\n" + "\n".join("  " + x for x in reasons), style="red"))


OUTCOME_STYLE = {
    "pass": "[green]PASS[/green]",
    "fail": "[red]FAIL[/red]",
    "undecided": "[yellow]UNDECIDED[/yellow]",
    "generator_limited": "[yellow]GENERATOR-LIMITED[/yellow]",
}


def probe_line(entry: dict) -> str:
    """One peak-search probe: the run's figures, the outcome and why."""
    info = entry.get("info") or {}
    v = info.get("verdict") or {}
    ucb = (
        ""
        if not v
        else (
            f", p{v.get('percentile', 99):g} ≤ {v['ucb_ms']:.1f} ms at {v.get('confidence', 0.99):.0%}"
            if v.get("ucb_ms") is not None
            else ", no upper bound yet"
        )
    )
    why = (
        (info.get("reason") or {}).get("message", "")
        if isinstance(info.get("reason"), dict)
        else str(info.get("reason") or "")
    )
    runs = f" [{len(info.get('files') or [])} runs]" if len(info.get("files") or []) > 1 else ""
    p = lambda k: "–" if info.get(k) is None else f"{info[k]:.1f}"  # noqa: E731
    # the verdict's estimate covers every run pooled at this rate (an extension included); the row, the last run
    est = v.get("estimate_ms") if v and (info.get("pooled_runs") or 1) > 1 else info.get("p99_ms")
    est_s = "–" if est is None else f"{est:.1f}"
    return (
        f"  {entry['rate_rps']:>9.2f} req/s: achieved {info.get('achieved_rps') or 0:8.1f}, p50 {p('p50_ms')} ms, "
        f"p99 {est_s} ms{ucb}{runs}  {OUTCOME_STYLE.get(entry['outcome'], entry['outcome'])} — {why}"
    )


def print_peak(console: Any, doc: dict, out: Path) -> None:
    status = doc["status"]
    style = {"found": "green", "capped": "yellow", "probe_limit": "yellow", "generator_limited": "yellow"}.get(
        status, "red"
    )
    conf = doc.get("confirmation") or {}
    if doc["peak_rps"] is not None:
        spread = conf.get("percentile_ms") or {}
        extra = (
            f"; p{doc['percentile']:g} over {conf.get('runs')} runs there: {spread['min']:.1f}-{spread['max']:.1f} ms"
            if spread.get("min") is not None
            else ""
        )
        console.print(
            f"[bold {style}]peak: {doc['peak_rps']:.4g} req/s[/bold {style}] ({status}) — {doc['reason']}{extra}"
        )
    else:
        console.print(f"[bold red]no peak[/bold red] ({status}) — {doc['reason']}")
    for v in doc.get("pooled_verdicts") or []:  # the pooled rule: one verdict per end of the final bracket
        holds = f", holds the bound to ~p{v['holds_to_percentile']:.4g}" if v.get("holds_to_percentile") else ""
        console.print(
            f"  pooled verdict at {v['rate_rps']:.4g} req/s: {v['outcome']} — {v['runs']} runs, "
            f"{v.get('queries') or 0} queries, {v.get('over') or 0} over the bound{holds}",
            highlight=False,
        )
    for nm in doc.get("non_monotone") or []:
        console.print(
            f"  [yellow]non-monotone:[/yellow] {nm['rate_rps']:.4g} req/s, below the peak, did not pass "
            f"({nm['outcome']}: {nm['reason']})"
        )
    if doc.get("advice"):
        console.print(f"[bold]advice[/bold]: {doc['advice']}")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold]: {doc['sizing']['note']}")
    console.print(f"wrote {Path(out) / 'peak.json'}")


def overload_table(doc: dict) -> Any:
    """The overload steps as a Rich table, followed by what the server's metrics did not show (shared by the terminal
    and the command)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    f = lambda v, d=1: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))  # noqa: E731
    srv = doc.get("server_metrics") or {}
    fam = srv.get("family")
    t = Table(
        title=f"Overload: {doc['scenario'].get('model')}, capacity {doc['capacity_rps']:.1f} req/s "
        "(req/s; ref ms: the server's p99 time to refuse)"
        + (f"; server metrics: {fam}" if fam and fam != "inferload" else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    cols = ("step", "offer", "good", "%cap", "inSLO", "refus", "504", "ref ms", "queue", "admit", "+RSS")
    for c in (*cols, "q ms", "c ms", "batch"):
        t.add_column(c, justify="right", no_wrap=True, min_width=len(c))
    for r in doc["steps"]:
        sm = r.get("server_metrics") or {}
        gone = set(sm.get("unavailable") or [])
        fig = sm.get("figures") or {}

        def g(key: str, v: Any, d: int = 1, *, gone: set = gone) -> str:
            return "n/e" if key in gone else f(v, d)

        t.add_row(
            f"{r['multiple']:g}x",
            f(r.get("offered_rps")),
            f(r.get("goodput_rps")),
            "–" if r.get("goodput_share") is None else f"{r['goodput_share']:.0%}",
            f(r.get("goodput_slo_rps")),
            f(r.get("refused_rps")),
            f(r.get("timeout_rps")),
            f((r.get("refusal_server_ms") or {}).get("p99"), 2),
            f"{g('queue_depth', r.get('queue_depth_max'), 0)}/{f(r.get('queue_cap'))}",
            "n/e"
            if {"inflight", "admission_limit"} <= gone
            else f"{g('inflight', r.get('inflight_max'), 0)}/{g('admission_limit', r.get('admission_limit'), 0)}",
            g("rss_mb", r.get("rss_growth_mb")),
            g("queue_ms_mean", fig.get("queue_ms_mean"), 2),
            g("compute_ms_mean", fig.get("compute_ms_mean"), 2),
            g("batch_size_mean", fig.get("batch_size_mean"), 2),
        )
    t.caption = (
        "good: successes/s; inSLO: within the SLO; refus: 429+503/s; queue: max depth/max_queue_size; "
        "admit: max admitted/limit; +RSS: server memory growth, MB; q ms / c ms / batch: the server's mean queue and "
        "compute time per request and batch size over the step (window averages from its metrics); "
        "n/e: not exported by the server"
    )
    notes = list(srv.get("notes") or [])
    if not notes:
        return t
    lines = Text("Not seen in the server's metrics" + (f" ({srv.get('url')})" if srv.get("url") else "") + ":\n")
    for n in notes:
        lines.append(f"  {n}\n")
    return Group(t, lines)


def print_sweep(console: Any, doc: dict, out: Any) -> None:
    """The sweep's table, why it stopped, its peak under the SLO (or why none) and the sizing line."""
    console.print(curve_table(doc["points"], f"Sweep: {doc['scenario'].get('model')}"))
    if doc.get("stopped"):
        console.print(f"stopped: {doc['stopped']}")
    peak = doc.get("peak")
    if peak and peak.get("rate_rps"):
        console.print(
            f"[bold]peak under SLO[/bold] (highest measured valid point): {peak['rate_rps']:.4g} req/s "
            f"(p{peak['percentile']:g} {peak['latency_ms']:.1f} ms)"
        )
    elif peak:
        console.print(f"[yellow]{peak.get('reason')}[/yellow]")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold]: {doc['sizing']['note']}")
    console.print(f"wrote {out}")
