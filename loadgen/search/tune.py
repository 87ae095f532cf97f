"""The configuration advisor's search, pure: which server configuration to deploy (issue #12, `inferload tune`).

Nothing here starts a server or sends a request. The search is driven by an injected
`measure(config) -> Measurement` (the CLI starts a local server with the configuration's overrides and runs the
matrix measurements: peak under the SLO, max throughput, p99 at low load, RSS; tests pass simulated response
surfaces). Checkpointing, the Pareto frontier, the tune document and config.toml rendering live in
`loadgen.search.tune_doc`.

**Space.** Dimensions, in the order the quick search climbs them: `max_batch_size`, `instances` (each instance gets
`intra_op_threads = max(1, cpus // instances)`, so instances x threads fits the CPUs), `max_queue_delay_ms`,
optionally `preferred_batch_sizes` (variants; sizes above a configuration's max_batch_size are dropped).
Start: the lower median batch size, 1 instance (all CPUs to it), the smallest delay, the first preferred variant.

**Objective.** score = T^wt / L^wl, with T the throughput figure (the peak rate under the SLO when an SLO is set,
else the max throughput) and L the p99 at low load; weights normalised to wt + wl = 1: throughput (1, 0),
latency (0, 1), balanced (0.5, 0.5). A weighted geometric mean: rankings and gains do not depend on units or on a
reference configuration (a gain of 5% means a score ratio of 1.05); reports divide by the start's score.

**Constraints.** A configuration is feasible when (with an SLO) some rate met it, T >= min_throughput_rps and
rss_mb <= max_memory_mb. Feasible configurations always rank above infeasible ones.

**Quick search** (coordinate ascent): from the start, for each dimension in order, step to the neighbouring value
upwards; keep stepping until 2 consecutive steps each gain < 5% over the best so far (a plateau or a decline
ends the climb; one noisy dip does not); when the upward climb improved nothing, climb downwards the same way.
The best point becomes the current one; passes repeat (at most 2) while a pass changed something. Then the top 3
are measured once more and everything is ranked on pooled figures (the median of each figure over a
configuration's measurements; a missing peak counts as 0). **Grid search** measures every configuration, then
re-measures the top 3 the same way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from loadgen.search.tune_space import DIMENSIONS, Dimension, TuneConfig, TuneSpace

__all__ = [
    "DIMENSIONS",
    "Dimension",
    "TuneConfig",
    "TuneSpace",
    "Measurement",
    "pool",
    "Objective",
    "Constraints",
    "score",
    "Evaluated",
    "gain",
    "Ledger",
    "ranked",
    "Step",
    "TuneResult",
    "quick_search",
    "grid_search",
]

ObjectiveName = Literal["throughput", "latency", "balanced"]
MIN_GAIN = 0.05
PATIENCE = 2
TOP_REMEASURE = 3
MAX_PASSES = 2


@dataclass(frozen=True)
class Measurement:
    """What `measure(config)` returns. Rates in requests/s, latencies in ms, memory in MB (server RSS)."""

    peak_rps: float | None  # highest rate meeting the SLO (None: none did, or no SLO)
    peak_status: str | None  # the peak search's status: found, capped, never_passed, generator_limited, ...
    max_throughput_rps: float | None
    p99_low_load_ms: float | None
    rss_mb: float | None = None
    raw_rps: float | None = None  # in-process limit for this configuration, when known
    p99_at_peak_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def pool(ms: Iterable[Measurement]) -> Measurement:
    """Median of each figure over repeated measurements of one configuration; a missing peak counts as 0 (a run
    that found none pulls the median down); the most common peak status."""
    ms = list(ms)
    if not ms:
        raise ValueError("nothing to pool")
    if len(ms) == 1:
        return ms[0]

    def med(vals: list[float | None], missing_as_zero: bool = False) -> float | None:
        v = (
            [0.0 if x is None else float(x) for x in vals]
            if missing_as_zero
            else [float(x) for x in vals if x is not None]
        )
        if not v or (missing_as_zero and all(x is None for x in vals)):
            return None
        m = statistics.median(v)
        return None if missing_as_zero and m <= 0 else m

    statuses = [m.peak_status for m in ms if m.peak_status is not None]
    return Measurement(
        peak_rps=med([m.peak_rps for m in ms], missing_as_zero=True),
        peak_status=max(statuses, key=statuses.count) if statuses else None,
        max_throughput_rps=med([m.max_throughput_rps for m in ms]),
        p99_low_load_ms=med([m.p99_low_load_ms for m in ms]),
        rss_mb=med([m.rss_mb for m in ms]),
        raw_rps=med([m.raw_rps for m in ms]),
        p99_at_peak_ms=med([m.p99_at_peak_ms for m in ms]),
    )


@dataclass(frozen=True)
class Objective:
    """Weights of throughput and latency, normalised to sum 1 (see the module docstring for the formula)."""

    throughput: float = 0.5
    latency: float = 0.5
    name: str = "balanced"

    def __post_init__(self) -> None:
        if self.throughput < 0 or self.latency < 0 or self.throughput + self.latency <= 0:
            raise ValueError("objective weights must be >= 0 and not both 0")
        s = self.throughput + self.latency
        object.__setattr__(self, "throughput", self.throughput / s)
        object.__setattr__(self, "latency", self.latency / s)

    @classmethod
    def named(cls, name: str) -> Objective:
        w = {"throughput": (1.0, 0.0), "latency": (0.0, 1.0), "balanced": (0.5, 0.5)}.get(name)
        if w is None:
            raise ValueError(f"objective {name!r}: expected throughput | latency | balanced")
        return cls(w[0], w[1], name)


@dataclass(frozen=True)
class Constraints:
    slo_p99_ms: float | None = None
    min_throughput_rps: float | None = None
    max_memory_mb: float | None = None

    def throughput_of(self, m: Measurement) -> float | None:
        """The throughput figure the objective uses: the peak under the SLO with one, else max throughput."""
        return m.peak_rps if self.slo_p99_ms is not None else m.max_throughput_rps

    def violations(self, m: Measurement) -> list[str]:
        out = []
        if self.slo_p99_ms is not None and not m.peak_rps:
            out.append(f"no rate met p99 <= {self.slo_p99_ms:g} ms (peak search: {m.peak_status or 'no peak'})")
        t = self.throughput_of(m)
        if self.min_throughput_rps is not None and (t or 0.0) < self.min_throughput_rps:
            out.append(f"throughput {t or 0:.4g} req/s < the minimum {self.min_throughput_rps:g} req/s")
        if self.max_memory_mb is not None and m.rss_mb is not None and m.rss_mb > self.max_memory_mb:
            out.append(f"server RSS {m.rss_mb:.0f} MB > the maximum {self.max_memory_mb:g} MB")
        return out


def score(m: Measurement, objective: Objective, constraints: Constraints) -> float | None:
    """T^wt / L^wl (None when a figure the objective weighs is missing or not positive)."""
    t, lat = constraints.throughput_of(m), m.p99_low_load_ms
    if objective.throughput > 0 and not (t and t > 0):
        return None
    if objective.latency > 0 and not (lat and lat > 0):
        return None
    return float((t or 1.0) ** objective.throughput / (lat or 1.0) ** objective.latency)


@dataclass(frozen=True)
class Evaluated:
    """A measured configuration: its measurements, pooled figures, score and feasibility."""

    config: TuneConfig
    measurements: tuple[Measurement, ...]
    pooled: Measurement
    score: float | None
    violations: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations and self.score is not None

    @property
    def key(self) -> tuple[bool, float]:
        """Sort key, higher is better: feasible first, then score."""
        return self.feasible, -math.inf if self.score is None else self.score


def gain(candidate: Evaluated, best: Evaluated) -> float:
    """Relative improvement of `candidate` over `best` (inf when it becomes feasible; -1 when it stops being)."""
    if candidate.feasible != best.feasible:
        return math.inf if candidate.feasible else -1.0
    if candidate.score is None or best.score is None:
        return math.inf if best.score is None and candidate.score is not None else 0.0
    return candidate.score / best.score - 1.0


class MeasureFn(Protocol):
    def __call__(self, config: TuneConfig) -> Measurement: ...


@dataclass
class Ledger:
    """Every measurement of the search, re-using earlier ones (a checkpoint's) before measuring anew.
    The k-th request for a configuration's measurement is served by its k-th recorded one when there is one."""

    measure: MeasureFn
    objective: Objective
    constraints: Constraints
    recorded: dict[str, list[Measurement]] = field(default_factory=dict)
    on_new: Callable[[TuneConfig, Measurement], None] | None = None
    used: dict[str, int] = field(default_factory=dict)
    configs: dict[str, TuneConfig] = field(default_factory=dict)  # first-measured order
    calls: int = 0
    reused: int = 0

    def take(self, cfg: TuneConfig) -> Evaluated:
        """One more measurement of `cfg` (recorded or new)."""
        have = self.recorded.setdefault(cfg.name, [])
        k = self.used.get(cfg.name, 0)
        if k < len(have):
            self.reused += 1
        else:
            m = self.measure(cfg)
            self.calls += 1
            have.append(m)
            if self.on_new is not None:
                self.on_new(cfg, m)
        self.used[cfg.name] = k + 1
        self.configs.setdefault(cfg.name, cfg)
        return self.evaluated(cfg)

    def get(self, cfg: TuneConfig) -> Evaluated:
        """The configuration's evaluation, measuring it only if it has never been measured in this search."""
        return self.evaluated(cfg) if self.used.get(cfg.name) else self.take(cfg)

    def evaluated(self, cfg: TuneConfig) -> Evaluated:
        ms = tuple(self.recorded[cfg.name][: self.used[cfg.name]])
        p = pool(ms)
        return Evaluated(cfg, ms, p, score(p, self.objective, self.constraints), tuple(self.constraints.violations(p)))

    def all(self) -> list[Evaluated]:
        return [self.evaluated(c) for c in self.configs.values()]


def ranked(evals: Iterable[Evaluated]) -> list[Evaluated]:
    """Best first (feasible before infeasible, then by score; ties by name for a stable order)."""
    return sorted(evals, key=lambda e: (not e.key[0], -e.key[1], e.config.name))


@dataclass(frozen=True)
class Step:
    """One move of the quick search (for the report): the candidate, its gain over the best so far."""

    dimension: str
    config: str
    gain: float
    accepted: bool


@dataclass(frozen=True)
class TuneResult:
    method: Literal["quick", "grid"]
    objective: Objective
    constraints: Constraints
    evaluated: tuple[Evaluated, ...]  # first-measured order, pooled over every measurement
    ranking: tuple[str, ...]  # config names, best first
    recommended: TuneConfig | None  # None when no configuration is feasible
    start: TuneConfig
    steps: tuple[Step, ...]
    measure_calls: int  # measurements taken in this process
    reused: int  # measurements served from the checkpoint

    def by_name(self, name: str) -> Evaluated:
        return next(e for e in self.evaluated if e.config.name == name)


def _climb(
    ledger: Ledger,
    space: TuneSpace,
    current: TuneConfig,
    dim: Dimension,
    steps: list[Step],
    min_gain: float,
    patience: int,
) -> TuneConfig:
    line, i0 = space.neighbours(current, dim)
    best = ledger.get(current)
    start_key = best.key
    for direction in (1, -1):
        slow, i = 0, i0
        while slow < patience:
            i += direction
            if not 0 <= i < len(line):
                break
            cand = ledger.get(line[i])
            g = gain(cand, best)
            better = cand.key > best.key
            steps.append(Step(dim, cand.config.name, g, better))
            if better:
                best = cand
            slow = 0 if g >= min_gain else slow + 1
        if best.key > start_key:  # the upward climb found something: no need to look down
            break
    return best.config


def _finish(
    ledger: Ledger, method: Literal["quick", "grid"], start: TuneConfig, steps: list[Step], top: int
) -> TuneResult:
    for e in ranked(ledger.all())[:top]:
        ledger.take(e.config)
    order = ranked(ledger.all())
    for _ in range(top):  # a once-measured config that rose to the lead is confirmed too
        if not order or len(order[0].measurements) > 1 or not order[0].feasible:
            break
        ledger.take(order[0].config)
        order = ranked(ledger.all())
    rec = order[0].config if order and order[0].feasible else None
    return TuneResult(
        method,
        ledger.objective,
        ledger.constraints,
        tuple(ledger.all()),
        tuple(e.config.name for e in order),
        rec,
        start,
        tuple(steps),
        ledger.calls,
        ledger.reused,
    )


def quick_search(
    space: TuneSpace,
    measure: MeasureFn,
    *,
    objective: Objective | None = None,
    constraints: Constraints | None = None,
    recorded: dict[str, list[Measurement]] | None = None,
    on_new: Callable[[TuneConfig, Measurement], None] | None = None,
    min_gain: float = MIN_GAIN,
    patience: int = PATIENCE,
    top: int = TOP_REMEASURE,
    max_passes: int = MAX_PASSES,
) -> TuneResult:
    """Coordinate ascent (module docstring). `recorded`: earlier measurements by config name (a checkpoint's);
    `on_new(config, measurement)` is called after every new measurement (to write the checkpoint)."""
    ledger = Ledger(
        measure, objective or Objective.named("balanced"), constraints or Constraints(), dict(recorded or {}), on_new
    )
    start = current = space.start()
    steps: list[Step] = []
    ledger.get(current)
    for _ in range(max_passes):
        before = current
        for dim in space.dimensions():
            current = _climb(ledger, space, current, dim, steps, min_gain, patience)
        if current == before:
            break
    return _finish(ledger, "quick", start, steps, top)


def grid_search(
    space: TuneSpace,
    measure: MeasureFn,
    *,
    objective: Objective | None = None,
    constraints: Constraints | None = None,
    recorded: dict[str, list[Measurement]] | None = None,
    on_new: Callable[[TuneConfig, Measurement], None] | None = None,
    top: int = TOP_REMEASURE,
) -> TuneResult:
    """Measure every configuration of the space once, then re-measure the top `top` and rank on pooled figures."""
    ledger = Ledger(
        measure, objective or Objective.named("balanced"), constraints or Constraints(), dict(recorded or {}), on_new
    )
    for cfg in space.grid():
        ledger.get(cfg)
    return _finish(ledger, "grid", space.start(), [], top)
