"""HTML sections of the search documents: peak (the answer, its probes) and the batch × instances matrix."""

from __future__ import annotations

from loadgen.report import plots, plots_search
from loadgen.report.html_capacity import bench_table
from loadgen.report.html_parts import (
    _raw_rps,
    _sizing_block,
    badge,
    cards,
    config_block,
    esc,
    figure,
    fmt,
    reasons_block,
    section_header,
    show_provider,
    table,
)
from loadgen.results.io import Doc


def peak_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    sc = d.get("scenario") or {}
    probes = d.get("probes") or []
    rows = [p.get("info") or {} for p in probes]
    status = d.get("status")
    verdict = (
        '<span class="badge valid">FOUND</span>'
        if status == "found"
        else f'<span class="badge {"warn" if status in ("capped", "probe_limit") else "invalid"}">{esc(str(status).upper())}</span>'
    )
    pct = d.get("percentile", 99)
    sub = (
        f"{sc.get('model', '?')} at {sc.get('target', '?')} · bracket × {fmt(d.get('growth'))} then bisect to "
        f"{fmt(100 * (d.get('precision') or 0))}% · {fmt(sc.get('duration_s'))} s per probe"
    )
    raw = _raw_rps(d.get("raw_limit"), raw_limit, int(sc.get("batch") or 1))
    out = [section_header("peak", doc.title, verdict, sub)]
    out.append(
        cards(
            [
                ("peak under SLO", d.get("peak_rps"), "req/s"),
                (f"SLO p{pct:g}", d.get("slo_ms"), "ms"),
                ("probes", len(probes), ""),
                ("bracket upper", d.get("upper_rps"), "req/s"),
                ("raw in-process limit", raw, "req/s"),
            ]
        )
    )
    cls = "ok" if status == "found" else ("note" if status in ("capped", "probe_limit", "generator_limited") else "")
    adv = f"<br><strong>advice:</strong> {esc(d.get('advice'))}" if d.get("advice") else ""
    out.append(f'<div class="callout {cls}"><strong>{esc(status)}:</strong> {esc(d.get("reason"))}{adv}</div>')
    conf = d.get("confirmation") or {}
    if conf:
        sp, ach = conf.get("percentile_ms") or {}, conf.get("achieved_rps") or {}
        out.append(
            f'<div class="callout note"><strong>Confirmation at {fmt(conf.get("rate_rps"))} req/s:</strong> '
            f"{conf.get('passes')} of {conf.get('runs')} runs passed ({esc(', '.join(conf.get('outcomes') or []))}); "
            f"p{pct:g} {fmt(sp.get('min'))}–{fmt(sp.get('max'))} ms, achieved {fmt(ach.get('min'))}–"
            f"{fmt(ach.get('max'))} req/s</div>"
        )
    nm = d.get("non_monotone") or []
    if nm:
        items = "".join(
            f"<li>{fmt(x.get('rate_rps'))} req/s: {esc(x.get('outcome'))} — {esc(x.get('reason'))}</li>" for x in nm
        )
        out.append(
            '<div class="callout note"><strong>Non-monotone:</strong> rates below the peak that did not pass '
            f'(idle CPUs wake slowly, so low rates can show worse tails)<ul class="reasons">{items}</ul></div>'
        )
    out.append(reasons_block(None, [], None, list(d.get("notes") or [])))
    out.append(_sizing_block(d.get("sizing")))
    peak_ach = next(
        (
            r.get("achieved_rps")
            for p, r in zip(probes, rows)
            if d.get("peak_rps") is not None and p.get("rate_rps") == d.get("peak_rps")
        ),
        d.get("peak_rps"),
    )
    out.append(
        figure(
            plots.latency_throughput(
                [{"label": doc.title, "points": [r for r in rows if r]}],
                slo_ms=d.get("slo_ms"),
                peak_rps=peak_ach,
                raw_limit_rps=raw,
                title="",
            ),
            "latency-throughput curve from probes",
            "Every probe of the search; hollow markers are INVALID runs.",
            heading="Latency vs throughput (peak-search probes)",
        )
    )
    trows = []
    for i, (p, r) in enumerate(zip(probes, rows)):
        outcome = p.get("outcome") or ("pass" if p.get("passed") else "fail")
        why = r.get("reason")
        why = why.get("message") if isinstance(why, dict) else why
        trows.append(
            [
                i,
                p.get("phase"),
                p.get("rate_rps"),
                r.get("achieved_rps"),
                r.get("p99_ms"),
                (r.get("verdict") or {}).get("ucb_ms"),
                len(r.get("files") or []) or 1,
                badge(r.get("valid")) if r else "–",
                _outcome_badge(outcome),
                esc(why or ""),
            ]
        )
    out.append(
        "<h3>Probes</h3>"
        + table(
            [
                "#",
                "phase",
                "rate req/s",
                "achieved req/s",
                "p99 ms",
                f"p99 ≤ at {float(d.get('confidence') or 0.99):.0%}",
                "runs",
                "run",
                "SLO",
                "why",
            ],
            trows,
            num_cols={0, 2, 3, 4, 5, 6},
            raw_cols={7, 8, 9},
        )
    )
    series = [
        (f"{fmt(p.get('rate_rps'))} req/s", c.get("percentiles") or [])
        for p, c in sorted(zip(probes, doc.children), key=lambda pc: pc[0].get("rate_rps") or 0)
        if c
    ]
    out.append(
        figure(
            plots.percentile_distribution(series, slo_ms=d.get("slo_ms"), title=""),
            "latency percentile distribution",
            "Latency by percentile for each probe.",
            heading="Latency percentile distribution",
        )
    )
    first = next((c for c in doc.children if c), {})
    out.append(config_block(sc, first.get("server"), first.get("machine")))
    return "".join(out)


def _outcome_badge(outcome: str) -> str:
    cls = {"pass": "valid", "fail": "invalid"}.get(outcome, "warn")
    return f'<span class="badge {cls}">{esc(outcome.replace("_", " ").upper())}</span>'


def matrix_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    rows = d.get("configs") or []
    best = d.get("best") or {}
    sc = d.get("scenario") or {}
    sub = (
        f"model {d.get('model')} · SLO p{float(d.get('percentile') or 99):g} {fmt(d.get('slo_ms'))} ms · "
        f"{len(rows)} configuration(s) · {fmt(sc.get('duration_s'))} s per run"
    )
    out = [section_header("matrix", doc.title, "", sub)]
    out.append(
        cards(
            [
                ("best latency (low load)", best.get("latency"), ""),
                ("best peak under SLO", best.get("peak"), ""),
                ("best throughput", best.get("throughput"), ""),
            ]
        )
    )
    out.append(reasons_block(None, [], None, list(d.get("notes") or [])))
    out.append(_sizing_block(d.get("sizing")))
    trows, classes = [], []
    prov = show_provider(rows)
    for r in rows:
        ll = r.get("low_load") or {}
        mt = r.get("max_throughput") or {}
        status = "error" if r.get("error") else str((r.get("peak") or {}).get("status") or "–").replace("_", " ")
        trows.append(
            [
                r.get("label"),
                ll.get("p99_ms"),
                r.get("max_items_per_s"),
                r.get("max_throughput_users"),
                mt.get("p99_ms"),
                r.get("raw_items_per_s"),
                r.get("peak_rps"),
                r.get("peak_items_per_s"),
                r.get("p99_at_peak_ms"),
                status,
            ]
            + ([r.get("provider") or "cpu"] if prov else [])
        )
        classes.append("best" if r.get("label") in best.values() else "")
    out.append(
        "<h3>Configurations</h3>"
        + table(
            [
                "config",
                "p99 1 user ms",
                "max items/s",
                "users",
                "p99 @max ms",
                "raw items/s",
                "peak req/s",
                "peak items/s",
                "p99 @peak ms",
                "peak search",
            ]
            + (["provider"] if prov else []),
            trows,
            num_cols=set(range(1, 9)),
            row_classes=classes,
        )
        + '<p class="sub">config = b&lt;max_batch_size&gt;·i&lt;instances&gt;·d&lt;max_queue_delay_ms&gt;; '
        "green rows are the best for latency, peak or throughput; raw = in-process baseline at the same "
        "batch × instances.</p>"
    )
    why = [
        f"<li><strong>{esc(r.get('label'))}</strong>: {esc(r.get('error') or (r.get('peak') or {}).get('reason'))}</li>"
        for r in rows
        if r.get("error") or (r.get("peak") or {}).get("status") not in (None, "found")
    ]
    if why:
        out.append(
            '<div class="callout note"><strong>Peak search did not conclude for:</strong>'
            f'<ul class="reasons">{"".join(why)}</ul></div>'
        )
    base = d.get("baseline") or {}
    base_items = max((b.get("throughput_items_per_s") or 0 for b in base.get("results") or []), default=None) or (
        raw_limit or {}
    ).get("items_per_s")
    out.append(
        figure(
            plots_search.matrix_bars(rows, baseline_items_per_s=base_items, title=""),
            "matrix throughput",
            "Max throughput (closed loop, enough users to fill every batch) and the highest rate "
            "meeting the SLO (open loop), per configuration.",
            heading="Throughput per configuration",
        )
    )
    if base.get("results"):
        out.append("<h3>In-process baseline (no HTTP)</h3>" + bench_table(base))
    elif d.get("baseline_note"):
        out.append(f'<p class="sub">{esc(d["baseline_note"])}</p>')
    server = d.get("server") or {
        "model": d.get("model"),
        "models_dir": d.get("models_dir"),
        "configured_by": "INFERLOAD_OVERRIDES per configuration (see table)",
    }
    out.append(config_block(sc, server, d.get("machine")))
    return "".join(out)
