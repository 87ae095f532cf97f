"""The peak search's records (pure data): outcomes, one probe, a pooled verdict, the search's result. loadgen.search.peak
runs the search and re-exports these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["pass", "fail", "undecided", "generator_limited"]
Phase = Literal["bracket", "bisect", "confirm"]
Status = Literal["found", "never_passed", "capped", "probe_limit", "generator_limited"]
Measure = Callable[[float], tuple[Any, dict[str, Any]]]
PooledJudge = Callable[[float, list["Probe"]], tuple[Any, dict[str, Any]]]
OUTCOMES = ("pass", "fail", "undecided", "generator_limited")


@dataclass
class Probe:
    rate_rps: float
    outcome: Outcome
    phase: Phase
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def steers_up(self) -> bool:
        """Does the search count this run as passing when it steers (bracket, bisect)? Its verdict's, unless the
        caller says otherwise in info["steer"] (the pooled rule: a run on course to pass the pooled verdict)."""
        return bool(self.info.get("steer", self.outcome) == "pass")


@dataclass
class PooledVerdict:
    """One verdict over the first `runs` runs at a rate, their queries pooled (the pooled confirmation)."""

    rate_rps: float
    outcome: Outcome
    runs: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


@dataclass
class PeakResult:
    """Outcome of a search. `peak_rps` is None when no rate was confirmed to pass."""

    peak_rps: float | None
    status: Status
    reason: str
    lower_rps: float | None  # highest confirmed passing rate (== peak_rps)
    upper_rps: float | None  # lowest rate above it that did not pass (None if none did)
    precision: float
    probes: list[Probe]
    confirm: int = 3
    confirmations: list[Probe] = field(default_factory=list)  # every run at the answer, the first included
    non_monotone: list[dict[str, Any]] = field(default_factory=list)
    generator_ceiling_rps: float | None = None  # lowest rate the generator could not offer
    confirm_rule: Literal["pooled", "majority"] = "majority"
    pooled_verdicts: list[PooledVerdict] = field(default_factory=list)  # every pooled verdict made, in order

    @property
    def capped(self) -> bool:
        return self.status == "capped"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for p, src in zip(d["probes"], self.probes):
            p["passed"] = src.passed
        d["confirmations"] = [{"rate_rps": c.rate_rps, "outcome": c.outcome} for c in self.confirmations]
        d["confirmed_passes"] = sum(c.passed for c in self.confirmations)
        d["capped"] = self.capped
        d["relative_gap"] = (
            None
            if self.lower_rps is None or self.upper_rps is None or self.upper_rps <= 0
            else (self.upper_rps - self.lower_rps) / self.upper_rps
        )
        return d
