"""Peak search: the highest open-loop rate that meets a latency SLO (pure; no I/O, no clocks).

The reference is MLPerf LoadGen's FindPeakPerformance (Server scenario): first *bracket* the answer — start
at a rate, multiply it up while runs pass (or divide it down while they fail) until one rate passes and a
higher one fails — then *bisect* between the two until the bracket is narrower than the requested relative
precision. The answer is the lower end of the final bracket: a rate that was actually measured and passed.

`measure(rate_rps) -> (passed, info)` does the work: the caller runs a full load test at that rate and says
whether it passed (a VALID run whose chosen percentile met the SLO). `info` is any JSON-able dict; it is kept
in the probe log so a report can show every run the search made.

Noise: a real server's p99 is noisy near the SLO, so a rate can pass once and fail later. Bisection keeps the
invariant "lower passed, upper failed" from the probes it made, so the result is always a rate that passed,
within `precision` of the point where the last bracket flipped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

Measure = Callable[[float], tuple[bool, dict[str, Any]]]

Status = Literal["found", "never_passed", "capped", "probe_limit"]


@dataclass
class Probe:
    rate_rps: float
    passed: bool
    phase: Literal["bracket", "bisect"]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class PeakResult:
    """Outcome of a search. `peak_rps` is None when no probed rate passed."""

    peak_rps: float | None
    status: Status
    reason: str
    lower_rps: float | None  # highest rate that passed (== peak_rps)
    upper_rps: float | None  # lowest rate above it that failed (None if never failed)
    precision: float
    probes: list[Probe]

    @property
    def capped(self) -> bool:
        return self.status == "capped"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["capped"] = self.capped
        d["relative_gap"] = (
            None
            if self.lower_rps is None or self.upper_rps is None or self.upper_rps <= 0
            else (self.upper_rps - self.lower_rps) / self.upper_rps
        )
        return d


def find_peak(
    measure: Measure,
    *,
    start_rps: float,
    precision: float = 0.05,
    growth: float = 2.0,
    max_rps: float | None = None,
    min_rps: float | None = None,
    max_probes: int = 30,
) -> PeakResult:
    """Bracket then bisect. See the module docstring.

    precision: stop when (upper - lower) / upper <= precision (relative width of the bracket).
    growth: factor for the bracketing steps (> 1); MLPerf doubles.
    max_rps: never probe above this; if it passes there the result is the cap, flagged `capped`.
    min_rps: never probe below this (default start_rps / 64); if it still fails → `never_passed`.
    max_probes: hard limit on measurements (each is a full load test); reaching it → `probe_limit`
        with the best bracket so far.
    """
    if start_rps <= 0:
        raise ValueError("start_rps must be > 0")
    if not 0 < precision < 1:
        raise ValueError("precision must be in (0, 1), e.g. 0.05 for 5%")
    if growth <= 1:
        raise ValueError("growth must be > 1")
    if max_rps is not None:
        if max_rps <= 0:
            raise ValueError("max_rps must be > 0")
        start_rps = min(start_rps, max_rps)
    floor = min_rps if min_rps is not None else start_rps / 64.0
    if floor <= 0 or floor > start_rps:
        raise ValueError("min_rps must be > 0 and <= start_rps")

    probes: list[Probe] = []
    last_fail_info: dict[str, Any] = {}

    def probe(rate: float, phase: Literal["bracket", "bisect"]) -> bool:
        nonlocal last_fail_info
        passed, info = measure(rate)
        info = dict(info or {})
        probes.append(Probe(rate_rps=rate, passed=bool(passed), phase=phase, info=info))
        if not passed:
            last_fail_info = info
        return bool(passed)

    def result(status: Status, lower: float | None, upper: float | None, reason: str) -> PeakResult:
        return PeakResult(lower, status, reason, lower, upper, precision, probes)

    # --- bracket -------------------------------------------------------------------------------------------
    lower: float | None = None
    upper: float | None = None
    rate = start_rps
    if probe(rate, "bracket"):
        lower = rate
        while True:
            if max_rps is not None and lower >= max_rps:
                return result("capped", lower, None,
                              f"passed at the max rate cap {max_rps:g} req/s; the real peak may be higher "
                              "(raise --max-rate)")
            if len(probes) >= max_probes:
                return result("probe_limit", lower, None,
                              f"probe limit ({max_probes}) reached while still passing at {lower:g} req/s")
            nxt = lower * growth
            if max_rps is not None:
                nxt = min(nxt, max_rps)
            if probe(nxt, "bracket"):
                lower = nxt
            else:
                upper = nxt
                break
    else:
        upper = rate
        while True:
            if upper <= floor * (1 + 1e-9):
                return result("never_passed", None, upper,
                              f"no probed rate passed, down to {upper:g} req/s; last failure: "
                              f"{_reason(last_fail_info)}")
            if len(probes) >= max_probes:
                return result("probe_limit", None, upper,
                              f"probe limit ({max_probes}) reached before any rate passed")
            nxt = max(upper / growth, floor)
            if probe(nxt, "bracket"):
                lower = nxt
                break
            upper = nxt

    # --- bisect --------------------------------------------------------------------------------------------
    assert lower is not None and upper is not None
    while (upper - lower) / upper > precision:
        if len(probes) >= max_probes:
            return result("probe_limit", lower, upper,
                          f"probe limit ({max_probes}) reached; bracket [{lower:g}, {upper:g}] req/s is "
                          f"wider than {precision:.0%}")
        mid = (lower + upper) / 2.0
        if probe(mid, "bisect"):
            lower = mid
        else:
            upper = mid
    upper_info = next((p.info for p in reversed(probes) if not p.passed and p.rate_rps == upper), last_fail_info)
    return result("found", lower, upper,
                  f"highest passing rate {lower:.4g} req/s; {upper:.4g} req/s failed "
                  f"({_reason(upper_info)})")


def _reason(info: dict[str, Any]) -> str:
    r = info.get("reason") if info else None
    return str(r) if r else "no reason recorded"
