"""Peak search: the highest open-loop rate whose latency percentile meets an SLO (pure; no I/O, no clocks).

The reference is MLPerf LoadGen's FindPeakPerformance (Server scenario): first *bracket* the answer — start
at a rate, multiply it up while probes pass (or divide it down while they fail) until one rate passes and a
higher one does not — then *bisect* between the two until the bracket is narrower than the requested relative
precision. Then *confirm* both ends of the final bracket. The answer must pass its confirmation, otherwise the rate
counts as failed and the search goes on below it; the rate just above it must not, otherwise it becomes the answer's
candidate and the search goes on above it (near the bound a single run is a coin flip; judging both ends alike keeps
the answer from drifting only downwards). The answer is always a rate that was measured and confirmed. Two rules:

- **pooled** (when the caller gives `pooled`, as `inferload peak` does): a rate is confirmed by ONE verdict over its
  first `confirm` runs pooled (measured up to that number first). The number is fixed before anything is seen there,
  so the verdict is one honest statement at the stated confidence (no optional stopping), and it holds the bound to
  the percentile its pooled query count allows (loadgen.results.confidence.coin_flip_percentile: ~p99.40 for three
  1,100-query runs against ~p99.67 for one). The verdict is made once per rate and never re-judged with more runs.
  A rate above the answer whose own run already *failed* (the percentile shown over the bound with the stated
  confidence, or a run INVALID for the server) is not pooled again: a verdict with more queries would almost never
  reverse it. Bracket and bisection may be steered by `info["steer"]` (the caller's "pass" for a run on course to pass
  the pooled verdict though undecided on its own), so that they look where the pooled verdict will decide; a run
  budget spent before any confirmation still reports only a rate whose own verdict passed.
  A binomial verdict's stated confidence assumes independent queries; a queue's tail comes in bursts. The caller's
  verdicts weigh what the runs' per-second windows show of them (loadgen.results.bursts), which a burst rarer than
  one per run escapes (docs/mlperf.md, tests/curves/peak_sim.py).
- **majority** (no `pooled`): measure the rate again until a majority of `confirm` runs agrees. A majority of
  verdicts only sharpens the rate at which one verdict passes as often as not; it does not move it.

`measure(rate_rps) -> (outcome, info)`, where outcome is
  - "pass": the run was VALID and its percentile meets the SLO with the stated confidence;
  - "fail": it exceeds the SLO, or the run was INVALID for a reason that lies with the server;
  - "undecided": VALID, but too few queries to decide (after any extension the caller made): not a pass;
  - "generator_limited": the load generator, not the server, fell short (measured again already by the
    caller): the search learns nothing about the server there and never reports it as a server failure.
`info` is any JSON-able dict, kept in the probe log.

Noise and non-monotone curves: bisection keeps "lower passed, upper did not" from its own probes. Latency need not
be monotone in load (VMs: idle CPUs wake slowly, so low rates can show worse tails): when nothing passes from
the start down to the floor, the search looks up to LOOK_ABOVE_STEPS rates above the start before it concludes
`never_passed`. A rate *below* the answer that did not pass is reported in `non_monotone`, never smoothed away.

Statuses a user can act on: found; capped (passed at the highest rate allowed); generator_limited (the bracket's
top is a rate the generator could not offer: add workers or another machine); never_passed (no rate passed down
to the floor: the lowest rate tried and why); probe_limit (the run budget ran out: the best bracket so far).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

from loadgen.search.peak_types import (
    OUTCOMES,
    Measure,
    Outcome,
    PeakResult,
    Phase,
    PooledJudge,
    PooledVerdict,
    Probe,
    Status,
)

__all__ = ["OUTCOMES", "Measure", "Outcome", "PeakResult", "Phase", "PooledJudge", "PooledVerdict", "Probe", "Status"]
__all__ += ["find_peak"]

LOOK_ABOVE_STEPS = 3


class _Budget(Exception):
    pass


def find_peak(
    measure: Measure,
    *,
    start_rps: float,
    precision: float = 0.05,
    growth: float = 2.0,
    max_rps: float | None = None,
    min_rps: float | None = None,
    max_probes: int = 30,
    confirm: int = 3,
    confirm_upper: bool = True,
    pooled: PooledJudge | None = None,
    measure_confirm: Measure | None = None,
) -> PeakResult:
    """Bracket, bisect, confirm. See the module docstring.

    precision: stop bisecting when (upper - lower) / upper <= precision.
    growth: factor of the bracketing steps (> 1); MLPerf doubles.
    max_rps: never probe above this; a confirmed pass there is reported `capped`.
    min_rps: never probe below this (default start_rps / 64); nothing passing down to it -> `never_passed`.
    max_probes: hard limit on measurements (each a full load test), confirmations included -> `probe_limit`.
    confirm: runs at each end of the bracket (the first included): pooled into one verdict (`pooled`), or a majority
        must pass. 1 = no confirmation.
    confirm_upper: also confirm that the rate above the answer does not pass (when it does, the search goes on above
        it): noise near the bound then moves the answer both ways, not only down.
    pooled: `pooled(rate, runs) -> (outcome, info)`, one verdict over the given runs' queries pooled (module
        docstring). None: the majority rule.
    measure_confirm: measures a confirmation run (default `measure`); the caller may size it differently (no
        extension: the pooled verdict decides).
    """
    if start_rps <= 0:
        raise ValueError("start_rps must be > 0")
    if not 0 < precision < 1:
        raise ValueError("precision must be in (0, 1), e.g. 0.05 for 5%")
    if growth <= 1:
        raise ValueError("growth must be > 1")
    if confirm < 1:
        raise ValueError("confirm must be >= 1")
    if max_rps is not None:
        if max_rps <= 0:
            raise ValueError("max_rps must be > 0")
        start_rps = min(start_rps, max_rps)
    floor = min_rps if min_rps is not None else start_rps / 64.0
    if floor <= 0 or floor > start_rps:
        raise ValueError("min_rps must be > 0 and <= start_rps")

    probes: list[Probe] = []
    refuted: set[float] = set()  # rates that passed once but failed their confirmation
    verdicts: dict[float, PooledVerdict] = {}  # the pooled verdict of each rate confirmed so far (made once)
    use_pooled = pooled is not None and confirm > 1

    def probe(rate: float, phase: Phase) -> Outcome:
        if len(probes) >= max_probes:
            raise _Budget
        outcome, info = (measure_confirm or measure)(rate) if phase == "confirm" else measure(rate)
        if outcome is True or outcome is False:  # a plain pass/fail measure
            outcome = "pass" if outcome else "fail"
        if outcome not in OUTCOMES:
            raise ValueError(f"measure returned {outcome!r}; expected one of {OUTCOMES}")
        probes.append(Probe(rate_rps=rate, outcome=outcome, phase=phase, info=dict(info or {})))
        if probes[-1].steers_up:
            return "pass"
        return "fail" if outcome == "pass" else cast(Outcome, outcome)

    def at(rate: float) -> list[Probe]:
        return [p for p in probes if p.rate_rps == rate]

    def passed_so_far(rate: float) -> bool:
        """Did `rate` pass so far: its pooled verdict when one was made, else most of the runs made there?"""
        if rate in verdicts:
            return verdicts[rate].passed
        runs = at(rate)
        return 2 * sum(p.steers_up for p in runs) > len(runs)

    def confirmed_pass(rate: float) -> bool:
        """Has `rate` passed a completed confirmation: its pooled verdict, or a majority of `confirm` runs?"""
        if rate in verdicts:
            return verdicts[rate].passed
        return not use_pooled and confirm > 1 and 2 * sum(p.passed for p in at(rate)) > confirm

    def confirmed(rate: float, end: Literal["lower", "upper"]) -> bool:
        """Confirm one end of the bracket (module docstring); True if `rate` passes its confirmation."""
        if not use_pooled:
            while len(at(rate)) < confirm and _undecided_majority(at(rate), confirm):
                probe(rate, "confirm")
            return passed_so_far(rate)
        if rate not in verdicts:
            if end == "upper" and any(p.outcome == "fail" for p in at(rate)):
                return False  # failed with the stated confidence already (or INVALID for the server)
            while len(at(rate)) < confirm:
                probe(rate, "confirm")
            assert pooled is not None
            runs = at(rate)[:confirm]
            outcome, info = pooled(rate, runs)
            if outcome not in OUTCOMES:
                raise ValueError(f"pooled returned {outcome!r}; expected one of {OUTCOMES}")
            verdicts[rate] = PooledVerdict(rate, cast(Outcome, outcome), len(runs), dict(info or {}))
        return verdicts[rate].passed

    def gen_ceiling() -> float | None:
        g = [p.rate_rps for p in probes if p.outcome == "generator_limited"]
        return min(g) if g else None

    def done(status: Status, lower: float | None, upper: float | None, reason: str) -> PeakResult:
        conf = at(lower) if lower is not None else []
        res = PeakResult(
            lower,
            status,
            reason,
            lower,
            upper,
            precision,
            probes,
            confirm,
            conf,
            generator_ceiling_rps=gen_ceiling(),
            confirm_rule="pooled" if use_pooled else "majority",
            pooled_verdicts=list(verdicts.values()),
        )
        if lower is not None:  # below the answer and did not pass: neither on its own, nor on course, nor pooled
            res.non_monotone = [
                {"rate_rps": p.rate_rps, "outcome": p.outcome, "reason": _reason(p.info)}
                for p in probes
                if p.rate_rps < lower
                and p.outcome in ("fail", "undecided")
                and not p.steers_up
                and not (p.rate_rps in verdicts and verdicts[p.rate_rps].passed)
            ]
        return res

    lower: float | None = None
    upper: float | None = None
    try:
        # --- bracket ---------------------------------------------------------------------------------------
        rate = start_rps
        if probe(rate, "bracket") == "pass":
            lower, upper = _bracket_up(probe, rate, growth, max_rps)
        else:
            lower = _bracket_down(probe, rate, floor, growth)
            if lower is None:
                # Nothing passed from the start down to the floor. Latency need not be monotone in load (idle
                # CPUs wake slowly, so low rates can have worse tails): look above the start before concluding.
                lower = _look_above(probe, rate, growth, max_rps)
                if lower is None:
                    return _never_passed(probes, floor, gen_ceiling(), precision)
                lower, upper = _bracket_up(probe, lower, growth, max_rps)
            else:
                upper = min(p.rate_rps for p in probes if p.rate_rps > lower and not p.steers_up)

        while True:
            # --- bisect ------------------------------------------------------------------------------------
            while upper is not None and (upper - lower) / upper > precision:
                mid = (lower + upper) / 2.0
                if probe(mid, "bisect") == "pass":
                    lower = mid
                else:
                    upper = mid
            # --- confirm both ends: the answer must pass its confirmation, the rate above it must not ------
            if confirmed(lower, "lower"):
                if upper is None or not confirm_upper or all(p.outcome == "generator_limited" for p in at(upper)):
                    break
                if not confirmed(upper, "upper"):
                    break
                # the rate above passed on re-measurement: it is the new lower end, look above it again
                lower = upper
                above = [p.rate_rps for p in probes if p.rate_rps > lower and not passed_so_far(p.rate_rps)]
                if above:
                    upper = min(above)
                else:
                    lower, upper = _bracket_up(probe, lower, growth, max_rps)
                continue
            refuted.add(lower)
            upper = lower
            below = [p.rate_rps for p in probes if p.steers_up and p.rate_rps < upper and p.rate_rps not in refuted]
            if below:
                lower = max(below)
                continue
            lower = _bracket_down(probe, upper, floor, growth)
            if lower is None:
                return _never_passed(probes, floor, gen_ceiling(), precision)
    except _Budget:
        # a rate that passed its confirmation outranks any single passing run above it (whose own confirmation the
        # budget cut short); without one, the highest rate whose own run passed, said to be unconfirmed
        sure_rates = [r for r in {p.rate_rps for p in probes} if r not in refuted and confirmed_pass(r)]
        if sure_rates:
            best_sure = max(sure_rates)
            next_up = min((p.rate_rps for p in probes if p.rate_rps > best_sure), default=None)
            return done(
                "probe_limit",
                best_sure,
                upper if next_up is None else next_up,
                f"probe limit ({max_probes}) reached; best confirmed rate {best_sure:.4g} req/s"
                + ("" if next_up is None else f" (the rate above it, {next_up:.4g} req/s, not confirmed either way)")
                + ": raise --max-probes to settle the bracket",
            )
        best = max((p.rate_rps for p in probes if p.passed and p.rate_rps not in refuted), default=None)
        return done(
            "probe_limit",
            best,
            upper,
            f"probe limit ({max_probes}) reached; "
            + (f"best passing rate {best:.4g} req/s" if best is not None else "no rate passed")
            + ("" if upper is None or best is None else f", bracket [{best:.4g}, {upper:.4g}] req/s")
            + " (not confirmed: raise --max-probes)",
        )

    n_ok = sum(p.passed for p in at(lower))
    if lower in verdicts:
        v = verdicts[lower]
        confirmed_by = f"confirmed by one verdict over its {v.runs} runs pooled" + (
            f": {v.info['message']}" if v.info.get("message") else ""
        )
    else:
        confirmed_by = f"confirmed by {n_ok} of {len(at(lower))} runs there"
    if upper is None:
        return done(
            "capped",
            lower,
            None,
            f"passed at the highest rate allowed (the max rate cap), {lower:.4g} req/s ({confirmed_by}); the real "
            "peak may be higher (raise --max-rate)",
        )
    top = at(upper)
    if top and all(p.outcome == "generator_limited" for p in top):
        return done(
            "generator_limited",
            lower,
            upper,
            f"highest passing rate {lower:.4g} req/s ({confirmed_by}); the generator could not offer "
            f"{upper:.4g} req/s, so the server's peak may be higher: add --workers or run the generator on "
            "another machine",
        )
    return done(
        "found",
        lower,
        upper,
        f"highest passing rate {lower:.4g} req/s ({confirmed_by}); {upper:.4g} req/s did not pass "
        f"({_reason(verdicts[upper].info if upper in verdicts else top[-1].info if top else {})})",
    )


def _bracket_up(
    probe: Callable[[float, Phase], Outcome], lower: float, growth: float, max_rps: float | None
) -> tuple[float, float | None]:
    """Multiply a passing rate by growth until a rate does not pass (or max_rps passes: upper None)."""
    while max_rps is None or lower < max_rps:
        nxt = lower * growth if max_rps is None else min(lower * growth, max_rps)
        if probe(nxt, "bracket") != "pass":
            return lower, nxt
        lower = nxt
    return lower, None


def _look_above(
    probe: Callable[[float, Phase], Outcome],
    start: float,
    growth: float,
    max_rps: float | None,
    steps: int = LOOK_ABOVE_STEPS,
) -> float | None:
    """Up to `steps` rates above a failed start (never above max_rps); the first that passes, or None."""
    rate = start
    for _ in range(steps):
        if max_rps is not None and rate >= max_rps:
            return None
        rate = rate * growth if max_rps is None else min(rate * growth, max_rps)
        if probe(rate, "bracket") == "pass":
            return rate
    return None


def _bracket_down(probe: Callable[[float, Phase], Outcome], upper: float, floor: float, growth: float) -> float | None:
    """Divide by growth from `upper` until a rate passes; None if none does down to `floor`."""
    while upper > floor * (1 + 1e-9):
        nxt = max(upper / growth, floor)
        if probe(nxt, "bracket") == "pass":
            return nxt
        upper = nxt
    return None


def _undecided_majority(runs: list[Probe], confirm: int) -> bool:
    """More runs are needed while neither passes nor non-passes already hold a majority of `confirm`."""
    ok = sum(p.passed for p in runs)
    return 2 * ok <= confirm and 2 * (len(runs) - ok) <= confirm


def _never_passed(probes: list[Probe], floor: float, ceiling: float | None, precision: float) -> PeakResult:
    lowest = min(probes, key=lambda p: p.rate_rps)
    if probes and all(p.outcome == "generator_limited" for p in probes):
        return PeakResult(
            None,
            "generator_limited",
            f"the generator could not offer any probed rate, down to {lowest.rate_rps:g} req/s "
            f"({_reason(lowest.info)}): add --workers or run the generator on another machine",
            None,
            lowest.rate_rps,
            precision,
            probes,
            generator_ceiling_rps=ceiling,
        )
    return PeakResult(
        None,
        "never_passed",
        f"no probed rate passed, down to {lowest.rate_rps:g} req/s (floor {floor:.4g}); at the lowest: "
        f"{_reason(lowest.info)}",
        None,
        lowest.rate_rps,
        precision,
        probes,
        generator_ceiling_rps=ceiling,
    )


def _reason(info: dict[str, Any]) -> str:
    r = info.get("reason") if info else None
    if isinstance(r, dict):
        return str(r.get("message") or r.get("code"))
    if not r and info and info.get("message"):  # a pooled verdict's info: its own message
        return str(info["message"])
    return str(r) if r else "no reason recorded"
