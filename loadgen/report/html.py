"""The self-contained HTML report: one file, no network (plots are inline base64 PNGs, CSS is inline, no JS).

`render_html(docs)` takes loaded documents (loadgen.results.io) — run results, sweeps, peak searches,
matrices, bench baselines, in any mix — and returns the page. Per-kind sections live in html_sections.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from loadgen.report import html_sections as S
from loadgen.report.html_mlperf import mlperf_section
from loadgen.report.html_parts import esc
from loadgen.results.io import Doc

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --ok:#1e7b45; --okbg:#e3f6ea;
        --bad:#b42318; --badbg:#fde8e7; --warn:#8d5b00; --warnbg:#fff4d6; --accent:#2f80ed; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 28px 64px; }
header.page { margin-bottom: 18px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 21px; margin: 0 0 6px; }
h3 { font-size: 16px; margin: 22px 0 8px; color: var(--ink); }
.sub { color: var(--muted); font-size: 13.5px; }
section.doc { background:#fff; border:1px solid var(--line); border-radius:10px; padding:22px 26px;
              margin: 20px 0; box-shadow: 0 1px 2px rgba(31,41,51,.05); }
.kind { display:inline-block; font-size:11.5px; font-weight:700; text-transform:uppercase; letter-spacing:.06em;
        color: var(--accent); background:#e8f1fd; border-radius:4px; padding:1px 7px; margin-right:8px;
        vertical-align: 3px; }
.badge { display:inline-block; font-weight:700; font-size:12.5px; border-radius:999px; padding:2px 10px;
         letter-spacing:.03em; white-space: nowrap; }
.badge.valid { color:var(--ok); background:var(--okbg); border:1px solid #a8dfbe; }
.badge.invalid { color:var(--bad); background:var(--badbg); border:1px solid #f5b5b0; }
.badge.warn { color:var(--warn); background:var(--warnbg); border:1px solid #f3d58a; }
.cards { display:grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap:12px; margin:14px 0 6px; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 14px; background:#fbfcfd; }
.card .label { color:var(--muted); font-size:12.5px; }
.card .value { font-size:21px; font-weight:650; font-variant-numeric: tabular-nums; }
.card .unit { font-size:13px; color:var(--muted); font-weight:400; margin-left:3px; }
ul.reasons { margin:8px 0; padding-left: 20px; }
ul.reasons li { margin: 2px 0; }
.callout { border-left: 4px solid var(--bad); background: var(--badbg); padding: 8px 14px; border-radius: 4px;
           margin: 10px 0; }
.callout.note { border-left-color: var(--accent); background: #eef5fe; }
.callout.ok { border-left-color: var(--ok); background: var(--okbg); }
.callout.answer { font-size: 16px; }
.muted { color: var(--muted); }
figure { margin: 14px 0 6px; }
figure img { width: 100%; max-width: 1060px; height: auto; display:block; border:1px solid var(--line); border-radius:6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 8px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; background: #f8fafc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { background: #f0faf3; }
table.kv { table-layout: fixed; }
table.kv td { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; overflow-wrap: anywhere; }
table.kv td:first-child { color: var(--muted); width: 45%; }
.cfg { display:grid; grid-template-columns: 1fr 1fr; gap: 4px 24px; }
.cfg .wide { grid-column: 1 / -1; }
h4 { margin: 10px 0 4px; font-size: 14px; }
details { margin: 8px 0; border:1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
details > summary { cursor: pointer; font-weight: 600; }
nav.toc { font-size: 14px; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 30px; }
"""


def render_html(docs: list[Doc], *, title: str | None = None) -> str:

    raw_limit = S.global_raw_limit(docs)
    sections = []
    for i, d in enumerate(docs):
        render = {
            "run": S.result_section,
            "sweep": S.sweep_section,
            "peak": S.peak_section,
            "matrix": S.matrix_section,
            "bench": S.bench_section,
            "overload": S.overload_section,
            "tune": S.tune_section,
            "mlperf": mlperf_section,
        }[d.kind]
        sections.append(f'<section class="doc" id="doc-{i}">{render(d, raw_limit)}</section>')
    overview = S.overview_section(docs, raw_limit)
    toc = "".join(f'<a href="#doc-{i}">{esc(d.kind)}: {esc(d.title)}</a>' for i, d in enumerate(docs))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = title or "inferload report"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head>
<body><main>
<header class="page"><h1>{esc(title)}</h1>
<div class="sub">Generated {esc(now)} from {len(docs)} file(s): {esc(", ".join(str(d.path) for d in docs))}</div>
<nav class="toc">{toc}</nav></header>
{overview}
{"".join(sections)}
<footer>Latency in open-loop runs is measured from each request's <em>scheduled</em> instant (no coordinated
omission), so a late send can only make a result pessimistic. A run is INVALID only for a reason that can change its
answer (too short, nothing succeeded, the schedule not carried out, lateness that would change the verdict, a
saturated generator, client-side drops); every reason is listed with its code. Percentile bounds and SLO verdicts
are order-statistic (binomial) confidence statements.</footer>
</main></body></html>
"""


def write_html(docs: list[Doc], path: Path, *, title: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(docs, title=title), encoding="utf-8")
    return path
