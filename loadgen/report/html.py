"""The self-contained HTML report: one file, no network (plots are inline base64 PNGs, CSS is inline, no JS).

`render_html(docs)` takes loaded documents (loadgen.results.io) — run results, sweeps, peak searches,
matrices, bench baselines, in any mix — and returns the page. Per-kind sections live in html_sections.py.
"""
from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from loadgen.results.analysis import reason_list
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


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def fmt(v: Any, digits: int = 4) -> str:
    """Human formatting: thousands separators, sensible decimals, '–' for missing."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "–"
        a = abs(v)
        if a >= 1 and v.is_integer():
            return f"{int(v):,}"
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.2f}"
        if a == 0:
            return "0"
        if a >= 0.001:
            return f"{v:.3g}"
        return f"{v:.2e}"
    return str(v)


def badge(valid: bool | None) -> str:
    if valid is None:
        return '<span class="badge warn">NO VERDICT</span>'
    return '<span class="badge valid">VALID</span>' if valid else '<span class="badge invalid">INVALID</span>'


def card(label: str, value: Any, unit: str = "") -> str:
    u = f'<span class="unit">{esc(unit)}</span>' if unit and value is not None else ""
    return f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{esc(fmt(value))}{u}</div></div>'


def cards(items: Iterable[tuple[str, Any, str]]) -> str:
    return '<div class="cards">' + "".join(card(*i) for i in items) + "</div>"


def figure(b64: str | None, alt: str, caption: str = "", heading: str | None = None) -> str:
    if not b64:
        return ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    head = f"<h3>{esc(heading)}</h3>" if heading else ""
    return (f'{head}<figure><img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>')


def table(headers: list[str], rows: list[list[Any]], *, num_cols: set[int] | None = None,
          raw_cols: set[int] | None = None, row_classes: list[str] | None = None) -> str:
    num_cols, raw_cols = num_cols or set(), raw_cols or set()
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in num_cols else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for ri, r in enumerate(rows):
        cls = f' class="{row_classes[ri]}"' if row_classes and row_classes[ri] else ""
        cells = []
        for i, v in enumerate(r):
            content = v if i in raw_cols else esc(fmt(v))
            cells.append(f'<td class="num">{content}</td>' if i in num_cols else f"<td>{content}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        for i, v in enumerate(d):
            out.extend(flatten(v, f"{prefix}[{i}]"))
    else:
        out.append((prefix, d))
    return out


def kv_table(d: dict | None) -> str:
    if not d:
        return '<p class="sub">not recorded</p>'
    rows = "".join(f"<tr><td>{esc(k).replace('.', '.<wbr>')}</td>"
                   f"<td>{esc(v if not isinstance(v, list) else ', '.join(map(str, v)))}</td></tr>"
                   for k, v in flatten(d))
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def config_block(scenario: dict | None, server: dict | None, machine: dict | None) -> str:
    if not (scenario or server or machine):
        return ""
    return ('<h3>Configuration</h3><div class="cfg">'
            f"<div><h4>Scenario</h4>{kv_table(scenario)}</div>"
            f"<div><h4>Machine</h4>{kv_table(machine)}</div>"
            f'<div class="wide"><h4>Server</h4>{kv_table(server)}</div></div>')


def _reason_item(r: Any) -> str:
    r = reason_list([r])[0]
    code = "" if r["code"] == "note" else f' <code class="muted">{esc(r["code"])}</code>'
    return f"<li>{esc(r['message'])}{code}</li>"


def reasons_block(valid: bool | None, reasons: list[Any], warnings: list[Any] | None = None,
                  notes: list[str] | None = None) -> str:
    """reasons / warnings: {code, message} dicts (schema 2) or strings (schema 1)."""
    out = ""
    if valid is False:
        items = "".join(_reason_item(r) for r in reasons) or "<li>no reason recorded</li>"
        out += f'<div class="callout"><strong>INVALID because:</strong><ul class="reasons">{items}</ul></div>'
    if warnings:
        out += ('<div class="callout note"><strong>Warnings</strong><ul class="reasons">'
                + "".join(_reason_item(w) for w in warnings) + "</ul></div>")
    if notes:
        out += ('<div class="callout note"><strong>Notes</strong><ul class="reasons">'
                + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></div>")
    return out


def render_html(docs: list[Doc], *, title: str | None = None) -> str:
    from loadgen.report import html_sections as S

    raw_limit = S.global_raw_limit(docs)
    sections = []
    for i, d in enumerate(docs):
        render = {"result": S.result_section, "sweep": S.sweep_section, "peak": S.peak_section,
                  "matrix": S.matrix_section, "bench": S.bench_section, "overload": S.overload_section}[d.kind]
        sections.append(f'<section class="doc" id="doc-{i}">{render(d, raw_limit)}</section>')
    overview = S.overview_section(docs, raw_limit)
    toc = "".join(f'<a href="#doc-{i}">{esc(d.kind)}: {esc(d.title)}</a>' for i, d in enumerate(docs))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = title or "inferload report"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head>
<body><main>
<header class="page"><h1>{esc(title)}</h1>
<div class="sub">Generated {esc(now)} from {len(docs)} file(s): {esc(', '.join(str(d.path) for d in docs))}</div>
<nav class="toc">{toc}</nav></header>
{overview}
{''.join(sections)}
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
