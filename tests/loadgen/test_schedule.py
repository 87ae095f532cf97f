"""Pure tests of the arrival schedules."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.engine.arrivals import derive_seed
from loadgen.engine.schedule import arrival_offsets, constant_offsets, poisson_offsets


def test_constant_spacing_is_exact():
    t = constant_offsets(300, 5.0)
    assert len(t) == 1500
    assert t[0] == 0.0 and t[-1] < 5.0
    assert np.allclose(np.diff(t), 1 / 300, rtol=0, atol=1e-12)


def test_constant_streams_interleave_into_the_single_stream():
    single = constant_offsets(200, 3.0)
    parts = [constant_offsets(200, 3.0, stream=k, streams=3) for k in range(3)]
    assert sorted(x for p in parts for x in p) == pytest.approx(single, abs=1e-12)
    assert [len(p) for p in parts] == [200, 200, 200]


def test_poisson_mean_rate_and_exponential_gaps():
    t = poisson_offsets(1000, 20.0, seed=7)
    assert len(t) == pytest.approx(20000, rel=0.02)
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(1e-3, rel=0.02)
    assert gaps.std() == pytest.approx(1e-3, rel=0.03)  # exponential: std == mean
    assert all(0 <= x < 20.0 for x in t) and t == sorted(t)


def test_poisson_is_deterministic_per_seed():
    assert poisson_offsets(100, 5.0, seed=3) == poisson_offsets(100, 5.0, seed=3)
    assert poisson_offsets(100, 5.0, seed=3) != poisson_offsets(100, 5.0, seed=4)


def test_poisson_rate_split_per_worker():
    streams = [poisson_offsets(900, 10.0, seed=1, stream=k, streams=3) for k in range(3)]
    for s in streams:
        assert len(s) == pytest.approx(3000, rel=0.05)
    assert streams[0][:5] != streams[1][:5]  # distinct derived seeds
    assert len({derive_seed(1, k) for k in range(100)}) == 100
    merged = sorted(x for s in streams for x in s)
    assert len(merged) == pytest.approx(9000, rel=0.03)


def test_arrival_dispatch_and_errors():
    assert arrival_offsets("constant", 10, 1.0, 1) == constant_offsets(10, 1.0)
    assert arrival_offsets("poisson", 10, 1.0, 1) == poisson_offsets(10, 1.0, 1)
    with pytest.raises(ValueError):
        arrival_offsets("bursty", 10, 1.0, 1)
    with pytest.raises(ValueError):
        constant_offsets(0, 1.0)
    with pytest.raises(ValueError):
        constant_offsets(10, 1.0, stream=2, streams=2)
