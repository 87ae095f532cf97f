"""`inferload compare A B`: the deltas between two runs, two sweeps, two peak searches or two tune documents (or a
peak / sweep / tune against another of them), and the answer: which is better, with bounds.

`compare_rows(a, b)` is pure (Doc in, rows out); `print_compare` renders a Rich table (metric, A, B, Δ, Δ%)
with improvements in green and regressions in red (lower latency / higher throughput is better), then the verdict
lines of loadgen.results.comparison (B better / worse / no significant difference, and by how much).
"""

from __future__ import annotations

from typing import Any

from loadgen.results.io import Doc
from loadgen.results.points import mean_realised_batch, summarize_point

HIGHER, LOWER = "higher", "lower"

RESULT_METRICS: list[tuple[str, Any, str | None]] = [
    ("achieved req/s", lambda r: r.get("achieved_rate_rps"), HIGHER),
    ("items/s", lambda r: r.get("items_per_s"), HIGHER),
    ("p50 ms", lambda r: (r.get("latency_ms") or {}).get("p50"), LOWER),
    ("p90 ms", lambda r: (r.get("latency_ms") or {}).get("p90"), LOWER),
    ("p95 ms", lambda r: (r.get("latency_ms") or {}).get("p95"), LOWER),
    ("p99 ms", lambda r: (r.get("latency_ms") or {}).get("p99"), LOWER),
    ("p99.9 ms", lambda r: (r.get("latency_ms") or {}).get("p999"), LOWER),
    ("max ms", lambda r: (r.get("latency_ms") or {}).get("max"), LOWER),
    ("mean ms", lambda r: (r.get("latency_ms") or {}).get("mean"), LOWER),
    ("completed", lambda r: r.get("completed"), None),
    ("failed", lambda r: r.get("failed"), LOWER),
    ("delayed fraction", lambda r: r.get("delayed_fraction"), LOWER),
    ("queue mean ms", lambda r: ((r.get("decomposition_ms") or {}).get("queue") or {}).get("mean"), LOWER),
    ("compute mean ms", lambda r: ((r.get("decomposition_ms") or {}).get("compute") or {}).get("mean"), LOWER),
    (
        "network+HTTP mean ms",
        lambda r: ((r.get("decomposition_ms") or {}).get("network_http") or {}).get("mean"),
        LOWER,
    ),
    ("mean server batch", lambda r: mean_realised_batch(r.get("batch_size") or {}), None),
    ("generator CPU max %", lambda r: (r.get("generator_cpu_percent") or {}).get("max"), None),
]


def _row(metric: str, a: Any, b: Any, better: str | None) -> dict:
    delta = pct = None
    verdict = None
    if (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        delta = b - a
        pct = None if a == 0 else 100.0 * delta / abs(a)
        if better and delta != 0:
            verdict = "better" if (delta > 0) == (better == HIGHER) else "worse"
    elif a != b:
        verdict = "changed"
    return {"metric": metric, "a": a, "b": b, "delta": delta, "delta_pct": pct, "verdict": verdict}


def _result_rows(a: dict, b: dict, prefix: str = "") -> list[dict]:
    rows = [
        _row(
            prefix + "verdict", "VALID" if a.get("valid") else "INVALID", "VALID" if b.get("valid") else "INVALID", None
        )
    ]
    for name, get, better in RESULT_METRICS:
        va, vb = get(a), get(b)
        if va is None and vb is None:
            continue
        rows.append(_row(prefix + name, va, vb, better))
    return rows


def _sweep_points(doc: Doc) -> list[dict]:
    out = []
    for i, p in enumerate(doc.data.get("points") or []):
        child = doc.children[i] if i < len(doc.children) else {}
        out.append(summarize_point(child, p.get("file"), i) if child else p)
    return out


def _key(p: dict) -> tuple[str, float] | None:
    if p.get("mode") == "closed" and p.get("users"):
        return ("users", float(p["users"]))
    if p.get("offered_rps"):
        return ("rps", float(p["offered_rps"]))
    return None


def _sweep_rows(a: Doc, b: Doc) -> list[dict]:
    pa, pb = _sweep_points(a), _sweep_points(b)
    peak_a = (a.data.get("peak") or {}).get("rate_rps")
    peak_b = (b.data.get("peak") or {}).get("rate_rps")
    rows = [
        _row("peak under SLO req/s", peak_a, peak_b, HIGHER),
        _row(
            "max achieved req/s",
            max((p.get("achieved_rps") or 0 for p in pa), default=None),
            max((p.get("achieved_rps") or 0 for p in pb), default=None),
            HIGHER,
        ),
        _row("points (valid)", sum(bool(p.get("valid")) for p in pa), sum(bool(p.get("valid")) for p in pb), None),
    ]
    kb = {_key(p): p for p in pb if _key(p)}
    for p in pa:
        k = _key(p)
        # match the same offered load (within 1%)
        q = kb.get(k) or next(
            (v for kk, v in kb.items() if k and kk[0] == k[0] and abs(kk[1] - k[1]) <= 0.01 * k[1]), None
        )
        if not k or q is None:
            continue
        at = f"@{k[1]:g} {'users' if k[0] == 'users' else 'req/s'}: "
        rows.append(_row(at + "achieved req/s", p.get("achieved_rps"), q.get("achieved_rps"), HIGHER))
        rows.append(_row(at + "p50 ms", p.get("p50_ms"), q.get("p50_ms"), LOWER))
        rows.append(_row(at + "p99 ms", p.get("p99_ms"), q.get("p99_ms"), LOWER))
        if not p.get("valid") or not q.get("valid"):
            rows.append(
                _row(
                    at + "verdict",
                    "VALID" if p.get("valid") else "INVALID",
                    "VALID" if q.get("valid") else "INVALID",
                    None,
                )
            )
    return rows


def _peak_value(doc: Doc) -> float | None:
    if doc.kind == "peak":
        return doc.data.get("peak_rps")
    if doc.kind == "sweep":
        return (doc.data.get("peak") or {}).get("rate_rps")
    if doc.kind == "tune":
        return (doc.data.get("recommended_pooled") or {}).get("peak_rps")
    return None


def _measured(doc: Doc) -> str | None:
    """Which server and how: target, protocol and payload of the document's scenario (no secrets: dumps redact)."""
    sc = doc.data.get("scenario") or doc.data.get("base_scenario") or {}
    if not sc.get("target"):
        return None
    proto = sc.get("protocol") or "oip"
    how = proto if proto != "oip" else f"oip/{sc.get('payload') or 'binary'}"
    return f"{sc['target']} ({how})"


def headline(a: Doc, b: Doc) -> str | None:
    """One sentence for two capacity documents: "B sustains X% more than A at p99 <= Y ms", with both statuses and
    the confidence each verdict was made with. None when the documents have no peak to compare."""
    if not ({a.kind, b.kind} <= {"sweep", "peak", "tune"}):
        return None
    pa, pb = _peak_value(a), _peak_value(b)

    def status(doc: Doc, p: float | None) -> str:
        d = doc.data
        st = d.get("status") or ("found" if p else "no passing point")
        conf = d.get("confidence") or (d.get("scenario") or {}).get("confidence")
        c = f", {conf:.0%} confidence per verdict" if isinstance(conf, (int, float)) else ""
        return f"{st}, {p:g} req/s{c}" if p else f"{st}{c}"

    pct = a.data.get("percentile") or b.data.get("percentile") or 99.0
    slo = a.data.get("slo_ms") or b.data.get("slo_ms")
    bound = f"p{pct:g} <= {slo:g} ms" if slo else "the SLO"
    both = f"(A: {status(a, pa)}; B: {status(b, pb)})"
    if not pa or not pb:
        return f"no ratio at {bound}: a side has no passing rate {both}"
    diff = (pb - pa) / pa * 100
    word = "more" if diff >= 0 else "less"
    return f"B sustains {abs(diff):.1f}% {word} than A at {bound} {both}"


def _tune_rows(a: dict, b: dict) -> list[dict]:
    pa, pb = a.get("recommended_pooled") or {}, b.get("recommended_pooled") or {}
    rec = lambda d: (d.get("recommended") or {}).get("name")  # noqa: E731
    return [
        _row("recommended", rec(a), rec(b), None),
        _row("peak under SLO req/s", pa.get("peak_rps"), pb.get("peak_rps"), HIGHER),
        _row("max throughput req/s", pa.get("max_throughput_rps"), pb.get("max_throughput_rps"), HIGHER),
        _row("p99 at low load ms", pa.get("p99_low_load_ms"), pb.get("p99_low_load_ms"), LOWER),
        _row("server RSS MB", pa.get("rss_mb"), pb.get("rss_mb"), LOWER),
        _row(
            "SLO ms",
            (a.get("constraints") or {}).get("slo_p99_ms"),
            (b.get("constraints") or {}).get("slo_p99_ms"),
            None,
        ),
        _row("configurations measured", len(a.get("configs") or []), len(b.get("configs") or []), None),
    ]


def compare_rows(a: Doc, b: Doc) -> list[dict]:
    if a.kind == "run" and b.kind == "run":
        return _result_rows(a.data, b.data)
    if a.kind == "sweep" and b.kind == "sweep":
        return _sweep_rows(a, b)
    if a.kind == b.kind == "tune":
        return _tune_rows(a.data, b.data)
    if {a.kind, b.kind} <= {"sweep", "peak", "tune"}:
        rows = [_row("peak under SLO req/s", _peak_value(a), _peak_value(b), HIGHER)]
        if a.kind == b.kind == "peak":
            rows.append(_row("status", a.data.get("status"), b.data.get("status"), None))
            rows.append(_row("probes", len(a.data.get("probes") or []), len(b.data.get("probes") or []), None))
            rows.append(_row("SLO ms", a.data.get("slo_ms"), b.data.get("slo_ms"), None))
        return rows
    raise ValueError(f"cannot compare a {a.kind} with a {b.kind}: give two run results, or two of sweep / peak / tune")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def print_compare(a: Doc, b: Doc, console=None) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = compare_rows(a, b)
    t = Table(title=f"A = {a.path}\nB = {b.path}", title_justify="left")
    t.add_column("metric")
    for col in ("A", "B", "Δ", "Δ%"):
        t.add_column(col, justify="right")
    for r in rows:
        style = {"better": "green", "worse": "red", "changed": "yellow"}.get(r["verdict"] or "", "")
        d = "–" if r["delta"] is None else ("+" if r["delta"] > 0 else "") + _fmt(r["delta"])
        dp = "–" if r["delta_pct"] is None else f"{r['delta_pct']:+.1f}%"
        t.add_row(
            r["metric"],
            _fmt(r["a"]),
            _fmt(r["b"]),
            f"[{style}]{d}[/]" if style else d,
            f"[{style}]{dp}[/]" if style else dp,
        )
    console.print(t)
    console.print("[dim]green = B better, red = B worse (lower latency, higher throughput are better)[/dim]")
    for side, doc in (("A", a), ("B", b)):
        where = _measured(doc)
        if where and {a.kind, b.kind} <= {"sweep", "peak", "tune"}:
            console.print(f"{side} measured {where}", markup=False, highlight=False)
    line = headline(a, b)
    if line:
        console.print(line, markup=False, highlight=False)
    for line in answer_lines(a, b):
        console.print(line, markup=False, highlight=False)
    return rows


def answer_lines(a: Doc, b: Doc) -> list[str]:
    """Which is better, with bounds (loadgen.results.comparison), as lines; why not, when it cannot say."""
    from loadgen.results.comparison import compare_documents, verdict_lines
    from loadgen.results.thresholds import ThresholdError

    try:
        return verdict_lines(compare_documents(a.data, b.data))
    except ThresholdError as e:
        return [f"no verdict: {e}"]
