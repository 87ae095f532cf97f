"""Real traffic shapes for the open loop, pure: trace replay, on/off bursts, linear ramps, per-second timelines.

Every schedule is a list of absolute offsets (seconds from t0) in [0, duration_s), like loadgen.engine.schedule's, and
splits across `streams` (worker processes) the same way: stream k of W gets its share, and the W streams
together make the whole schedule.

**Rate profiles.** A ramp and a burst pattern are a time-varying rate r(t), piecewise linear (`RateProfile`).
With the cumulative intensity L(t) = integral of r from 0 to t, and its inverse L^-1:
- *constant* process: the j-th instant is L^-1(j), j = 0, 1, 2, ... (exact: one arrival per unit of intensity;
  with a constant rate this is j / rate, `constant_offsets`). Stream k takes j = k, k + W, ... (interleaved).
- *poisson* process (time change): a unit-rate Poisson process U_1 < U_2 < ... mapped through L^-1 is a Poisson
  process of intensity r(t). Stream k maps its own Poisson process of rate 1/W (seed derive_seed(seed, k)); the
  superposition of the W streams is Poisson of intensity r(t).
- `ramp_profile(start, end, ramp_s, hold_s)`: start rate for `hold_s` (the warm-up, so the ramp spans the
  measurement), then linear to `end` over `ramp_s`, then `end`. Spec text: `START:END:DURATION`, e.g.
  `10:200:60s` (`s` or `m` suffix; plain seconds).
- `burst_profile(rate, on_s, off_s, horizon_s)`: `rate` req/s during each `on_s` period, nothing during the
  `off_s` period after it, starting with an on period; the mean rate is rate x on / (on + off). `--arrival burst`
  is Poisson arrivals on this profile.

**Traces** (`trace:FILE` or `trace:FILE:COLUMN`): one offset per line (seconds; `#` comments and blank lines
skipped), or a CSV with a header whose column is named (`COLUMN`) or found among timestamp, offset, t, time, ts,
time_s, offset_s (a single-column CSV needs no name). Values are sorted and shifted so the first is 0 (absolute
timestamps such as Unix times work). Scaled by `speedup` (offsets / speedup) or to a mean `rate_rps` (the trace's
rate is (n - 1) / span: one over the mean gap). Replayed once (no looping); instants at or past the duration are
not sent. Stream k of W replays entries k, k + W, ...
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np


def derive_seed(seed: int, stream: int) -> int:
    """A distinct, deterministic 63-bit seed for stream `stream` of a run seeded with `seed`."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFFFFFF]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


Process = Literal["constant", "poisson"]
TRACE_COLUMNS = ("timestamp", "offset", "t", "time", "ts", "time_s", "offset_s")
_RAMP = re.compile(r"^\s*([0-9.eE+-]+)\s*:\s*([0-9.eE+-]+)\s*:\s*([0-9.eE+-]+)\s*(s|m)?\s*$")


class ArrivalError(ValueError):
    """An arrival specification or trace that cannot be used; the message names the input and the fix."""


def _check_stream(stream: int, streams: int) -> None:
    if streams < 1 or not 0 <= stream < streams:
        raise ArrivalError(f"stream {stream} out of range for {streams} streams")


# ---- rate profiles -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateProfile:
    """Piecewise-linear rate: knots (t_i, r_i) with t_0 = 0, linear between knots, r_last after the last."""

    times: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.rates) or self.times[0] != 0.0:
            raise ArrivalError("a rate profile needs knots starting at t = 0")
        if any(b < a for a, b in zip(self.times, self.times[1:])) or any(r < 0 for r in self.rates):
            raise ArrivalError("profile times must not decrease and rates must be >= 0")

    def _cum_at_knots(self) -> np.ndarray:
        t, r = np.asarray(self.times), np.asarray(self.rates)
        return np.concatenate([[0.0], np.cumsum(0.5 * (r[1:] + r[:-1]) * np.diff(t))])

    def cumulative(self, t: float) -> float:
        """L(t): expected arrivals in [0, t)."""
        cum = self._cum_at_knots()
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        t0, r0 = self.times[i], self.rates[i]
        if i + 1 < len(self.times):
            t1, r1 = self.times[i + 1], self.rates[i + 1]
            a = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
        else:
            a = 0.0
        x = t - t0
        return float(cum[i] + r0 * x + 0.5 * a * x * x)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """L^-1(u): the earliest t with L(t) = u (vectorised; u >= 0)."""
        u = np.asarray(u, dtype=np.float64)
        cum = self._cum_at_knots()
        t, r = np.asarray(self.times), np.asarray(self.rates)
        # the segment holding u: the last knot with cum <= u, skipping zero-mass segments (rate 0 on both ends)
        i = np.searchsorted(cum, u, side="right") - 1
        i = np.clip(i, 0, len(t) - 1)
        du = u - cum[i]
        r0 = r[i]
        nxt = np.minimum(i + 1, len(t) - 1)
        span = t[nxt] - t[i]
        a = np.where((nxt > i) & (span > 0), (r[nxt] - r0) / np.where(span > 0, span, 1.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lin = du / r0
            disc = np.sqrt(np.maximum(r0 * r0 + 2.0 * a * du, 0.0))
            quad = 2.0 * du / (r0 + disc)  # stable root of a/2 x^2 + r0 x = du
        x = np.where(a == 0.0, lin, quad)
        return t[i] + np.where(du == 0.0, 0.0, x)


def ramp_profile(start_rps: float, end_rps: float, ramp_s: float, hold_s: float = 0.0) -> RateProfile:
    if start_rps < 0 or end_rps < 0 or start_rps + end_rps <= 0:
        raise ArrivalError("ramp rates must be >= 0 and not both 0")
    if ramp_s <= 0 or hold_s < 0:
        raise ArrivalError("ramp duration must be > 0 (and the hold before it >= 0)")
    if hold_s > 0:
        return RateProfile((0.0, hold_s, hold_s + ramp_s), (start_rps, start_rps, end_rps))
    return RateProfile((0.0, ramp_s), (start_rps, end_rps))


def parse_ramp(text: str) -> tuple[float, float, float]:
    """`START:END:DURATION` (e.g. `10:200:60s`, `5:50:2m`) -> (start_rps, end_rps, duration_s)."""
    m = _RAMP.match(text or "")
    try:
        if not m:
            raise ValueError
        start, end, dur = float(m.group(1)), float(m.group(2)), float(m.group(3)) * (60 if m.group(4) == "m" else 1)
    except ValueError:
        raise ArrivalError(
            f"ramp {text!r}: expected START:END:DURATION in req/s and seconds, e.g. 10:200:60s"
        ) from None
    if start < 0 or end < 0 or start + end <= 0 or dur <= 0:
        raise ArrivalError(f"ramp {text!r}: rates must be >= 0 (not both 0) and the duration > 0")
    return start, end, dur


def burst_profile(rate_rps: float, on_s: float, off_s: float, horizon_s: float) -> RateProfile:
    """`rate_rps` during each on period, 0 during each off period, from t = 0 (an on period) to `horizon_s`."""
    if rate_rps <= 0 or on_s <= 0 or off_s < 0:
        raise ArrivalError("burst needs a rate > 0, on period > 0 s and off period >= 0 s")
    if off_s == 0:
        return RateProfile((0.0,), (rate_rps,))
    times, rates = [0.0], [rate_rps]
    t = 0.0
    while t < horizon_s:
        times += [t + on_s, t + on_s, t + on_s + off_s, t + on_s + off_s]
        rates += [rate_rps, 0.0, 0.0, rate_rps]
        t += on_s + off_s
    return RateProfile(tuple(times), tuple(rates))


def profile_offsets(
    profile: RateProfile, duration_s: float, process: Process, seed: int, *, stream: int = 0, streams: int = 1
) -> list[float]:
    """Instants of `process` on `profile` in [0, duration_s) for stream `stream` of `streams` (module docstring)."""
    _check_stream(stream, streams)
    total = profile.cumulative(duration_s)
    if process == "constant":
        n = int(math.ceil(total - 1e-9))
        u = np.arange(stream, n, streams, dtype=np.float64)
    elif process == "poisson":
        rng = np.random.default_rng(derive_seed(seed, stream))
        parts, last = [], 0.0
        while last < total:
            g = last + np.cumsum(rng.exponential(float(streams), size=max(64, int(total / streams * 1.1) + 64)))
            parts.append(g)
            last = float(g[-1])
        u = np.concatenate(parts) if parts else np.empty(0)
        u = u[u < total]
    else:
        raise ArrivalError(f"unknown process {process!r} (constant|poisson)")
    t = profile.inverse(u)
    return [float(x) for x in t[t < duration_s]]


# ---- traces -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceSpec:
    path: Path
    column: str | None = None


def parse_trace_spec(arrival: str) -> TraceSpec:
    """`trace:FILE` or `trace:FILE:COLUMN` (COLUMN: a name or a 0-based index, no `/` or `.` in it)."""
    if not arrival.startswith("trace:") or len(arrival) <= len("trace:"):
        raise ArrivalError(f"arrival {arrival!r}: expected trace:FILE or trace:FILE:COLUMN")
    rest = arrival[len("trace:") :]
    head, sep, tail = rest.rpartition(":")
    if sep and head and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ -]*|\d+", tail):
        return TraceSpec(Path(head), tail)
    return TraceSpec(Path(rest), None)


def parse_trace(text: str, column: str | None = None, source: str = "trace") -> list[float]:
    """Offsets (s) from a trace's text, sorted, shifted to start at 0."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ArrivalError(f"{source}: no timestamps (one number per line, or a CSV with a header)")
    vals: list[float] = []
    first = lines[0].strip()
    if column is None and "," not in first and _is_number(first):
        for k, ln in enumerate(lines, 1):
            if not _is_number(ln.strip()):
                raise ArrivalError(f"{source}: entry {k} ({ln.strip()!r}) is not a number of seconds")
            vals.append(float(ln))
    else:
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        names = [n.strip() for n in reader.fieldnames or []]
        reader.fieldnames = names
        col = _pick_column(names, column, source)
        for k, row in enumerate(reader, 2):
            v = (row.get(col) or "").strip()
            if not _is_number(v):
                raise ArrivalError(f"{source}: row {k}, column {col!r}: {v!r} is not a number of seconds")
            vals.append(float(v))
    arr = np.sort(np.asarray(vals, dtype=np.float64))
    if not np.all(np.isfinite(arr)):
        raise ArrivalError(f"{source}: timestamps must be finite numbers")
    return [float(x) for x in arr - arr[0]]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _pick_column(names: list[str], column: str | None, source: str) -> str:
    if column is not None:
        if column.isdigit() and int(column) < len(names):
            return names[int(column)]
        if column in names:
            return column
        raise ArrivalError(f"{source}: no column {column!r} (columns: {', '.join(names)})")
    lower = {n.lower(): n for n in names}
    for cand in TRACE_COLUMNS:
        if cand in lower:
            return lower[cand]
    if len(names) == 1:
        return names[0]
    raise ArrivalError(
        f"{source}: which column holds the timestamps? none of {', '.join(TRACE_COLUMNS)} among "
        f"{', '.join(names)}; name it: trace:FILE:COLUMN"
    )


def read_trace(spec: TraceSpec) -> list[float]:
    try:
        text = spec.path.read_text(encoding="utf-8")
    except OSError as e:
        raise ArrivalError(f"trace {spec.path}: cannot read ({e.strerror or e})") from None
    return parse_trace(text, spec.column, source=f"trace {spec.path}")


def trace_rate(offsets: Sequence[float]) -> float | None:
    """The trace's mean rate, (n - 1) / span (None for fewer than 2 instants or a zero span)."""
    if len(offsets) < 2 or offsets[-1] <= offsets[0]:
        return None
    return (len(offsets) - 1) / (offsets[-1] - offsets[0])


def scale_trace(
    offsets: Sequence[float], *, speedup: float | None = None, rate_rps: float | None = None
) -> list[float]:
    """Offsets divided by `speedup`, or stretched so the mean rate is `rate_rps` (not both)."""
    if speedup is not None and rate_rps is not None:
        raise ArrivalError("give a trace either speedup or rate, not both")
    if speedup is not None:
        if speedup <= 0:
            raise ArrivalError("speedup must be > 0")
        return [t / speedup for t in offsets]
    if rate_rps is not None:
        r = trace_rate(offsets)
        if rate_rps <= 0 or r is None:
            raise ArrivalError("rescaling a trace to a rate needs rate > 0 and at least 2 distinct instants")
        return [t * (r / rate_rps) for t in offsets]
    return list(offsets)


def trace_offsets(offsets: Sequence[float], duration_s: float, *, stream: int = 0, streams: int = 1) -> list[float]:
    """Entries stream, stream + streams, ... of the (scaled) trace that fall in [0, duration_s)."""
    _check_stream(stream, streams)
    return [t for t in list(offsets)[stream::streams] if t < duration_s]


# ---- timelines -------------------------------------------------------------------------------------------
def offered_per_second(offsets: Sequence[float], duration_s: float) -> list[int]:
    """Scheduled arrivals in each second [s, s + 1) of [0, duration_s) (the report's offered timeline)."""
    n = int(math.ceil(duration_s - 1e-9))
    counts = np.bincount(np.floor(np.asarray(offsets, dtype=np.float64)).astype(np.int64), minlength=n)
    return [int(c) for c in counts[:n]]


def expected_per_second(profile: RateProfile, duration_s: float) -> list[float]:
    """L(s + 1) - L(s) for each second of [0, duration_s): the profile's expected count per second."""
    n = int(math.ceil(duration_s - 1e-9))
    return [profile.cumulative(min(s + 1.0, duration_s)) - profile.cumulative(float(s)) for s in range(n)]


# ---- dispatch ---------------------------------------------------------------------------------------------
def shaped_offsets(
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
    """The schedule of a shaped arrival (called by loadgen.engine.schedule.arrival_offsets):
    - `ramp` given: `arrival` constant | poisson on ramp_profile(parse_ramp(ramp), hold = ramp_hold_s);
    - `burst`: Poisson on burst_profile(rate_rps, burst_on_s, burst_off_s);
    - `trace:FILE[:COLUMN]`: the trace scaled by `speedup` or to `rate_rps` (neither: as recorded)."""
    if ramp is not None:
        if arrival not in ("constant", "poisson"):
            raise ArrivalError(f"a ramp shapes constant or poisson arrivals, not {arrival!r}")
        start, end, dur = parse_ramp(ramp)
        return profile_offsets(
            ramp_profile(start, end, dur, ramp_hold_s),
            duration_s,
            arrival,  # type: ignore[arg-type]
            seed,
            stream=stream,
            streams=streams,
        )
    if arrival == "burst":
        if not rate_rps:
            raise ArrivalError("burst arrivals need a rate (req/s during the on periods)")
        return profile_offsets(
            burst_profile(rate_rps, burst_on_s, burst_off_s, duration_s),
            duration_s,
            "poisson",
            seed,
            stream=stream,
            streams=streams,
        )
    if arrival.startswith("trace:"):
        offsets = scale_trace(read_trace(parse_trace_spec(arrival)), speedup=speedup, rate_rps=rate_rps)
        return trace_offsets(offsets, duration_s, stream=stream, streams=streams)
    raise ArrivalError(f"unknown arrival {arrival!r} (poisson | constant | burst | trace:FILE[:COLUMN])")
