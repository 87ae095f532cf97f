"""Do a run's queries over the bound come in bursts? The design effect of clustered overs (pure; no I/O, no clocks).

A binomial verdict (loadgen.results.confidence.judge, MLPerf LoadGen's early stopping) is exact when each query is
over the bound independently of the others. In a queue they are not: one long busy period puts dozens of queries
over the bound at once, and n such queries carry far less evidence than n independent ones. The run's per-second
windows show it: with independent queries the number over the bound in each window varies binomially around the
run's share; in bursts it varies many times more.

`design_effect(windows)` measures that excess, Pearson's dispersion statistic over the windows,

    X2 = sum_i (c_i - p m_i)^2 / (p (1 - p) m_i),    p = sum c_i / sum m_i,    D = X2 / (k - 1),

(m_i queries and c_i over the bound in window i, k windows with queries): under independence X2 is ~chi-square with
k - 1 degrees of freedom and D ~1. When X2 exceeds that law's `confidence` quantile (independence rejected) the
verdict treats the run as n / D independent queries with over / D of them over the bound (survey statistics'
design effect: the variance of the share over the bound is D times the binomial one); otherwise D is 1 and the verdict
is the exact binomial one. So independent queries keep their exact verdict (D > 1 in only 1 - confidence of runs),
and bursty ones need more evidence.

What it cannot see: bursts rarer than one per run. A run that happened to have no burst has no query over the bound
and nothing in it says bursts happen; only more runs (more time at the rate) show them. Pooled runs
(`inferload peak --confirm-rule pooled`) are judged over all their windows at once, so a burst in one run of three
is weighed against the calm of the other two. Simulated (tests/curves/peak_sim.py, an M/M/1 queue at its true
boundary): three 10-s runs pooled pass ~50% of the time with the plain binomial verdict, ~25% with this one;
independent queries: unchanged. Peak searches on that queue: docs/mlperf.md#the-pooled-confirmation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist
from typing import Any

from loadgen.results.confidence import DEFAULT_CONFIDENCE


def chi2_quantile(prob: float, df: int) -> float:
    """The `prob` quantile of chi-square with df degrees of freedom (Wilson-Hilferty; within ~1% for df >= 1 at
    prob 0.99: 6.60 vs 6.63 for df 1, 21.66 vs 21.67 for df 9)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    z = NormalDist().inv_cdf(prob)
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def dispersion(windows: Iterable[tuple[int, int]]) -> tuple[float, int] | None:
    """(D, k): Pearson's dispersion index of the counts over the bound across windows of (queries, over), and the
    number of windows with queries; None when it is undefined (fewer than 2 such windows, or none / all over)."""
    ws = [(int(m), int(c)) for m, c in windows if int(m) > 0]
    n = sum(m for m, _ in ws)
    t = sum(min(c, m) for m, c in ws)
    if len(ws) < 2 or t <= 0 or t >= n:
        return None
    p = t / n
    x2 = sum((min(c, m) - p * m) ** 2 / (p * (1.0 - p) * m) for m, c in ws)
    return x2 / (len(ws) - 1), len(ws)


def design_effect(windows: Iterable[tuple[int, int]], confidence: float = DEFAULT_CONFIDENCE) -> float:
    """D when the windows reject independence at `confidence` (module docstring), else 1.0; never below 1. Rounded
    to 3 decimals here, once, so that every verdict weighed by it (the run's, its lag-free twin's from the
    document) uses the same figure."""
    d = dispersion(windows)
    if d is None:
        return 1.0
    index, k = d
    if index * (k - 1) <= chi2_quantile(confidence, k - 1):
        return 1.0
    return round(max(1.0, index), 3)


def windows_of(result: dict[str, Any]) -> list[tuple[int, int]]:
    """(queries, over the bound) per measured second of a run result's `timeseries` (rows with `over_slo`); [] for a
    result recorded without them (an older file, or a run with no SLO)."""
    out = []
    for row in result.get("timeseries") or []:
        if row.get("phase") == "measure" and row.get("over_slo") is not None:
            out.append((int(row.get("judged") or 0), int(row["over_slo"])))
    return out
