"""Plots of the search documents: the matrix's bars, overload goodput and the tune Pareto frontier."""

from __future__ import annotations

from loadgen.report.plots import ACHIEVED, ERR, GRID, INK, OFFERED, PEAK_C, RAW_C, SLO_C, _num, plt, to_b64


def matrix_bars(
    rows: list[dict], *, baseline_items_per_s: float | None = None, title: str = "Configurations: throughput"
) -> str | None:
    """Grouped bars per configuration: max items/s (closed loop) and items/s at the SLO peak."""
    rows = [r for r in rows if not r.get("error")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    labels = [r["label"] for r in rows]
    x = list(range(len(rows)))
    w = 0.38
    mx = [_num(r.get("max_items_per_s")) or 0 for r in rows]
    pk = [_num(r.get("peak_items_per_s")) or 0 for r in rows]
    ax.bar([i - w / 2 for i in x], mx, w, color=ACHIEVED, label="max throughput (closed loop)")
    ax.bar([i + w / 2 for i in x], pk, w, color=PEAK_C, label="peak under the SLO (open loop)")
    top = max(mx + pk + [1.0])
    if baseline_items_per_s and baseline_items_per_s <= 4 * top:
        ax.axhline(baseline_items_per_s, color=RAW_C, ls=":", lw=1.6, label="raw in-process limit")
    elif baseline_items_per_s:  # far above the served numbers: say it rather than flatten the bars
        ax.annotate(
            f"raw in-process limit: {baseline_items_per_s:,.0f} items/s (off scale)",
            xy=(0.01, 0.97),
            xycoords="axes fraction",
            va="top",
            fontsize=9,
            color=RAW_C,
        )
        ax.set_ylim(0, top * 1.2)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=20 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
    ax.set_ylabel("items/s")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    return to_b64(fig)


def overload_goodput(steps: list[dict], capacity_rps: float, *, title: str = "") -> str | None:
    """Goodput, goodput within the SLO and refusals against offered load; the capacity as a reference line."""
    pts = [s for s in steps if _num(s.get("offered_rps")) is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    xs = [s["offered_rps"] for s in pts]
    ax.plot(xs, [s.get("goodput_rps") or 0 for s in pts], "o-", color=ACHIEVED, label="goodput (successes/s)")
    if any(s.get("goodput_slo_rps") is not None for s in pts):
        ax.plot(xs, [s.get("goodput_slo_rps") or 0 for s in pts], "s--", color=PEAK_C, label="goodput within the SLO")
    ax.plot(xs, [s.get("refused_rps") or 0 for s in pts], "^:", color=ERR, label="refused (429/503) per s")
    ax.axhline(capacity_rps, color=RAW_C, lw=1, ls="--", label=f"capacity {capacity_rps:.4g} req/s")
    ax.plot(xs, xs, color=OFFERED, lw=0.8, label="offered")
    ax.set_xlabel("offered load (req/s)")
    ax.set_ylabel("req/s")
    ax.grid(True, color=GRID)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    if title:
        ax.set_title(title)
    return to_b64(fig)


def pareto(configs: list[dict], *, frontier: list[str], recommended: str | None = None, title: str = "") -> str | None:
    """p99 at low load against throughput, one point per configuration measured (hollow: infeasible), the
    Pareto frontier as a line and the recommended configuration starred. Rows as in the tune document."""
    pts = [
        (
            c["name"],
            _num(c.get("throughput_rps")),
            _num((c.get("pooled") or {}).get("p99_low_load_ms")),
            bool(c.get("feasible")),
        )
        for c in configs
    ]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.8))
    ok = [p for p in pts if p[3]]
    bad = [p for p in pts if not p[3]]
    if ok:
        ax.scatter([p[1] for p in ok], [p[2] for p in ok], s=36, color=ACHIEVED, zorder=3, label="feasible")
    if bad:
        ax.scatter(
            [p[1] for p in bad],
            [p[2] for p in bad],
            s=36,
            facecolors="none",
            edgecolors=OFFERED,
            zorder=3,
            label="infeasible (a constraint not met)",
        )
    front = sorted((p for p in pts if p[0] in set(frontier)), key=lambda p: p[1])
    if front:
        ax.plot(
            [p[1] for p in front],
            [p[2] for p in front],
            "o-",
            color=PEAK_C,
            lw=2,
            ms=13,
            mfc="none",
            mew=2,
            zorder=2,
            label="Pareto frontier",
        )
    rec = next((p for p in pts if p[0] == recommended), None)
    if rec is not None:
        ax.scatter([rec[1]], [rec[2]], s=260, marker="*", color=SLO_C, zorder=4, label=f"recommended: {rec[0]}")
    for name, x, y, _f in pts:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8, color=INK)
    ax.set_xlabel("throughput (req/s): peak under the SLO, else max throughput")
    ax.set_ylabel("p99 at low load (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    if title:
        ax.set_title(title, loc="left")
    return to_b64(fig)
