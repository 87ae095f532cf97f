"""Matplotlib figures for the HTML report, returned as base64 PNG strings (Agg backend; no display, no network).

Every function takes plain dicts (result / summary rows) and returns `str` (base64 PNG) or None when there is
nothing to draw.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

INK = "#1f2933"
GRID = "#e4e7eb"
P50, P95, P99 = "#2f80ed", "#f2994a", "#d64545"
OFFERED, ACHIEVED, ERR = "#9aa5b1", "#2f80ed", "#d64545"
SLO_C, PEAK_C, RAW_C = "#d64545", "#27ae60", "#52606d"
STACK = {
    "client_lag": "#9aa5b1",
    "network_http": "#56ccf2",
    "body_read": "#a0d995",
    "queue": "#f2c94c",
    "preprocess": "#bb6bd9",
    "compute": "#2f80ed",
}
STACK_LABEL = {
    "client_lag": "client lag",
    "network_http": "network + HTTP",
    "body_read": "body read",
    "queue": "server queue",
    "preprocess": "preprocess",
    "compute": "compute",
}
SERIES = ["#2f80ed", "#f2994a", "#27ae60", "#d64545", "#9b51e0", "#56ccf2", "#f2c94c", "#52606d", "#eb5757"]

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.labelcolor": INK,
        "axes.edgecolor": "#9aa5b1",
        "axes.grid": True,
        "grid.color": GRID,
        "grid.linewidth": 0.8,
        "xtick.color": INK,
        "ytick.color": INK,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.dpi": 100,
        "savefig.dpi": 110,
    }
)


def to_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _maybe_log_y(ax, values: Sequence[float]) -> None:
    vals = [v for v in values if v and v > 0]
    if vals and max(vals) / min(vals) > 30:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def _marker(ax: Any, x: float, label: str, colour: str, *, ls: str, bold: bool) -> None:
    """A vertical line at rate `x`, labelled along its top (the peak and the raw limit on the curves)."""
    ax.axvline(x, color=colour, ls=ls, lw=1.6, zorder=2)
    ax.annotate(
        label,
        xy=(x, 0.98),
        xycoords=("data", "axes fraction"),
        xytext=(-4, 0),
        textcoords="offset points",
        color=colour,
        fontsize=9,
        fontweight="bold" if bold else "normal",
        ha="right",
        va="top",
        rotation=90,
    )


def latency_throughput(
    curves: list[dict],
    *,
    slo_ms: float | None = None,
    peak_rps: float | None = None,
    raw_limit_rps: float | None = None,
    title: str = "Latency vs throughput",
) -> str | None:
    """curves: [{"label": str, "points": [summary rows]}]. p50/p95/p99 vs achieved rate; hollow = INVALID."""
    curves = [c for c in curves if any(_num(p.get("achieved_rps")) for p in c["points"])]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 5.0))
    allv: list[float] = []
    many = len(curves) > 1
    for ci, c in enumerate(curves):
        pts = sorted(
            (p for p in c["points"] if _num(p.get("achieved_rps")) is not None), key=lambda p: p["achieved_rps"]
        )
        xs = [p["achieved_rps"] for p in pts]
        for key, color, style in (("p50_ms", P50, "-"), ("p95_ms", P95, "--"), ("p99_ms", P99, "-")):
            ys = [_num(p.get(key)) for p in pts]
            if not any(y is not None for y in ys):
                continue
            col = SERIES[ci % len(SERIES)] if many else color
            ls = {"p50_ms": ":", "p95_ms": "--", "p99_ms": "-"}[key] if many else style
            lab = f"{c['label']} {key[:-3]}" if many else key[:-3]
            ax.plot(
                xs,
                [y if y is not None else math.nan for y in ys],
                ls,
                color=col,
                lw=2 if key == "p99_ms" else 1.4,
                label=lab,
                zorder=3,
            )
            for x, y, p in zip(xs, ys, pts):
                if y is None:
                    continue
                allv.append(y)
                ax.plot([x], [y], "o", ms=6, zorder=4, color=col, mfc=col if p.get("valid") else "white", mew=1.6)
    if slo_ms:
        ax.axhline(slo_ms, color=SLO_C, ls="--", lw=1.3, zorder=2)
        ax.annotate(
            f"SLO {slo_ms:g} ms",
            xy=(0.005, slo_ms),
            xycoords=("axes fraction", "data"),
            xytext=(2, 3),
            textcoords="offset points",
            color=SLO_C,
            fontsize=9,
            fontweight="bold",
        )
        allv.append(slo_ms)
    if peak_rps:
        _marker(ax, peak_rps, f"peak {peak_rps:.4g} req/s", PEAK_C, ls="-", bold=True)
    if raw_limit_rps:
        _marker(ax, raw_limit_rps, f"raw in-process limit {raw_limit_rps:.4g} req/s", RAW_C, ls=":", bold=False)
    _maybe_log_y(ax, allv)
    ax.set_xlim(left=0)
    ax.set_xlabel("achieved throughput (req/s)")
    ax.set_ylabel("latency (ms)")
    if title:
        ax.set_title(title, loc="left")
    ax.plot([], [], "o", color=INK, mfc="white", label="hollow = INVALID run")
    ax.legend(loc="upper left", fontsize=9, bbox_to_anchor=(1.01, 1.0))
    return to_b64(fig)


_PCT_TICKS = [(50, "50%"), (90, "90%"), (99, "99%"), (99.9, "99.9%"), (99.99, "99.99%"), (99.999, "99.999%")]


def percentile_distribution(
    series: list[tuple[str, list]], *, slo_ms: float | None = None, title: str = "Latency by percentile"
) -> str | None:
    """HDR-style: x = 1/(1-p) on a log axis labelled 50%, 90%, 99%, 99.9%, 99.99%."""
    series = [(lab, pts) for lab, pts in series if pts]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    top = 0.0
    allv: list[float] = []
    for i, (label, pts) in enumerate(series):
        xy = [(1.0 / (1.0 - p / 100.0), ms) for p, ms in pts if 0 <= p < 100 and _num(ms) is not None]
        xy.sort()
        if not xy:
            continue
        top = max(top, xy[-1][0])
        allv.extend(y for _, y in xy)
        ax.plot(
            [x for x, _ in xy],
            [y for _, y in xy],
            "-",
            lw=1.8,
            color=SERIES[i % len(SERIES)],
            label=label,
            drawstyle="default",
        )
    ax.set_xscale("log")
    ticks = [(1 / (1 - p / 100), lab) for p, lab in _PCT_TICKS if 1 / (1 - p / 100) <= max(top, 100) * 1.01]
    ax.set_xticks([t for t, _ in ticks])
    ax.set_xticklabels([lab for _, lab in ticks])
    ax.minorticks_off()
    ax.set_xlim(1.0, max(top, 100) * 1.05)
    if slo_ms:
        ax.axhline(slo_ms, color=SLO_C, ls="--", lw=1.3)
        ax.annotate(
            f"SLO {slo_ms:g} ms",
            xy=(0.005, slo_ms),
            xycoords=("axes fraction", "data"),
            xytext=(2, 3),
            textcoords="offset points",
            color=SLO_C,
            fontsize=9,
            fontweight="bold",
        )
    _maybe_log_y(ax, allv + ([slo_ms] if slo_ms else []))
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    if title:
        ax.set_title(title, loc="left")
    if len(series) > 1 or series[0][0]:
        ax.legend(loc="upper left", fontsize=9, bbox_to_anchor=(1.01, 1.0), ncol=2 if len(series) > 14 else 1)
    return to_b64(fig)


def _interval(ts: list[dict]) -> float:
    ts_t = [t.get("t_s") for t in ts if _num(t.get("t_s")) is not None]
    if len(ts_t) < 2:
        return 1.0
    diffs = sorted(b - a for a, b in zip(ts_t, ts_t[1:]) if b > a)
    return diffs[len(diffs) // 2] if diffs else 1.0


def timeline(result: dict, *, title: str = "Timeline") -> str | None:
    """Offered vs achieved rate and errors (top), p50/p99 per interval (bottom).

    Time-series counts are per interval; they are divided by the interval length to give rates.
    """
    ts = result.get("timeseries") or []
    if len(ts) < 1:
        return None
    dt = _interval(ts)
    t = [_num(p.get("t_s")) for p in ts]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9.5, 5.6), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]})

    def col(key: str, scale: float = 1.0) -> list[float]:
        return [(_num(p.get(key)) or 0.0) * scale if _num(p.get(key)) is not None else math.nan for p in ts]

    for ax in (a1, a2):  # shade the phases that are not measured (warm-up, drain), when the rows say so
        for phase, colour in (("warmup", "#eef0f3"), ("drain", "#f6eef0")):
            ph = [x for x, p in zip(t, ts) if p.get("phase") == phase and x is not None]
            if ph:
                ax.axvspan(
                    min(ph) - dt / 2,
                    max(ph) + dt / 2,
                    color=colour,
                    zorder=0,
                    label=phase.replace("warmup", "warm-up") + " (excluded)" if ax is a1 else None,
                )
    a1.plot(t, col("offered", 1 / dt), color=OFFERED, lw=2, label="offered (req/s)")
    a1.plot(t, col("completed", 1 / dt), color=ACHIEVED, lw=2, label="completed (req/s)")
    errs = col("errors", 1 / dt)
    if any(e and e > 0 for e in errs if not math.isnan(e)):
        a1.plot(t, errs, color=ERR, lw=1.6, label="errors (/s)")
    a1.set_ylabel("rate (req/s)")
    a1.set_ylim(bottom=0)
    a1.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    if title:
        a1.set_title(title, loc="left")
    a2.plot(t, col("p50_ms"), color=P50, lw=1.6, label="p50")
    a2.plot(t, col("p99_ms"), color=P99, lw=2, label="p99")
    slo = (result.get("scenario") or {}).get("slo_p99_ms")
    if slo:
        a2.axhline(slo, color=SLO_C, ls="--", lw=1.2, label=f"SLO {slo:g} ms")
    a2.set_ylabel("latency (ms)")
    a2.set_ylim(bottom=0)
    a2.set_xlabel("time since the start of the run (s)")
    a2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    fig.tight_layout()
    return to_b64(fig)


def decomposition(bars: list[tuple[str, dict]], *, title: str = "Where the time goes (mean, ms)") -> str | None:
    """Stacked bars of mean client lag, network+HTTP, queue, preprocess, compute per run."""
    bars = [(lab, d) for lab, d in bars if d]
    if not bars:
        return None
    keys = [k for k in STACK if any(_num((d.get(k) or {}).get("mean")) for _l, d in bars)]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(9.5, max(2.0, 0.48 * len(bars) + 1.4)))
    labels = [lab for lab, _ in bars]
    left = [0.0] * len(bars)
    for k in keys:
        vals = [_num((d.get(k) or {}).get("mean")) or 0.0 for _l, d in bars]
        ax.barh(
            labels,
            vals,
            left=left,
            color=STACK[k],
            label=STACK_LABEL[k],
            height=0.62 if len(bars) > 1 else 0.4,
            edgecolor="white",
        )
        left = [a + b for a, b in zip(left, vals)]
    for i, total in enumerate(left):
        ax.annotate(
            f"{total:.1f} ms",
            xy=(total, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
    ax.invert_yaxis()
    ax.set_xlim(0, max(left) * 1.15 if max(left) > 0 else 1)
    ax.set_xlabel("mean latency (ms), stacked")
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(title, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(bars) > 3 else -0.35), ncol=len(keys), fontsize=9)
    return to_b64(fig)


def batch_sizes(
    rows: list[tuple[str, float | None, dict]], *, title: str = "Realised server batch sizes"
) -> str | None:
    """rows: (label, offered rate or None, {"size": count of requests executed in a batch of that size}).
    Stacked share of requests by the server batch they ran in, per run, with the request-weighted mean batch
    size annotated. One row → a simple bar chart."""
    rows = [(lab, x, h) for lab, x, h in rows if h and sum(float(v) for v in h.values()) > 0]
    if not rows:
        return None
    sizes = sorted({int(k) for _l, _x, h in rows for k in h})
    if len(rows) == 1:
        return _batch_bars(rows[0][2], sizes, title)
    fig, ax = plt.subplots(figsize=(9.5, 3.8 if len(rows) > 1 else 3.2))
    labels = [lab for lab, _x, _h in rows]
    bottom = [0.0] * len(rows)
    cmap = plt.get_cmap("viridis")
    for j, s in enumerate(sizes):
        shares = []
        for _l, _x, h in rows:
            tot = sum(float(v) for v in h.values())
            shares.append(100.0 * float(h.get(str(s), 0)) / tot)
        ax.bar(
            labels,
            shares,
            bottom=bottom,
            color=cmap(0.15 + 0.7 * j / max(1, len(sizes) - 1)),
            label=f"batch {s}",
            edgecolor="white",
            width=0.65,
        )
        bottom = [a + b for a, b in zip(bottom, shares)]
    for i, (_l, _x, h) in enumerate(rows):
        tot = sum(float(v) for v in h.values())
        mean = sum(int(k) * float(v) for k, v in h.items()) / tot
        ax.annotate(
            f"mean {mean:.2f}",
            xy=(i, 100),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8.5,
            color=INK,
        )
    ax.set_ylim(0, 112)
    ax.set_ylabel("share of requests (%)")
    ax.set_xlabel("offered load" if any(x for _l, x, _h in rows) else "run")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    if len(rows) > 6:
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return to_b64(fig)


def _batch_bars(hist: dict, sizes: list[int], title: str) -> str:
    tot = sum(float(v) for v in hist.values())
    shares = [100.0 * float(hist.get(str(s), 0)) / tot for s in sizes]
    mean = sum(int(k) * float(v) for k, v in hist.items()) / tot
    fig, ax = plt.subplots(figsize=(9.5, 3.0))
    ax.bar([str(s) for s in sizes], shares, color=ACHIEVED, width=0.6)
    for i, v in enumerate(shares):
        ax.annotate(f"{v:.1f}%", xy=(i, v), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=9)
    ax.set_ylim(0, max(shares) * 1.2)
    ax.set_xlabel(f"server batch size the request ran in (items)   ·   mean {mean:.2f}")
    ax.set_ylabel("share of requests (%)")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(title, loc="left")
    return to_b64(fig)
