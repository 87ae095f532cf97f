"""Capacity sizing (pure): how many replicas serve a target rate, and what p99 to expect on each.

    replicas = ceil(T / (peak_per_replica × (1 − headroom)))

`peak_per_replica` is the highest rate one replica sustained while meeting the SLO (from `inferload peak`,
a sweep, or the best matrix configuration). `headroom` (default 0.2 = 20%) is capacity kept in reserve for
bursts, uneven load balancing and a replica restarting; it is stated in every answer.

The expected p99 per replica is read off the measured latency–throughput curve at T / replicas with a
monotone (Fritsch–Carlson / PCHIP) interpolation of p99 against *achieved* rate. Latency should not fall as
load rises, so the measured p99s are first made non-decreasing (running maximum): measurement noise never
makes the estimate optimistic.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

DEFAULT_HEADROOM = 0.2


def monotone_interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-cubic Hermite interpolation with Fritsch–Carlson slopes (monotone where the data are).

    xs must be strictly increasing; x must lie within [xs[0], xs[-1]].
    """
    n = len(xs)
    if n != len(ys) or n == 0:
        raise ValueError("xs and ys must be non-empty and of equal length")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError("xs must be strictly increasing")
    if not xs[0] <= x <= xs[-1]:
        raise ValueError(f"x={x} outside [{xs[0]}, {xs[-1]}]")
    if n == 1:
        return float(ys[0])
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    delta = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    m = [0.0] * n
    m[0], m[-1] = delta[0], delta[-1]
    for i in range(1, n - 1):
        if delta[i - 1] * delta[i] <= 0:
            m[i] = 0.0
        else:
            # weighted harmonic mean (Fritsch–Butland), as in scipy's PchipInterpolator
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i])
    for i in range(n - 1):  # Fritsch–Carlson limiter at the ends of each interval
        if delta[i] == 0:
            m[i] = m[i + 1] = 0.0
        else:
            a, b = m[i] / delta[i], m[i + 1] / delta[i]
            s = a * a + b * b
            if s > 9:
                t = 3 / math.sqrt(s)
                m[i], m[i + 1] = t * a * delta[i], t * b * delta[i]
    i = min(bisect_right(xs, x) - 1, n - 2)
    t = (x - xs[i]) / h[i]
    h00 = (1 + 2 * t) * (1 - t) ** 2
    h10 = t * (1 - t) ** 2
    h01 = t * t * (3 - 2 * t)
    h11 = t * t * (t - 1)
    return float(h00 * ys[i] + h10 * h[i] * m[i] + h01 * ys[i + 1] + h11 * h[i] * m[i + 1])


def prepare_curve(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """(achieved_rps, p99_ms) pairs → strictly increasing x and non-decreasing y (running max; duplicates of
    x keep the worst p99)."""
    clean = sorted(
        (float(x), float(y))
        for x, y in points
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0
    )
    xs: list[float] = []
    ys: list[float] = []
    for x, y in clean:
        if xs and x == xs[-1]:
            ys[-1] = max(ys[-1], y)
        else:
            xs.append(x)
            ys.append(y)
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1])
    return xs, ys


def expected_p99(points: Sequence[tuple[float, float]], rate_rps: float) -> tuple[float | None, str]:
    """p99 expected at `rate_rps` from measured (achieved_rps, p99_ms) points, with how it was obtained."""
    xs, ys = prepare_curve(points)
    if not xs:
        return None, "no measured curve"
    if rate_rps < xs[0]:
        return ys[0], f"below the lowest measured rate ({xs[0]:.4g} req/s): p99 of that point (an upper bound)"
    if rate_rps > xs[-1]:
        return None, f"above the highest measured rate ({xs[-1]:.4g} req/s): not extrapolated"
    return monotone_interpolate(xs, ys, rate_rps), "monotone (PCHIP) interpolation of p99 vs achieved rate"


def size_replicas(
    target_rps: float,
    peak_rps_per_replica: float,
    *,
    headroom: float = DEFAULT_HEADROOM,
    curve: Sequence[tuple[float, float]] = (),
    slo_ms: float | None = None,
) -> dict[str, Any]:
    """The sizing answer as a JSON-able dict (every figure with its unit in the key)."""
    if target_rps <= 0:
        raise ValueError("target rate must be > 0")
    if not 0 <= headroom < 1:
        raise ValueError("headroom must be in [0, 1), e.g. 0.2 for 20%")
    if peak_rps_per_replica is None or peak_rps_per_replica <= 0:
        return {
            "target_rps": target_rps,
            "headroom": headroom,
            "replicas": None,
            "peak_rps_per_replica": peak_rps_per_replica,
            "note": "no peak per replica was measured (no rate met the SLO), so no replica count can be given",
        }
    usable = peak_rps_per_replica * (1 - headroom)
    replicas = max(1, math.ceil(target_rps / usable - 1e-9))
    per_replica = target_rps / replicas
    p99, how = expected_p99(curve, per_replica)
    out = {
        "target_rps": target_rps,
        "headroom": headroom,
        "peak_rps_per_replica": peak_rps_per_replica,
        "usable_rps_per_replica": usable,
        "replicas": replicas,
        "rate_per_replica_rps": per_replica,
        "utilisation_of_peak": per_replica / peak_rps_per_replica,
        "expected_p99_ms": p99,
        "expected_p99_method": how,
        "slo_p99_ms": slo_ms,
        "formula": "replicas = ceil(target / (peak_per_replica x (1 - headroom)))",
    }
    out["note"] = (
        f"{replicas} replica(s): {target_rps:g} req/s / ({peak_rps_per_replica:.4g} req/s measured per replica x "
        f"(1 - {headroom:.0%} headroom) = {usable:.4g} req/s usable each); each replica then serves "
        f"{per_replica:.4g} req/s"
        + (f", expected p99 ~{p99:.1f} ms" if p99 is not None else "")
        + (f" (SLO {slo_ms:g} ms)" if slo_ms else "")
        + ". Assumes replicas scale linearly and load is spread evenly."
    )
    return out


def sizing_for(
    target_rps: float | None,
    headroom: float,
    peak_rps: float | None,
    curve_rows: list[dict[str, Any]],
    slo_ms: float | None,
) -> dict[str, Any] | None:
    """Replicas for `target_rps` from a peak and the (rate, p99) curve of the valid runs (None without a target)."""
    if target_rps is None:
        return None
    curve = [
        (float(r["achieved_rps"]), float(r["p99_ms"]))
        for r in curve_rows
        if r.get("valid") and r.get("achieved_rps") is not None and r.get("p99_ms") is not None
    ]
    return size_replicas(target_rps, peak_rps or 0.0, headroom=headroom, curve=curve, slo_ms=slo_ms)
