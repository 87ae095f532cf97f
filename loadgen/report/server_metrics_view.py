"""A run's `server_metrics` block (loadgen.results.server_metrics) as a few lines, for the terminal and the HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgen.results.server_metrics import unavailable_lines

_SHOWN = (
    ("queue_ms_mean", "queue", "ms"),
    ("compute_ms_mean", "compute", "ms"),
    ("preprocess_ms_mean", "preprocess", "ms"),
    ("request_ms_mean", "request", "ms"),
    ("batch_size_mean", "batch", "items"),
    ("request_rate_rps", "rate", "req/s"),
    ("rss_mb", "RSS", "MB"),
)


def summary_lines(section: Mapping[str, Any] | None) -> list[str]:
    """A run's `server_metrics` block as a few lines for the terminal and the HTML report: what the server's own
    metrics said over the window (labelled as window averages), and what it did not export."""
    if not section:
        return []
    fam = section.get("family") or "unknown"
    head = f"server metrics ({fam}, {section.get('url')})"
    if section.get("error") and not section.get("figures"):
        return [f"{head}: {section['error']}"]
    figs = section.get("figures") or {}
    shown = [f"{label} {figs[k]:g} {unit}" for k, label, unit in _SHOWN if isinstance(figs.get(k), (int, float))]
    window_s = section.get("window_s")
    span = f" over {window_s:g} s" if isinstance(window_s, (int, float)) else ""
    lines = [f"{head}, window averages{span}, not per request: " + (", ".join(shown) or "no figures")]
    lines += [f"  {x}" for x in unavailable_lines(list(section.get("unavailable") or []), section.get("reasons") or {})]
    return lines
