"""Queueing truth for known-answer tests: one FIFO server, Poisson arrivals (M/D/1 exactly, M/G/1 by simulation).

Pure: no I/O, no clocks; numpy and the standard library only.

Notation: arrivals at rate λ (rate_rps), service time S (service_s), load ρ = λS < 1. W is a request's wait
in the queue, T = W + S its sojourn (what a client sees, minus its own overhead).

Exact M/D/1 (Erlang 1909): with t = x/S,

    P(W <= x) = (1 - ρ) · Σ_{k=0}^{⌊t⌋} (ρ(k - t))^k / k! · e^{ρ(t - k)}

P(W = 0) = 1 - ρ (a request that finds the server idle). The terms alternate in sign and reach e^{2ρt} in
size while the sum stays <= 1, so float64 loses every digit once 2ρt/ln 10 approaches 16 (ρ = 0.9, t = 20);
the sum is therefore taken in `decimal` with ~2ρt/ln 10 + 30 significant digits, which makes it exact to
well below float64 resolution at any load (cost: O(t) high-precision terms).

Simulation (any service-time distribution, e.g. the service times a stand-in actually realised): Lindley's
recursion W_{n+1} = max(0, W_n + S_n - A_{n+1}) with seeded exponential gaps A, computed in vectorised form
(W_n = U_n - min_{j<=n} U_j with U the running sum of S_{n-1} - A_n). A fixed seed gives common random numbers
across rates: every W_n then grows with λ along the same path, so simulated quantiles are monotone in rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, localcontext

import numpy as np

ServiceLike = float | np.ndarray | Sequence[float]
"""A constant service time (s) or an array of service-time samples (s)."""


def _check_load(rate_rps: float, service_s: float) -> float:
    if service_s <= 0:
        raise ValueError(f"service time must be > 0, got {service_s}")
    if rate_rps < 0:
        raise ValueError(f"rate must be >= 0, got {rate_rps}")
    rho = rate_rps * service_s
    if rho >= 1:
        raise ValueError(f"unstable queue: load rho = {rho:.4f} >= 1 (rate {rate_rps}/s, service {service_s} s)")
    return rho


def _md1_waiting_cdf_decimal(rho: float, t: float) -> Decimal:
    """P(W <= t·S) for M/D/1 at load rho, as a Decimal with enough digits to survive the cancellation."""
    if t < 0:
        return Decimal(0)
    if rho == 0:
        return Decimal(1)
    m = math.floor(t)
    digits = 30 + math.ceil(2 * rho * t / math.log(10))
    with localcontext() as ctx:
        ctx.prec = digits
        r = Decimal(rho)
        td = Decimal(t)
        e_rt = (r * td).exp()  # e^{ρ t}
        e_mr = (-r).exp()  # e^{-ρ}
        total = Decimal(0)
        fact = Decimal(1)  # k!
        e_k = Decimal(1)  # e^{-ρ k}
        for k in range(m + 1):
            if k:
                fact *= k
                e_k *= e_mr
            a = r * (Decimal(k) - td)  # ρ(k - t) <= 0
            power = a**k if k else Decimal(1)  # (Decimal 0 ** 0 is undefined; here it is 1)
            total += power / fact * e_rt * e_k
        cdf = (1 - r) * total
        # exact arithmetic up to rounding at `digits`; clamp the last-digit noise into [0, 1]
        return min(Decimal(1), max(Decimal(0), +cdf))


def md1_waiting_cdf(rate_rps: float, service_s: float, x_s: float) -> float:
    """P(W <= x_s) for M/D/1 (exact, Erlang's formula)."""
    rho = _check_load(rate_rps, service_s)
    return float(_md1_waiting_cdf_decimal(rho, x_s / service_s))


def md1_sojourn_cdf(rate_rps: float, service_s: float, t_s: float) -> float:
    """P(T <= t_s) = P(W <= t_s - S) for M/D/1 (exact)."""
    rho = _check_load(rate_rps, service_s)
    return float(_md1_waiting_cdf_decimal(rho, (t_s - service_s) / service_s))


def md1_sojourn_exceed(rate_rps: float, service_s: float, bound_s: float) -> float:
    """P(T > bound_s): the fraction of requests whose sojourn exceeds bound_s (exact; no 1 - F cancellation)."""
    rho = _check_load(rate_rps, service_s)
    if bound_s < service_s:
        return 1.0
    with localcontext() as ctx:
        ctx.prec = 50
        return float(1 - _md1_waiting_cdf_decimal(rho, (bound_s - service_s) / service_s))


def md1_sojourn_quantile(rate_rps: float, service_s: float, q: float) -> float:
    """The q-quantile of M/D/1 sojourn time T = W + S, in seconds (exact up to ~1e-12 relative)."""
    if not 0 <= q < 1:
        raise ValueError(f"q must be in [0, 1), got {q}")
    rho = _check_load(rate_rps, service_s)
    if q <= 1 - rho:  # the atom P(W = 0) = 1 - rho
        return service_s
    qd = Decimal(q)

    def ok(t: float) -> bool:  # P(W <= t S) >= q
        return _md1_waiting_cdf_decimal(rho, t) >= qd

    lo, hi = 0.0, 1.0
    while not ok(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return service_s * (1 + hi)


# --------------------------------------------------------------------------------------------- simulation


def _service_draws(service: ServiceLike, n: int, rng: np.random.Generator, ordered: bool = False) -> np.ndarray:
    """n service times: a constant, samples drawn with replacement (independent), or with `ordered` the samples
    replayed in their order, cycled (a trace: slow stretches stay together, as a busy neighbour makes them)."""
    s = np.asarray(service, dtype=np.float64)
    if s.ndim == 0:
        if s <= 0:
            raise ValueError("service time must be > 0")
        return np.full(n, float(s))
    if s.size == 0 or np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("service samples must be a non-empty array of finite non-negative times")
    if ordered:
        return np.resize(s, n)
    return rng.choice(s, size=n, replace=True)


def _mean_service(service: ServiceLike) -> float:
    return float(np.mean(np.asarray(service, dtype=np.float64)))


def _lindley(gaps: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Waiting times W_0..W_{n-1} (W_0 = 0) for gaps[i] = time from arrival i-1 to arrival i (gaps[0] unused)."""
    x = np.empty_like(services)
    x[0] = 0.0
    x[1:] = services[:-1] - gaps[1:]
    u = np.cumsum(x)
    return u - np.minimum.accumulate(np.minimum(u, 0.0))


def _burn_in(n: int) -> int:
    """Requests simulated from an empty system and dropped. It depends on n only, never on the rate, so one
    seed gives the same draws at every rate (common random numbers: each W_n, hence every simulated quantile,
    is then non-decreasing in rate). A queue relaxes in ~1/(1 - sqrt(rho))^2 requests (~70 at rho = 0.7, ~4,400
    at rho = 0.97): n // 4 (at least 2,000) covers that many times over for loads up to ~0.97 at the default n."""
    return max(2000, n // 4)


def simulate_sojourn(
    rate_rps: float,
    service: ServiceLike,
    n: int = 200_000,
    seed: int = 0,
    *,
    return_arrivals: bool = False,
    ordered: bool = False,
):
    """n stationary sojourn times (s) of a FIFO single server with Poisson arrivals (M/G/1).

    service: a constant (M/D/1) or an array of service-time samples (s), drawn with replacement, or with
    `ordered` replayed in order (a trace-driven queue: correlated service times keep their correlation).
    A burn-in from an empty system is simulated and dropped. With return_arrivals, also the arrival
    instants (s, starting near 0) of the returned requests.
    """
    _check_load(rate_rps, _mean_service(service))
    rng = np.random.default_rng(seed)
    burn = _burn_in(n)
    total = n + burn
    unit = rng.standard_exponential(total)  # drawn first: same gaps (scaled) at every rate for one seed
    services = _service_draws(service, total, rng, ordered)
    gaps = unit / rate_rps if rate_rps > 0 else np.full(total, np.inf)
    if rate_rps > 0:
        w = _lindley(gaps, services)
    else:
        w = np.zeros(total)
    t = (w + services)[burn:]
    if return_arrivals and rate_rps > 0:
        arr = np.cumsum(gaps)[burn:]
        return t, arr - arr[0]
    return t


def _nearest_rank(sorted_v: np.ndarray, q: float) -> float:
    return float(sorted_v[min(sorted_v.size - 1, max(0, math.ceil(q * sorted_v.size - 1e-9) - 1))])


def mg1_sojourn_quantile(
    rate_rps: float, service: ServiceLike, q: float, n: int = 200_000, seed: int = 0, *, ordered: bool = False
) -> float:
    """Simulated q-quantile of sojourn time (s) with the given service time(s) (`ordered`: see simulate_sojourn)."""
    return _nearest_rank(np.sort(simulate_sojourn(rate_rps, service, n, seed, ordered=ordered)), q)


def mg1_sojourn_exceed(rate_rps: float, service: ServiceLike, bound_s: float, n: int = 200_000, seed: int = 0) -> float:
    """Simulated P(T > bound_s)."""
    return float(np.mean(simulate_sojourn(rate_rps, service, n, seed) > bound_s))


def window_quantile_band(
    rate_rps: float,
    service: ServiceLike,
    duration_s: float,
    qs: tuple[float, ...],
    *,
    windows: int = 4000,
    tail: float = 1e-3,
    seed: int = 0,
) -> dict[float, tuple[float, float]]:
    """Sampling spread of a measured sojourn quantile: what a run of duration_s would report.

    Simulates `windows` consecutive windows of duration_s (the queue in its stationary state, requests
    counted by arrival in the window, Poisson numbers of them), takes each window's nearest-rank q-quantile,
    and returns {q: (lo, hi)}, the tail and 1 - tail quantiles of those estimates. Unlike a binomial bound,
    this accounts for the correlation between successive sojourn times of a queue.
    """
    _check_load(rate_rps, _mean_service(service))
    if rate_rps <= 0 or duration_s <= 0:
        raise ValueError("window_quantile_band needs a rate and a duration > 0")
    n = int(rate_rps * duration_s * windows * 1.02) + 100
    t, arr = simulate_sojourn(rate_rps, service, n, seed, return_arrivals=True)
    wid = (arr // duration_s).astype(np.int64)
    keep = wid < windows
    t, wid = t[keep], wid[keep]
    order = np.lexsort((t, wid))  # by window, then by sojourn
    t_sorted = t[order]
    counts = np.bincount(wid, minlength=windows)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ok = counts > 0
    out: dict[float, tuple[float, float]] = {}
    for q in qs:
        rank = np.clip(np.ceil(q * counts[ok] - 1e-9).astype(np.int64) - 1, 0, None)
        est = t_sorted[starts[ok] + rank]
        out[q] = (float(np.quantile(est, tail)), float(np.quantile(est, 1 - tail)))
    return out


# --------------------------------------------------------------------------------------------- peak rate


def true_peak_rps(
    service_s: float,
    slo_s: float,
    q: float = 0.99,
    *,
    service_samples: ServiceLike | None = None,
    ordered: bool = False,
    n: int = 200_000,
    seed: int = 0,
    rel_tol: float = 1e-9,
) -> float:
    """The highest arrival rate at which the q-quantile of sojourn time is <= slo_s (bisection; the quantile
    is monotone in rate). Exact M/D/1 with service_s; with service_samples, simulated M/G/1 (service_s is
    then ignored; common random numbers keep the simulated quantile monotone in rate), the samples replayed
    in their order with `ordered` (a trace). 0 if slo_s is below every service time (no rate passes)."""
    if service_samples is not None:
        s = np.asarray(service_samples, dtype=np.float64)
        mean_s = float(np.mean(s))
        if slo_s < float(np.min(s)):
            return 0.0

        def passes(rate: float) -> bool:
            return mg1_sojourn_quantile(rate, s, q, n, seed, ordered=ordered) <= slo_s
    else:
        mean_s = service_s
        if service_s <= 0:
            raise ValueError("service time must be > 0")
        if slo_s < service_s:
            return 0.0
        qd = Decimal(q)
        t = (slo_s - service_s) / service_s

        def passes(rate: float) -> bool:  # q-quantile of T <= slo  <=>  P(W <= slo - S) >= q
            return _md1_waiting_cdf_decimal(rate * service_s, t) >= qd

    lo, hi = 0.0, 1.0 / mean_s  # passes(lo) (an idle server answers in S <= slo); hi is unstable
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo
