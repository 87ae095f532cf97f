"""HTML sections of the capacity documents: the in-process baseline (bench) and the overload steps."""

from __future__ import annotations

from loadgen.report import plots_search
from loadgen.report.html_parts import (
    badge,
    cards,
    config_block,
    figure,
    fmt,
    reasons_block,
    section_header,
    show_provider,
    table,
)
from loadgen.results.io import Doc
from loadgen.results.points import raw_limit_from_bench


def bench_table(b: dict) -> str:
    prov = show_provider(b.get("results") or [])
    rows = [
        [
            r.get("batch_size"),
            r.get("instances"),
            r.get("threads_per_instance"),
            r.get("throughput_items_per_s"),
            (r.get("latency_ms") or {}).get("p50"),
            (r.get("latency_ms") or {}).get("p99"),
        ]
        + ([r.get("provider") or "cpu"] if prov else [])
        for r in b.get("results") or []
    ]
    headers = ["batch", "instances", "threads/inst", "items/s", "p50 ms", "p99 ms"] + (["provider"] if prov else [])
    return table(headers, rows, num_cols=set(range(6)))


def bench_section(doc: Doc, raw_limit: dict | None) -> str:
    b = doc.data
    out = [section_header("bench", doc.title, "", f"in-process ONNX Runtime baseline · model {b.get('model', '?')}")]
    lim = raw_limit_from_bench(b, 1)
    if lim:
        out.append(
            cards(
                [
                    ("raw limit", lim["items_per_s"], "items/s"),
                    ("at batch", lim.get("batch_size"), ""),
                    ("instances", lim.get("instances"), ""),
                ]
            )
        )
    out.append(bench_table(b))
    out.append(config_block(None, None, b.get("machine")))
    return "".join(out)


def overload_section(doc: Doc, raw_limit: dict | None) -> str:
    d = doc.data
    sc = d.get("scenario") or {}
    steps = d.get("steps") or []
    cap = float(d.get("capacity_rps") or 0)
    sub = (
        f"{sc.get('model', '?')} at {sc.get('target', '?')} · capacity {fmt(cap)} req/s (closed-loop probe) · "
        f"{fmt(sc.get('duration_s'))} s per step"
    )
    out = [section_header("overload", doc.title, "", sub)]
    worst = steps[-1] if steps else {}
    out.append(
        cards(
            [
                ("capacity", cap, "req/s"),
                (f"goodput at {fmt(worst.get('multiple'))}x", worst.get("goodput_rps"), "req/s"),
                ("of capacity", None if worst.get("goodput_share") is None else 100 * worst["goodput_share"], "%"),
                ("refusal p99 (server)", (worst.get("refusal_server_ms") or {}).get("p99"), "ms"),
                ("RSS growth", max((s.get("rss_growth_mb") or 0 for s in steps), default=None), "MB"),
            ]
        )
    )
    out.append(
        figure(
            plots_search.overload_goodput(steps, cap),
            "goodput under overload",
            "Successes per second (and within the SLO) and refusals against offered load.",
            heading="Goodput under overload",
        )
    )
    rows = []
    for s in steps:
        rows.append(
            [
                f"{fmt(s.get('multiple'))}x",
                s.get("offered_rps"),
                s.get("goodput_rps"),
                None if s.get("goodput_share") is None else 100 * s["goodput_share"],
                s.get("goodput_slo_rps"),
                s.get("refused_rps"),
                s.get("timeout_rps"),
                (s.get("refusal_server_ms") or {}).get("p99"),
                (s.get("refusal_client_ms") or {}).get("p99"),
                s.get("p99_ms"),
                f"{fmt(s.get('queue_depth_max'))} / {fmt(s.get('queue_cap'))}",
                f"{fmt(s.get('inflight_max'))} / {fmt(s.get('admission_limit'))}",
                s.get("rss_growth_mb"),
                badge(s.get("valid")),
            ]
        )
    out.append(
        "<h3>Steps</h3>"
        + table(
            [
                "step",
                "offered req/s",
                "goodput req/s",
                "% of capacity",
                "within SLO req/s",
                "refused/s",
                "504/s",
                "refusal p99 ms (server)",
                "refusal p99 ms (client)",
                "p99 ms (successes)",
                "queue max / cap",
                "admitted max / limit",
                "RSS growth MB",
                "run",
            ],
            rows,
            num_cols=set(range(1, 13)),
            raw_cols={13},
        )
    )
    srv = d.get("server_metrics") or {}
    seen = [f"server metrics: {srv['family']} ({srv.get('url')})"] if srv.get("family") else []
    unseen = [f"not seen in the server's metrics: {n}" for n in srv.get("notes") or []]
    out.append(reasons_block(None, [], None, [d.get("method") or "", *seen, *unseen]))
    return "".join(out)
