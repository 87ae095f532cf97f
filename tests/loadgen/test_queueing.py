"""Unit tests of the queueing truth (tests/loadgen/queueing.py): exact M/D/1 against theory and simulation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.loadgen import queueing as Q

S = 0.010  # 10 ms


@pytest.mark.parametrize("rho", [0.5, 0.7, 0.9])
def test_exact_cdf_has_the_known_moments(rho):
    # Takács: E[W] = rho S / (2 (1 - rho)), E[W^2] = lambda S^3 / (3 (1 - rho)) + 2 E[W]^2 for M/D/1.
    # Integrate the exact CDF: E[W] = int (1 - F), E[W^2] = int 2x (1 - F), with S = 1.
    # Composite Simpson with nodes on every integer (where the density has kinks), tail beyond `top` negligible.
    top = 40 if rho < 0.8 else 150
    xs = np.linspace(0, top, 20 * top + 1)
    tail = 1 - np.array([Q.md1_waiting_cdf(rho, 1.0, x) for x in xs])

    def simpson(y: np.ndarray) -> float:
        h = xs[1] - xs[0]
        return float(h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum()))

    ew = rho / (2 * (1 - rho))
    assert tail[-1] < 1e-9
    assert simpson(tail) == pytest.approx(ew, rel=1e-6)
    assert simpson(2 * xs * tail) == pytest.approx(rho / (3 * (1 - rho)) + 2 * ew**2, rel=1e-6)


def test_exact_cdf_atom_first_interval_and_bounds():
    # P(W = 0) = 1 - rho; on [0, S) the formula is (1 - rho) e^{lambda x}
    for rho in (0.1, 0.5, 0.9):
        rate = rho / S
        assert Q.md1_waiting_cdf(rate, S, 0.0) == pytest.approx(1 - rho, rel=1e-12)
        assert Q.md1_waiting_cdf(rate, S, 0.4 * S) == pytest.approx((1 - rho) * np.exp(rate * 0.4 * S), rel=1e-12)
    # far in the tail at high load (where a float64 sum of Erlang's alternating terms is noise), the CDF stays
    # in [0, 1] and non-decreasing
    xs = np.linspace(0, 400 * S, 201)
    f = np.array([Q.md1_waiting_cdf(0.97 / S, S, x) for x in xs])
    assert np.all((f >= 0) & (f <= 1)) and np.all(np.diff(f) >= 0)
    assert f[-1] > 0.999
    assert Q.md1_sojourn_exceed(0.97 / S, S, 400 * S) == pytest.approx(
        1 - Q.md1_sojourn_cdf(0.97 / S, S, 400 * S), abs=1e-12
    )


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.9])
def test_exact_and_simulation_agree_within_sampling_error(rho):
    # At each exact quantile x_q, the simulated fraction of sojourns above x_q must be 1 - q within its own
    # sampling error. Successive sojourns in a queue are correlated, so the error comes from batch means:
    # 40 batches of 25k requests (each many busy periods long), standard error = sd(batch fractions) / sqrt(40).
    rate = rho / S
    t = Q.simulate_sojourn(rate, S, 1_000_000, seed=7)
    batches = t.reshape(40, -1)
    for q in (0.5, 0.9, 0.99):
        xq = Q.md1_sojourn_quantile(rate, S, q)
        # inside the idle-server atom (q <= 1 - rho) the quantile is S and P(T > S) = rho; beyond it P(T > x_q) = 1 - q
        expected = rho if q <= 1 - rho else 1 - q
        if q <= 1 - rho:
            assert xq == S
        above = (batches > xq).mean(axis=1)
        se = above.std(ddof=1) / np.sqrt(len(above))
        assert abs(above.mean() - expected) <= 5 * se + 1e-4, (rho, q, xq, above.mean(), se)
        # and the exceedance function gives the same truth from the other side
        assert Q.md1_sojourn_exceed(rate, S, xq) == pytest.approx(expected, abs=1e-9)
        sim_q = Q._nearest_rank(np.sort(t), q)
        assert (sim_q == S) if q <= 1 - rho else (sim_q > S)


def test_quantile_is_monotone_in_rate_exact_and_simulated():
    rates = np.linspace(5, 95, 19)
    variable = S * np.random.default_rng(5).uniform(0.8, 1.2, 500)
    variable *= S / variable.mean()
    for q in (0.5, 0.9, 0.99):
        exact = [Q.md1_sojourn_quantile(r, S, q) for r in rates]
        assert np.all(np.diff(exact) >= 0), exact
        assert exact[-1] > exact[0]
        # a fixed seed gives common random numbers: the simulated quantile is monotone too, with constant or
        # with variable (sampled) service times
        sim = [Q.mg1_sojourn_quantile(r, S, q, n=50_000, seed=3) for r in rates]
        assert np.all(np.diff(sim) >= 0), sim
        sim = [Q.mg1_sojourn_quantile(r, variable, q, n=50_000, seed=3) for r in rates]
        assert np.all(np.diff(sim) >= 0), sim
    ex = [Q.md1_sojourn_exceed(r, S, 5 * S) for r in rates]
    assert np.all(np.diff(ex) > 0), ex


def test_design_figure_p99_reaches_100ms_near_70_to_77_rps():
    peak = Q.true_peak_rps(S, 0.100, q=0.99)
    assert 70 <= peak <= 77.5, peak
    assert Q.md1_sojourn_quantile(peak, S, 0.99) == pytest.approx(0.100, rel=1e-6)
    assert Q.md1_sojourn_quantile(70, S, 0.99) < 0.100 < Q.md1_sojourn_quantile(78, S, 0.99)
    # at the peak exactly 1% of requests exceed the SLO
    assert Q.md1_sojourn_exceed(peak, S, 0.100) == pytest.approx(0.01, rel=1e-6)
    # simulated from service-time samples (all equal to S here), the same answer within sampling error
    sim_peak = Q.true_peak_rps(S, 0.100, q=0.99, service_samples=np.full(16, S))
    assert sim_peak == pytest.approx(peak, rel=0.02)


def test_light_load_gives_the_service_time():
    # as rho -> 0 every quantile becomes S: exactly once rho <= 1 - q (the request finds the server idle),
    # and continuously so: just above that load the quantile is barely above S
    for q in (0.5, 0.9, 0.99, 0.999):
        assert Q.md1_sojourn_quantile(1e-6, S, q) == S
        assert Q.md1_sojourn_quantile(0.0, S, q) == S
        assert Q.md1_sojourn_quantile((1 - q) / S, S, q) == S
        assert S < Q.md1_sojourn_quantile((1 - q) * 1.001 / S, S, q) < S * 1.01
    means = [Q.simulate_sojourn(r, S, 100_000, seed=1).mean() for r in (10.0, 1.0, 0.1)]
    assert means == pytest.approx([S * (1 + rho / (2 * (1 - rho))) for rho in (0.1, 0.01, 0.001)], rel=2e-3)
    # P(T > S) = P(W > 0) = rho
    assert Q.md1_sojourn_exceed(1.0, S, S) == pytest.approx(0.01, rel=1e-9)
    assert Q.md1_sojourn_exceed(1.0, S, 0.999 * S) == 1.0
    assert np.all(Q.simulate_sojourn(0.0, S, 1000) == S)


def test_service_variability_costs_latency_and_peak():
    # Pollaczek-Khinchine: at equal mean service, variable service (M/G/1) waits longer than M/D/1
    rng = np.random.default_rng(0)
    samples = rng.exponential(S, 10_000)
    samples *= S / samples.mean()
    assert Q.mg1_sojourn_quantile(70, samples, 0.99) > Q.md1_sojourn_quantile(70, S, 0.99)
    assert Q.true_peak_rps(S, 0.100, service_samples=samples, n=50_000) < Q.true_peak_rps(S, 0.100)
    # nearly constant samples give nearly the M/D/1 truth
    tight = S * (1 + 1e-4 * rng.standard_normal(1000))
    assert Q.mg1_sojourn_quantile(50, tight, 0.9) == pytest.approx(Q.md1_sojourn_quantile(50, S, 0.9), rel=0.01)


def test_a_trace_keeps_its_slow_stretches_together():
    # the same samples, once drawn independently and once replayed in order: a stretch of slow service (a busy
    # neighbour) costs a replayed queue far more than the same slow requests spread out, and in order it is no
    # longer M/G/1; shuffled, the trace is the independent queue again (its samples in a random order)
    rng = np.random.default_rng(1)
    trace = np.full(20_000, S)
    trace[5_000:5_400] = 2 * S  # 2% of requests, together: rho doubles for a while
    iid = Q.true_peak_rps(S, 0.100, service_samples=trace, n=50_000)
    ordered = Q.true_peak_rps(S, 0.100, service_samples=trace, ordered=True, n=50_000)
    shuffled = Q.true_peak_rps(S, 0.100, service_samples=rng.permutation(trace), ordered=True, n=50_000)
    assert ordered < 0.9 * iid
    assert shuffled == pytest.approx(iid, rel=0.05)
    # a constant trace is M/D/1 either way
    assert Q.true_peak_rps(S, 0.100, service_samples=np.full(64, S), ordered=True, n=50_000) == pytest.approx(
        Q.true_peak_rps(S, 0.100), rel=0.02
    )


def test_window_band_brackets_the_truth_and_narrows_with_duration():
    short = Q.window_quantile_band(50, S, 2.0, (0.5, 0.9), windows=2000, seed=1)
    long = Q.window_quantile_band(50, S, 20.0, (0.5, 0.9), windows=500, seed=1)
    for q in (0.5, 0.9):
        truth = Q.md1_sojourn_quantile(50, S, q)
        for lo, hi in (short[q], long[q]):
            assert lo <= truth <= hi, (q, lo, truth, hi)
        assert long[q][1] - long[q][0] < short[q][1] - short[q][0]
    assert short[0.5][0] == pytest.approx(S)  # rho = 0.5: a median at the idle-server atom is possible


def test_rejects_unstable_and_bad_arguments():
    with pytest.raises(ValueError):
        Q.md1_sojourn_quantile(100, S, 0.5)  # rho = 1
    with pytest.raises(ValueError):
        Q.md1_sojourn_quantile(50, S, 1.0)
    with pytest.raises(ValueError):
        Q.md1_waiting_cdf(50, 0.0, 0.1)
    assert Q.true_peak_rps(S, 0.5 * S) == 0.0  # an SLO below the service time: no rate passes
    assert Q.true_peak_rps(S, S, q=0.99) == pytest.approx(0.01 / S, rel=1e-6)  # only the atom: 1 - rho >= q
