"""HTML section of an `mlperf` document: LoadGen's verdict and answer, its percentiles, early stopping, the SUT."""

from __future__ import annotations

from loadgen.report.html_parts import badge, cards, esc, kv_table, reasons_block, section_header, table
from loadgen.report.terminal_mlperf import SCENARIO_NAMES, answer_line
from loadgen.results.io import Doc


def mlperf_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    lat = d.get("latency_ms") or {}
    sut = d.get("sut") or {}
    lag = sut.get("issue_lag_ms") or {}
    es = d.get("early_stopping") or {}
    name = SCENARIO_NAMES.get(d.get("scenario", ""), "?")
    sub = (
        f"MLPerf LoadGen {d.get('loadgen_version', '')} · {name} ({d.get('mode')}) · {d.get('model')} at "
        f"{(d.get('target') or {}).get('url', '?')} · started {d.get('started_at', '?')}"
    )
    out = [section_header("mlperf", doc.title, badge(d.get("valid")), sub)]
    out.append(f'<div class="callout {"ok" if d.get("valid") else "note"} answer">{esc(answer_line(d))}</div>')
    out.append(
        cards(
            [
                ("samples/s", d.get("samples_per_s"), ""),
                ("queries", d.get("queries"), ""),
                ("p50", lat.get("p50"), "ms"),
                ("p90", lat.get("p90"), "ms"),
                ("p99", lat.get("p99"), "ms"),
                ("early-stopping estimate", es.get("estimate_ms"), "ms"),
                ("SUT issue lag p99", lag.get("p99"), "ms"),
                ("SUT failures", sut.get("failed"), ""),
            ]
        )
    )
    names = [k for k in ("min", "mean", "p50", "p90", "p95", "p97", "p99", "p999", "max") if k in lat]
    rows = [["LoadGen latency (ms)", *[lat.get(k) for k in names]]]
    ql = d.get("query_latency_ms") or {}
    if ql:
        rows.append(["per query (ms)", *[ql.get(k) for k in names]])
    rows.append(["SUT issue lag (ms)", *[lag.get(k) for k in names]])
    out.append("<h3>Latency</h3>" + table(["", *names], rows, num_cols=set(range(1, len(names) + 1))))
    out.append(
        '<div class="sub">LoadGen times each sample from its scheduled issue instant to the SUT\'s completion; the '
        "SUT's issue lag (LoadGen's issue call to the request's send) is part of it.</div>"
    )
    if es.get("message"):
        out.append(f"<h3>Early stopping</h3><p>{esc(es['message'])}</p>")
    out.append(
        reasons_block(d.get("valid"), d.get("invalid_reasons") or [], d.get("warnings") or [], d.get("notes") or [])
    )
    out.append(
        f"<details><summary>Settings</summary>{kv_table(d.get('settings'))}{kv_table(d.get('effective'))}</details>"
    )
    return "".join(out)
