"""Sizing (loadgen.search.sizing): replica count with headroom, p99 expected per replica from the measured curve."""

from __future__ import annotations

import math

import pytest

from loadgen.search.sizing import expected_p99, monotone_interpolate, prepare_curve, size_replicas

CURVE = [(50, 8.0), (100, 12.0), (200, 23.0), (300, 63.0), (360, 163.0)]


def test_replicas_formula_with_default_headroom():
    s = size_replicas(1000, 300, curve=CURVE, slo_ms=50)
    assert s["headroom"] == 0.2
    assert s["usable_rps_per_replica"] == pytest.approx(240)
    assert s["replicas"] == 5  # ceil(1000 / 240) = ceil(4.17)
    assert s["rate_per_replica_rps"] == pytest.approx(200)
    assert s["expected_p99_ms"] == pytest.approx(23.0)  # exactly a measured point
    assert "20% headroom" in s["note"] and "5 replica" in s["note"]


def test_exact_division_does_not_add_a_replica():
    assert size_replicas(600, 300, headroom=0.0)["replicas"] == 2
    assert size_replicas(480, 300)["replicas"] == 2  # 480 / 240 = 2 exactly
    assert size_replicas(481, 300)["replicas"] == 3
    assert size_replicas(1, 300)["replicas"] == 1


def test_expected_p99_interpolated_between_points_and_monotone():
    s = size_replicas(500, 300, curve=CURVE)  # 3 replicas → 166.7 req/s each
    assert s["replicas"] == 3
    assert 12.0 < s["expected_p99_ms"] < 23.0
    xs = [50 + i for i in range(311)]
    ys = [expected_p99(CURVE, x)[0] for x in xs]
    assert all(b >= a - 1e-9 for a, b in zip(ys, ys[1:]))


def test_noisy_curve_made_non_decreasing():
    xs, ys = prepare_curve([(100, 20.0), (50, 10.0), (150, 15.0), (150, 18.0), (200, 40.0)])
    assert xs == [50, 100, 150, 200]
    assert ys == [10.0, 20.0, 20.0, 40.0]


def test_outside_the_measured_range():
    p, how = expected_p99(CURVE, 10)
    assert p == 8.0 and "below" in how
    p, how = expected_p99(CURVE, 400)
    assert p is None and "above" in how
    assert expected_p99([], 10) == (None, "no measured curve")


def test_no_peak_gives_no_replica_count():
    s = size_replicas(100, 0)
    assert s["replicas"] is None and "no peak" in s["note"]


def test_monotone_interpolate_hits_knots_and_stays_within_bounds():
    xs, ys = [0.0, 1.0, 2.0, 3.0], [0.0, 0.1, 5.0, 5.1]
    for x, y in zip(xs, ys):
        assert monotone_interpolate(xs, ys, x) == pytest.approx(y)
    for i in range(301):
        v = monotone_interpolate(xs, ys, i / 100)
        assert -1e-9 <= v <= 5.1 + 1e-9
    vals = [monotone_interpolate(xs, ys, i / 100) for i in range(301)]
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:]))
    with pytest.raises(ValueError):
        monotone_interpolate(xs, ys, 4)
    with pytest.raises(ValueError):
        monotone_interpolate([1, 1], [1, 2], 1)


@pytest.mark.parametrize(
    "bad", [dict(target_rps=0, peak_rps_per_replica=1), dict(target_rps=1, peak_rps_per_replica=1, headroom=1)]
)
def test_bad_inputs(bad):
    with pytest.raises(ValueError):
        size_replicas(**bad)


def test_math_sanity():
    s = size_replicas(12345, 321.5, headroom=0.25)
    assert s["replicas"] == math.ceil(12345 / (321.5 * 0.75))
