"""Per-kind sections of the HTML report (result, sweep, peak, matrix, bench, overload, tune) and the overview.
The tune section lives in html_tune (re-exported here)."""

from __future__ import annotations

from loadgen.report import plots
from loadgen.report.html_capacity import bench_section, overload_section
from loadgen.report.html_overview import overview_section
from loadgen.report.html_parts import (
    _raw_rps,
    _sizing_block,
    badge,
    cards,
    config_block,
    esc,
    figure,
    fmt,
    global_raw_limit,
    points_of,
    reasons_block,
    section_header,
    table,
)
from loadgen.report.html_search import matrix_section, peak_section
from loadgen.report.html_tune import tune_section
from loadgen.report.terminal import shape_text
from loadgen.results.io import Doc
from loadgen.results.points import summarize_point
from loadgen.results.validity import reason_text

__all__ = [
    "global_raw_limit",
    "result_section",
    "sweep_section",
    "peak_section",
    "matrix_section",
    "bench_section",
    "overview_section",
    "overload_section",
    "tune_section",
]  # the page (html.py) takes every section from here


def _rate_label(row: dict) -> str:
    if row.get("mode") == "closed" or (row.get("offered_rps") is None and row.get("users")):
        return f"{row.get('users')} users"
    return f"{fmt(row.get('offered_rps'))} req/s"


# ------------------------------------------------------------------------------------------------- result --
def _workers_block(w: dict | None) -> str:
    """The generating processes of a run made by several (loadgen.results.workers): who did what, who limited it."""
    if not w:
        return ""
    rows = [
        [
            x["name"],
            x["stream"],
            x["sent"],
            x["completed"],
            x["failed"],
            x["dropped"],
            (x.get("schedule_lag_ms") or {}).get("p99"),
            None if x.get("delayed_fraction") is None else 100 * x["delayed_fraction"],
            (x.get("cpu_percent") or {}).get("max"),
            ", ".join(x["problems"]) or "–",
        ]
        for x in w["per_worker"]
    ]
    head = ["worker", "stream", "sent", "ok", "failed", "dropped", "lag p99 ms", "late %", "CPU max %", "problems"]
    extra = ""
    if w.get("limited_reason"):
        extra += f'<div class="callout">Limited by {esc(w["limited_reason"])}</div>'
    if w.get("joined_late"):
        extra += f'<div class="sub">Joined during the run (used from the next run on): {esc(", ".join(w["joined_late"]))}</div>'
    return (
        f"<h3>Workers ({w['count']})</h3>"
        + table(head, rows, num_cols={1, 2, 3, 4, 5, 6, 7, 8})
        + extra
        + '<div class="sub">Each worker times its requests against its own schedule and clock; the histograms above are '
        "their exact sum.</div>"
    )


def result_section(doc: Doc, raw_limit: dict | None) -> str:
    r = doc.data
    sc = r.get("scenario") or {}
    lat = r.get("latency_ms") or {}
    open_loop = r.get("mode") == "open"
    load = f"open loop, {shape_text(sc, sc.get('rate_rps'))}" if open_loop else f"closed loop, {r.get('users')} users"
    sub = (
        f"{sc.get('model', '?')} at {sc.get('target', '?')} · {load} · {fmt(r.get('duration_s'))} s measured"
        f" · payload {sc.get('payload', '?')} × {sc.get('batch', 1)} item(s) · started {r.get('started_at', '?')}"
    )
    out = [section_header("run", doc.title, badge(r.get("valid")), sub)]
    out.append(
        cards(
            [
                ("achieved", r.get("achieved_rate_rps"), "req/s"),
                (
                    "target" if open_loop else "offered",
                    r.get("target_rate_rps") if open_loop else r.get("offered_rate_rps"),
                    "req/s",
                ),
                ("items", r.get("items_per_s"), "items/s"),
                ("p50", lat.get("p50"), "ms"),
                ("p99", lat.get("p99"), "ms"),
                ("p99.9", lat.get("p999"), "ms"),
                ("max", lat.get("max"), "ms"),
                ("completed", r.get("completed"), ""),
                ("failed", r.get("failed"), ""),
                ("delayed", None if r.get("delayed_fraction") is None else 100 * r["delayed_fraction"], "%"),
            ]
        )
    )
    ucb = r.get("latency_ucb_ms") or {}
    if ucb:
        conf = float(r.get("confidence") or 0.99)
        names = [k for k in ("p50", "p90", "p95", "p99", "p999") if k in lat]
        out.append(
            f"<h3>Percentiles with {conf:.0%} upper confidence bounds</h3>"
            + table(
                ["", *names],
                [
                    ["measured", *[lat.get(k) for k in names]],
                    [f"true value ≤ (at {conf:.0%})", *[ucb.get(k) for k in names]],
                ],
                num_cols=set(range(1, len(names) + 1)),
            )
            + '<div class="sub">Order-statistic bounds: with this confidence the true percentile is at or '
            'below the bound; "–": too few samples to bound it.</div>'
        )
    slo_v = r.get("slo") or {}
    if slo_v.get("verdict"):
        cls = {"pass": "ok", "fail": ""}.get(slo_v["verdict"], "note")
        out.append(
            f'<div class="callout {cls}"><strong>SLO p{float(slo_v.get("percentile") or 99):g} &le; '
            f"{fmt(slo_v.get('bound_ms'))} ms: {esc(slo_v['verdict'].upper())}</strong> — "
            f"{esc(slo_v.get('message'))}</div>"
        )
    notes = list(r.get("notes") or [])
    if r.get("latency_insufficient"):
        notes.append(
            "too few samples to bound these percentiles with confidence (indicative only): "
            + ", ".join(map(str, r["latency_insufficient"]))
        )
    if r.get("errors"):
        notes.append("errors by status: " + ", ".join(f"{k}: {v}" for k, v in r["errors"].items()))
    from loadgen.report.server_metrics_view import summary_lines

    notes += [line.strip() for line in summary_lines(r.get("server_metrics"))]
    out.append(reasons_block(r.get("valid"), r.get("invalid_reasons") or [], r.get("warnings"), notes))
    out.append(_workers_block(r.get("workers")))
    slo = sc.get("slo_p99_ms")
    out.append(
        figure(
            plots.percentile_distribution([("", r.get("percentiles") or [])], slo_ms=slo, title=""),
            "latency percentile distribution",
            "Latency at each percentile (HDR style: the x axis stretches the tail).",
            heading="Latency percentile distribution",
        )
    )
    shaped = bool(sc.get("ramp")) or sc.get("arrival") == "burst" or str(sc.get("arrival", "")).startswith("trace:")
    out.append(
        figure(
            plots.timeline(r, title=""),
            "timeline",
            "Offered (the scheduled instants in each second) vs completed rate (and errors) per second; p50 "
            "and p99 per second; shaded: warm-up / drain, not measured.",
            heading="Timeline: the traffic shape, offered vs achieved" if shaped else "Timeline",
        )
    )
    out.append(
        figure(
            plots.decomposition([(doc.title, r.get("decomposition_ms") or {})], title=""),
            "latency decomposition",
            "Mean latency split by stage, from the server's Server-Timing header.",
            heading="Latency decomposition",
        )
    )
    out.append(
        figure(
            plots.batch_sizes([(_rate_label(summarize_point(r)), None, r.get("batch_size") or {})], title=""),
            "realised batch sizes",
            "Server batch each request ran in (from Server-Timing).",
            heading="Realised batch sizes",
        )
    )
    out.append(config_block(sc, r.get("server"), r.get("machine")))
    return "".join(out)


# -------------------------------------------------------------------------------------------------- sweep --
def sweep_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    pts = points_of(doc)
    sc = d.get("scenario") or {}
    slo = d.get("slo_p99_ms")
    n_valid = sum(1 for p in pts if p.get("valid"))
    verdict = (
        badge(True)
        if n_valid == len(pts) and pts
        else f'<span class="badge {"invalid" if n_valid == 0 else "warn"}">{n_valid} of {len(pts)} points VALID</span>'
    )
    kind = (
        "closed-loop users"
        if d.get("sweep") == "users"
        else "open-loop rates" + (" (auto)" if d.get("sweep") == "auto" else "")
    )
    sub = f"{sc.get('model', '?')} at {sc.get('target', '?')} · {kind} · {fmt(sc.get('duration_s'))} s per point"
    peak = d.get("peak") or {}
    raw = _raw_rps(d.get("raw_limit"), raw_limit, int(sc.get("batch") or 1))
    out = [section_header("sweep", doc.title, verdict, sub)]
    out.append(
        cards(
            [
                ("points", len(pts), ""),
                ("SLO p99", slo, "ms"),
                ("peak under SLO", peak.get("rate_rps"), "req/s"),
                ("p99 at peak", peak.get("latency_ms"), "ms"),
                ("max achieved", max((p.get("achieved_rps") or 0 for p in pts), default=None), "req/s"),
                ("raw in-process limit", raw, "req/s"),
            ]
        )
    )
    notes = list(d.get("notes") or [])
    if d.get("stopped"):
        notes.insert(0, f"sweep stopped: {d['stopped']}")
    if peak and peak.get("rate_rps") is None and peak.get("reason"):
        notes.append(peak["reason"])
    if doc.missing:
        notes.append("point files not found (summary rows used): " + ", ".join(doc.missing))
    out.append(reasons_block(None, [], None, notes))
    out.append(_sizing_block(d.get("sizing")))
    out.append(
        figure(
            plots.latency_throughput(
                [{"label": doc.title, "points": pts}],
                slo_ms=slo,
                peak_rps=peak.get("achieved_rps") or peak.get("rate_rps"),
                raw_limit_rps=raw,
                title="",
            ),
            "latency-throughput curve",
            "p50 / p95 / p99 against achieved throughput; hollow markers are INVALID runs.",
            heading="Latency vs throughput",
        )
    )
    out.append("<h3>Points</h3>" + _points_table(pts))
    series = [
        (_rate_label(p), (doc.children[i] if i < len(doc.children) else {}).get("percentiles") or [])
        for i, p in enumerate(pts)
    ]
    out.append(
        figure(
            plots.percentile_distribution(series, slo_ms=slo, title=""),
            "latency percentile distribution",
            "Latency by percentile for each point (HDR style).",
            heading="Latency percentile distribution",
        )
    )
    decs = [
        (_rate_label(p), (doc.children[i] if i < len(doc.children) else {}).get("decomposition_ms") or {})
        for i, p in enumerate(pts)
    ]
    out.append(
        figure(
            plots.decomposition(decs, title=""),
            "latency decomposition",
            "Mean latency per stage at each point (Server-Timing): queueing grows with load.",
            heading="Latency decomposition",
        )
    )
    bs = [
        (
            _rate_label(p),
            p.get("offered_rps"),
            (doc.children[i] if i < len(doc.children) else {}).get("batch_size") or {},
        )
        for i, p in enumerate(pts)
    ]
    out.append(
        figure(
            plots.batch_sizes(bs, title=""),
            "realised batch sizes vs offered load",
            "Share of requests by the server batch they ran in (Server-Timing); batches grow by themselves as load rises.",
            heading="Realised batch sizes vs offered load",
        )
    )
    tl = []
    for i, p in enumerate(pts):
        child = doc.children[i] if i < len(doc.children) else {}
        img = plots.timeline(child, title="") if child else None
        if img:
            tl.append(
                f"<details><summary>Timeline: point {i} · {esc(_rate_label(p))} {badge(p.get('valid'))}"
                f"</summary>{figure(img, f'timeline point {i}')}</details>"
            )
    if tl:
        out.append("<h3>Timelines</h3>" + "".join(tl))
    first = next((c for c in doc.children if c), {})
    out.append(config_block(sc, first.get("server"), first.get("machine")))
    return "".join(out)


def _points_table(pts: list[dict]) -> str:
    rows = []
    for p in pts:
        rows.append(
            [
                p.get("index"),
                p.get("offered_rps") if p.get("mode") != "closed" else None,
                p.get("users"),
                p.get("achieved_rps"),
                p.get("items_per_s"),
                p.get("p50_ms"),
                p.get("p95_ms"),
                p.get("p99_ms"),
                p.get("p999_ms"),
                p.get("failed"),
                p.get("mean_server_batch"),
                badge(p.get("valid")),
            ]
        )
    out = table(
        [
            "#",
            "offered req/s",
            "users",
            "achieved req/s",
            "items/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
            "failed",
            "mean batch",
            "verdict",
        ],
        rows,
        num_cols=set(range(11)),
        raw_cols={11},
    )
    bad = [p for p in pts if not p.get("valid")]
    if bad:
        items = "".join(
            f"<li><strong>#{esc(p.get('index'))} ({esc(_rate_label(p))})</strong>: "
            + esc(reason_text(p.get("invalid_reasons") or ["no reason recorded"]))
            + "</li>"
            for p in bad
        )
        out += f'<div class="callout"><strong>INVALID points, because:</strong><ul class="reasons">{items}</ul></div>'
    return out


# --------------------------------------------------------------------------------------------------- peak --


# ------------------------------------------------------------------------------------------------- matrix --


# ----------------------------------------------------------------------------------------------- overview --


# ----------------------------------------------------------------------------------------------- overload --
