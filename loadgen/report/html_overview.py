"""The top of the HTML report: the answer (peak, sizing) and the overview of every input document."""

from __future__ import annotations

from typing import Any

from loadgen.report import plots
from loadgen.report.html_parts import esc, figure, fmt, points_of, table
from loadgen.results.io import Doc


def answer_block(docs: list[Doc]) -> str:
    """The answer users come for, at the top: each peak search's peak under the SLO and its sizing line."""
    items = []
    for d in docs:
        if d.kind != "peak":
            continue
        x = d.data
        pct, conf = float(x.get("percentile") or 99), float(x.get("confidence") or 0.99)
        if x.get("peak_rps") is not None:
            head = (
                f"<strong>{esc(x.get('scenario', {}).get('model', d.title))}</strong> sustains "
                f"<strong>{fmt(x['peak_rps'])} req/s</strong> at p{pct:g} &le; {fmt(x.get('slo_ms'))} ms "
                f"({conf:.0%} confidence; {esc(str(x.get('status')).replace('_', ' '))})"
            )
        else:
            head = (
                f"<strong>no peak</strong> for {esc(x.get('scenario', {}).get('model', d.title))} "
                f"({esc(str(x.get('status')).replace('_', ' '))}): {esc(x.get('reason'))}"
            )
        s = x.get("sizing") or {}
        size = (
            (
                f"<br><strong>{s['replicas']} replicas</strong> for {fmt(s.get('target_rps'))} req/s at p{pct:g} &le; "
                f"{fmt(x.get('slo_ms'))} ms ({s.get('headroom', 0):.0%} headroom"
                + (f", expected p99 ~{fmt(s['expected_p99_ms'])} ms" if s.get("expected_p99_ms") is not None else "")
                + ")"
            )
            if s.get("replicas")
            else ""
        )
        adv = f'<br><span class="muted">{esc(x.get("advice"))}</span>' if x.get("advice") else ""
        cls = "ok" if x.get("peak_rps") is not None and x.get("status") == "found" else "note"
        items.append(f'<div class="callout {cls} answer">{head}{size}{adv}</div>')
    return "".join(items)


def overview_section(docs: list[Doc], raw_limit: dict | None) -> str:
    answer = answer_block(docs)
    if len(docs) < 2:
        return f'<section class="doc" id="overview"><h2>Answer</h2>{answer}</section>' if answer else ""
    curves: list[dict[str, Any]] = []
    rows = []
    for d in docs:
        if d.kind == "sweep":
            curves.append({"label": d.title, "points": points_of(d)})
            rows.append([d.kind, d.title, (d.data.get("peak") or {}).get("rate_rps"), len(d.data.get("points") or [])])
        elif d.kind == "peak":
            curves.append({"label": d.title, "points": [p.get("info") or {} for p in d.data.get("probes") or []]})
            rows.append([d.kind, d.title, d.data.get("peak_rps"), len(d.data.get("probes") or [])])
        elif d.kind == "run":
            rows.append([d.kind, d.title, None, 1])
        else:
            rows.append([d.kind, d.title, None, None])
    out = [
        '<section class="doc" id="overview"><h2>Overview</h2>',
        answer,
        table(["kind", "name", "peak under SLO (req/s)", "runs"], rows, num_cols={2, 3}),
    ]
    if len(curves) > 1:
        out.append(
            figure(
                plots.latency_throughput(curves, title=""),
                "latency-throughput overlay",
                "All curves on one chart (p50 dotted, p95 dashed, p99 solid).",
                heading="Latency vs throughput: all inputs",
            )
        )
    out.append("</section>")
    return "".join(out)
