"""HTML building blocks of the report (escaping, number formatting, cards, tables, figures, reason lists).
Pure string functions: html.py assembles the page, html_sections.py the per-kind sections.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

from loadgen.results.io import Doc
from loadgen.results.points import raw_limit_from_bench, summarize_point
from loadgen.results.validity import reason_list


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
    return f'{head}<figure><img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def show_provider(rows: list[dict]) -> bool:
    """A provider column is shown when a document's rows ran on anything but ONNX Runtime's CPU provider alone."""
    return {r.get("provider") or "cpu" for r in rows} != {"cpu"}


def table(
    headers: list[str],
    rows: list[list[Any]],
    *,
    num_cols: set[int] | None = None,
    raw_cols: set[int] | None = None,
    row_classes: list[str] | None = None,
) -> str:
    num_cols, raw_cols = num_cols or set(), raw_cols or set()
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if i in num_cols else f"<th>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for ri, r in enumerate(rows):
        cls = f' class="{row_classes[ri]}"' if row_classes and row_classes[ri] else ""
        cells = []
        for i, v in enumerate(r):
            content = v if i in raw_cols else esc(fmt(v))
            cells.append(f'<td class="num">{content}</td>' if i in num_cols else f"<td>{content}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


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
    rows = "".join(
        f"<tr><td>{esc(k).replace('.', '.<wbr>')}</td>"
        f"<td>{esc(v if not isinstance(v, list) else ', '.join(map(str, v)))}</td></tr>"
        for k, v in flatten(d)
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def config_block(scenario: dict | None, server: dict | None, machine: dict | None) -> str:
    if not (scenario or server or machine):
        return ""
    return (
        '<h3>Configuration</h3><div class="cfg">'
        f"<div><h4>Scenario</h4>{kv_table(scenario)}</div>"
        f"<div><h4>Machine</h4>{kv_table(machine)}</div>"
        f'<div class="wide"><h4>Server</h4>{kv_table(server)}</div></div>'
    )


def _reason_item(r: Any) -> str:
    r = reason_list([r])[0]
    code = "" if r["code"] == "note" else f' <code class="muted">{esc(r["code"])}</code>'
    return f"<li>{esc(r['message'])}{code}</li>"


def reasons_block(
    valid: bool | None, reasons: list[Any], warnings: list[Any] | None = None, notes: list[str] | None = None
) -> str:
    """reasons / warnings: {code, message} dicts (schema 2) or strings (schema 1)."""
    out = ""
    if valid is False:
        items = "".join(_reason_item(r) for r in reasons) or "<li>no reason recorded</li>"
        out += f'<div class="callout"><strong>INVALID because:</strong><ul class="reasons">{items}</ul></div>'
    if warnings:
        out += (
            '<div class="callout note"><strong>Warnings</strong><ul class="reasons">'
            + "".join(_reason_item(w) for w in warnings)
            + "</ul></div>"
        )
    if notes:
        out += (
            '<div class="callout note"><strong>Notes</strong><ul class="reasons">'
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul></div>"
        )
    return out


def section_header(kind: str, title: str, verdict: str, sub: str) -> str:
    return f'<h2><span class="kind">{esc(kind)}</span>{esc(title)} {verdict}</h2><div class="sub">{esc(sub)}</div>'


def points_of(doc: Doc) -> list[dict]:
    rows = []
    for i, p in enumerate(doc.data.get("points") or []):
        res = doc.children[i] if i < len(doc.children) else {}
        rows.append(summarize_point(res, p.get("file"), i) if res else p)
    return rows


def global_raw_limit(docs: list[Doc]) -> dict | None:
    """The in-process limit from any bench file given to the report (items/s; converted per document)."""
    limits = [raw_limit_from_bench(d.data, 1) for d in docs if d.kind == "bench"]
    limits = [lim for lim in limits if lim]
    return max(limits, key=lambda lim: lim["items_per_s"]) if limits else None


def _raw_rps(doc_limit: dict | None, global_limit: dict | None, items_per_request: int) -> float | None:
    if doc_limit and doc_limit.get("rps"):
        return doc_limit["rps"]
    if global_limit:
        return global_limit["items_per_s"] / max(1, items_per_request)
    return None


def _sizing_block(sizing: dict | None) -> str:
    if not sizing:
        return ""
    return f'<div class="callout ok"><strong>Sizing:</strong> {esc(sizing.get("note"))}</div>'
