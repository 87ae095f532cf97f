"""Pure arrival schedules for the open loop: absolute offsets (seconds) from t0, computed in advance.

A schedule fixed in advance, with latency measured from each scheduled instant, is what defeats
coordinated omission (wrk2, MLPerf LoadGen Server scenario). No I/O, no clocks: unit-tested directly.

With `streams` = W worker processes, stream k follows rate/W:
- poisson: an independent Poisson process of rate/W seeded with derive_seed(seed, k). The superposition
  of W independent Poisson streams is a Poisson stream of the full rate.
- constant: instants (k + i*W)/rate, i = 0, 1, ... so that the W streams interleave into one constant
  stream of the full rate (to the extent the workers' t0 coincide).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from loadgen.engine.arrivals import derive_seed, shaped_offsets


def _check(rate_rps: float, duration_s: float, stream: int, streams: int) -> None:
    if rate_rps <= 0:
        raise ValueError("rate_rps must be > 0")
    if duration_s < 0:
        raise ValueError("duration_s must be >= 0")
    if streams < 1 or not 0 <= stream < streams:
        raise ValueError(f"stream {stream} out of range for {streams} streams")


def constant_offsets(rate_rps: float, duration_s: float, *, stream: int = 0, streams: int = 1) -> list[float]:
    """Evenly spaced instants in [0, duration_s): (stream + i*streams) / rate_rps."""
    _check(rate_rps, duration_s, stream, streams)
    n_total = int(np.ceil(duration_s * rate_rps - 1e-9))  # instants j/rate < duration
    idx = np.arange(stream, n_total, streams, dtype=np.float64)
    return cast(list[float], (idx / rate_rps).tolist())


def poisson_offsets(rate_rps: float, duration_s: float, seed: int, *, stream: int = 0, streams: int = 1) -> list[float]:
    """Poisson arrivals of rate rate_rps/streams in [0, duration_s) (exponential gaps), seeded per stream."""
    _check(rate_rps, duration_s, stream, streams)
    rate = rate_rps / streams
    rng = np.random.default_rng(derive_seed(seed, stream))
    chunks: list[np.ndarray] = []
    t = 0.0
    chunk = max(64, int(rate * duration_s * 1.1) + 64)
    while t < duration_s:
        gaps = rng.exponential(1.0 / rate, size=chunk)
        times = t + np.cumsum(gaps)
        chunks.append(times)
        t = float(times[-1])
    allt = np.concatenate(chunks) if chunks else np.empty(0)
    return cast(list[float], allt[allt < duration_s].tolist())


def arrival_offsets(
    arrival: str,
    rate_rps: float | None,
    duration_s: float,
    seed: int,
    *,
    stream: int = 0,
    streams: int = 1,
    ramp: str | None = None,
    speedup: float | None = None,
    burst_on_s: float = 1.0,
    burst_off_s: float = 4.0,
    ramp_hold_s: float = 0.0,
) -> list[float]:
    """Dispatch on the arrival process name: "poisson" | "constant" here; a `ramp`, "burst" and
    "trace:FILE[:COLUMN]" in loadgen.engine.arrivals (see its docstring for their parameters)."""
    if ramp is not None or arrival == "burst" or arrival.startswith("trace:"):
        return shaped_offsets(
            arrival,
            rate_rps,
            duration_s,
            seed,
            stream=stream,
            streams=streams,
            ramp=ramp,
            speedup=speedup,
            burst_on_s=burst_on_s,
            burst_off_s=burst_off_s,
            ramp_hold_s=ramp_hold_s,
        )
    if rate_rps is None:
        raise ValueError(f"{arrival} arrivals need rate_rps")
    if arrival == "constant":
        return constant_offsets(rate_rps, duration_s, stream=stream, streams=streams)
    if arrival == "poisson":
        return poisson_offsets(rate_rps, duration_s, seed, stream=stream, streams=streams)
    raise ValueError(f"unknown arrival process {arrival!r} (poisson|constant|burst|trace:FILE)")


def scenario_offsets(scenario: Any, *, stream: int = 0, streams: int = 1) -> list[float]:
    """The open-loop schedule of a Scenario over [0, end_s): its arrival, rate and shape fields (a ramp starts
    after the warm-up, which runs at the ramp's start rate)."""
    return arrival_offsets(
        scenario.arrival,
        scenario.rate_rps,
        scenario.end_s,
        scenario.seed,
        stream=stream,
        streams=streams,
        ramp=scenario.ramp,
        speedup=scenario.speedup,
        burst_on_s=scenario.burst_on_s,
        burst_off_s=scenario.burst_off_s,
        ramp_hold_s=scenario.warmup_s,
    )
