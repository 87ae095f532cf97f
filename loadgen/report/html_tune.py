"""The HTML section of a tune document (`inferload tune`): the recommendation and its config.toml, the Pareto
frontier of p99 at low load against throughput (plot), and every configuration measured. Re-exported by
html_sections with the other per-kind sections (kept apart so that module stays under its size budget)."""

from __future__ import annotations

from loadgen.report import plots_search
from loadgen.report.html_parts import cards, config_block, esc, figure, fmt, reasons_block, show_provider, table
from loadgen.results.io import Doc


def _answer(d: dict) -> str:
    rec = (d.get("recommended") or {}).get("name")
    if not rec:
        return (
            '<div class="callout answer"><strong>No configuration met every constraint</strong>: nothing '
            "recommended. The table says what each one missed.</div>"
        )
    p = d.get("recommended_pooled") or {}
    c = d.get("constraints") or {}
    slo = f" at p99 &le; {fmt(c.get('slo_p99_ms'))} ms" if c.get("slo_p99_ms") is not None else ""
    where = (
        f" — written to <code>{esc(d['config_toml_path'])}</code> beside tune.json" if d.get("config_toml_path") else ""
    )
    return (
        f'<div class="callout ok answer">Deploy <strong>{esc(rec)}</strong>: <strong>{fmt(p.get("peak_rps"))} '
        f"req/s</strong>{slo}, max {fmt(p.get('max_throughput_rps'))} req/s, p99 at low load "
        f"{fmt(p.get('p99_low_load_ms'))} ms{where}</div>"
    )


def _verdict(r: dict, rec: str | None, pareto: set[str]) -> str:
    if r["name"] == rec:
        return '<span class="badge valid">RECOMMENDED</span>'
    if not r.get("feasible"):
        return '<span class="badge invalid">INFEASIBLE</span> ' + esc("; ".join(r.get("violations") or []))
    return '<span class="badge warn">PARETO</span>' if r["name"] in pareto else "feasible"


def _configs_table(d: dict) -> str:
    rec = (d.get("recommended") or {}).get("name")
    pareto = set(d.get("pareto") or [])
    order = {n: i for i, n in enumerate(d.get("ranking") or [])}
    rows, classes = [], []
    prov = show_provider(d.get("configs") or [])
    for r in sorted(d.get("configs") or [], key=lambda r: order.get(r["name"], len(order))):
        p = r.get("pooled") or {}
        pref = ",".join(str(x) for x in r.get("preferred_batch_sizes") or []) or "–"
        rows.append(
            [
                r["name"],
                r.get("max_batch_size"),
                f"{r.get('instances')} × {r.get('intra_op_threads')}",
                r.get("max_queue_delay_ms"),
                pref,
                len(r.get("measurements") or []),
                p.get("peak_rps"),
                p.get("max_throughput_rps"),
                p.get("raw_rps"),
                p.get("p99_low_load_ms"),
                p.get("p99_at_peak_ms"),
                p.get("rss_mb"),
                r.get("score_vs_start"),
                _verdict(r, rec, pareto),
            ]
            + ([r.get("provider") or "cpu"] if prov else [])
        )
        classes.append("best" if r["name"] == rec else "")
    return table(
        [
            "config",
            "max batch",
            "instances × threads",
            "delay ms",
            "preferred",
            "runs",
            "peak req/s",
            "max req/s",
            "raw req/s",
            "p99 low load ms",
            "p99 @peak ms",
            "RSS MB",
            "score vs start",
            "verdict",
        ]
        + (["provider"] if prov else []),
        rows,
        num_cols=set(range(1, 13)) - {2, 4},
        raw_cols={13},
        row_classes=classes,
    )


def _steps(d: dict) -> str:
    steps = d.get("steps") or []
    if not steps:
        return ""
    rows = [
        [
            i + 1,
            s.get("dimension"),
            s.get("config"),
            None if s.get("gain") is None else 100 * s["gain"],
            "accepted" if s.get("accepted") else "–",
        ]
        for i, s in enumerate(steps)
    ]
    return (
        "<details><summary>Quick search: every step of the coordinate ascent</summary>"
        + table(["#", "dimension", "candidate", "gain over the best so far %", ""], rows, num_cols={0, 3})
        + "</details>"
    )


def _baseline(d: dict) -> str:
    b = d.get("baseline") or {}
    if not b.get("results"):
        return f'<p class="sub">{esc(d.get("baseline_note"))}</p>' if d.get("baseline_note") else ""
    prov = show_provider(b["results"])
    rows = [
        [
            r.get("batch_size"),
            r.get("instances"),
            r.get("threads_per_instance"),
            r.get("throughput_items_per_s"),
            (r.get("latency_ms") or {}).get("p50"),
        ]
        + ([r.get("provider") or "cpu"] if prov else [])
        for r in b["results"]
    ]
    return "<h3>In-process limit (no HTTP) at each batch × instances</h3>" + table(
        ["batch", "instances", "threads/inst", "items/s", "p50 ms"] + (["provider"] if prov else []),
        rows,
        num_cols=set(range(5)),
    )


def tune_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    c, o = d.get("constraints") or {}, d.get("objective") or {}
    extra = []
    if c.get("min_throughput_rps") is not None:
        extra.append(f"min {fmt(c['min_throughput_rps'])} req/s")
    if c.get("max_memory_mb") is not None:
        extra.append(f"RSS ≤ {fmt(c['max_memory_mb'])} MB")
    sub = (
        f"model {d.get('model')} · {d.get('method')} search · objective {o.get('name')} · SLO p99 "
        f"{fmt(c.get('slo_p99_ms'))} ms"
        + "".join(f" · {x}" for x in extra)
        + f" · {d.get('configs_measured', len(d.get('configs') or []))} of {fmt(d.get('grid_size'))} configurations"
    )
    out = [f'<h2><span class="kind">tune</span>{esc(doc.title)}</h2><div class="sub">{esc(sub)}</div>', _answer(d)]
    if d.get("sizing"):
        out.append(f'<div class="callout ok"><strong>Sizing:</strong> {esc(d["sizing"].get("note"))}</div>')
    p = d.get("recommended_pooled") or {}
    out.append(
        cards(
            [
                ("configurations measured", d.get("configs_measured", len(d.get("configs") or [])), ""),
                ("in the grid", d.get("grid_size"), ""),
                ("measurements", d.get("measure_calls"), ""),
                ("from checkpoint", d.get("reused_from_checkpoint"), ""),
                ("recommended peak", p.get("peak_rps"), "req/s"),
                ("server RSS", p.get("rss_mb"), "MB"),
            ]
        )
    )
    img = plots_search.pareto(
        d.get("configs") or [], frontier=d.get("pareto") or [], recommended=(d.get("recommended") or {}).get("name")
    )
    out.append(
        '<div id="tune-pareto">'
        + figure(
            img,
            "Pareto frontier: p99 at low load vs throughput",
            "Each configuration measured (pooled over its measurements); the line joins those no other beats on both "
            "p99 at low load and throughput; hollow: a constraint not met; star: the recommendation.",
            heading="Pareto frontier: latency vs throughput",
        )
        + "</div>"
    )
    out.append(
        "<h3>Configurations (best first)</h3>"
        + _configs_table(d)
        + f'<p class="sub">{esc(o.get("formula"))}; raw = the in-process limit at the same batch × '
        "instances, per request.</p>"
    )
    if d.get("config_toml"):
        out.append(f"<h3>Recommended config.toml</h3><pre>{esc(d['config_toml'])}</pre>")
    out.append(_steps(d))
    out.append(_baseline(d))
    out.append(reasons_block(None, [], None, list(d.get("notes") or [])))
    out.append(config_block(d.get("scenario"), {"model": d.get("model"), "space": d.get("space")}, d.get("machine")))
    return "".join(out)
