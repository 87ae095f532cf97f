"""Is a run's answer trustworthy? Reasons as {code, message}; a run is INVALID only for a reason that can change its
answer (too short, nothing succeeded, the schedule not carried out, lateness that would change the verdict, a
saturated generator, client-side drops); everything else is a warning. See docs/method.md, "Late sends, judged by their
effect".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.results.analysis import PERCENTILES, judge_slo, us_to_ms, values_at_percentiles
from loadgen.results.confidence import DEFAULT_CONFIDENCE, min_queries

MIN_DURATION_S = 2.0


MIN_ACHIEVED_RATIO = 0.99


MAX_DELAYED_FRACTION = 0.01


MAX_CPU_PERCENT = 90.0


GENERATOR_CODES = frozenset({"schedule_short", "lag_material", "generator_cpu", "worker_lost"})


LAG_MATERIAL_SHARE = 0.10


def reason(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def reason_list(items: Iterable[Any]) -> list[dict[str, str]]:
    """Reasons as {code, message}; a bare string (a schema-1 result, a runner note) gets code 'note'."""
    return [dict(x) if isinstance(x, dict) else reason("note", str(x)) for x in items or []]


def reason_codes(result: dict[str, Any], key: str = "invalid_reasons") -> list[str]:
    return [r["code"] for r in reason_list(result.get(key) or [])]


def reason_text(reasons: Iterable[Any], sep: str = "; ") -> str:
    return sep.join(r["message"] for r in reason_list(reasons))


def generator_limited(result: dict[str, Any]) -> bool:
    """An INVALID run whose every reason lies with the load generator (GENERATOR_CODES), not the server."""
    codes = reason_codes(result)
    return (not result.get("valid")) and bool(codes) and all(c in GENERATOR_CODES for c in codes)


def lag_effect(
    mode: str,
    *,
    lag: HdrHistogram | None,
    succ: HdrHistogram | None,
    lag_free: HdrHistogram | None,
    failed: int,
    slo: dict[str, Any] | None,
    percentile: float = 99.0,
    confidence: float = DEFAULT_CONFIDENCE,
    floor_ms: float = 2.0,
) -> dict[str, Any]:
    """Could the generator's lateness change the answer? Latency runs from the scheduled instant, so a late
    send only makes a result pessimistic; the same requests timed from their actual send ('lag-free') are the
    optimistic side. The lateness is *material* when:
      - with an SLO: the verdict from the lag-free latencies differs from the one from the schedule;
      - without one: the judged percentile from the schedule exceeds the lag-free one by more than 10% *and* by
        more than `floor_ms` (the late threshold, 2 ms): below that, the difference is within what any client's
        own wake-ups and network stack add on a VM, so it cannot be told from client overhead.
    Closed loop: no schedule, never material."""
    out: dict[str, Any] = {"material": False, "message": None}
    if mode != "open" or lag is None or lag.get_total_count() == 0 or succ is None or not succ.get_total_count():
        return out
    lag_p99 = us_to_ms(values_at_percentiles(lag, [99.0])[99.0])
    out["lag_p99_ms"] = lag_p99
    name = f"p{percentile:g}"
    if slo is not None:
        # the same design effect as the verdict it is held against: only the send instants differ
        free = judge_slo(lag_free, failed, slo["bound_ms"], percentile, confidence, slo.get("design_effect") or 1.0)
        out["lag_free_verdict"] = free["verdict"]
        if free["verdict"] != slo["verdict"]:
            out["material"] = True
            out["message"] = (
                f"judged from the actual send instants the {name} verdict would be "
                f"'{free['verdict']}' instead of '{slo['verdict']}' (lag p99 {lag_p99:g} ms): the "
                "generator's lateness could change the answer"
            )
        return out
    sched = values_at_percentiles(succ, [percentile])[percentile]
    free_v = values_at_percentiles(lag_free, [percentile])[percentile] if lag_free is not None else sched
    out["lag_free_ms"] = us_to_ms(free_v)
    if sched > (1.0 + LAG_MATERIAL_SHARE) * free_v and sched - free_v > floor_ms * 1000.0:
        out["material"] = True
        out["message"] = (
            f"{name} from the schedule ({us_to_ms(sched):g} ms) exceeds {name} from the actual send "
            f"instants ({us_to_ms(free_v):g} ms) by more than {LAG_MATERIAL_SHARE:.0%} and {floor_ms:g} ms (lag p99 "
            f"{lag_p99:g} ms): the generator's lateness is a material share of the latency"
        )
    return out


def validity(
    *,
    mode: str,
    duration_s: float,
    completed: int,
    failed: int,
    errors: dict[str, int],
    unbounded: list[str],
    target_rate_rps: float | None,
    achieved_rate_rps: float,
    delayed_fraction: float,
    dropped: int,
    max_in_flight: int | None,
    cpu_max_percent: float | None,
    scheduled: int | None = None,
    late_threshold_ms: float = 2.0,
    lag: dict[str, Any] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[bool, list[dict[str, str]], list[dict[str, str]]]:
    """Return (valid, invalid_reasons, warnings) as {code, message} lists; every failing rule adds a reason.
    A rule makes a run INVALID only when what it detects can change the answer (module docstring)."""
    reasons: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    if duration_s < MIN_DURATION_S:
        reasons.append(
            reason(
                "window_too_short",
                f"measurement window {duration_s:g} s is shorter than the minimum {MIN_DURATION_S:g} s",
            )
        )
    if completed == 0:
        reasons.append(reason("no_successes", "no successful requests in the measurement window"))
    if unbounded and completed > 0:
        k = len(unbounded)
        need = {p: min_queries(PERCENTILES[p] / 100.0, confidence) for p in unbounded}
        warnings.append(
            reason(
                "percentile_unbounded",
                f"{', '.join(unbounded)} {'has' if k == 1 else 'have'} no {confidence:.0%} upper confidence bound from "
                f"{completed} successes ("
                + ", ".join(f"{p} needs >= {n}" for p, n in need.items())
                + "): the estimate is indicative; run longer or faster",
            )
        )
    if mode == "open" and target_rate_rps:
        # The schedule is known: compare answered requests (successes and failures: the server answered) with
        # the arrivals it scheduled in the window (a Poisson schedule of rate λ has λT ± √(λT) of them).
        answered = completed + failed
        ratio = (answered / scheduled) if scheduled else (achieved_rate_rps / target_rate_rps)
        if ratio < MIN_ACHIEVED_RATIO:
            reasons.append(
                reason(
                    "schedule_short",
                    "the generator did not carry out its schedule: "
                    + (
                        f"{answered} of {scheduled} scheduled requests were answered "
                        if scheduled
                        else f"achieved {achieved_rate_rps:.1f} req/s for a {target_rate_rps:g} req/s target "
                    )
                    + f"({ratio:.1%} < {MIN_ACHIEVED_RATIO:.0%}; {dropped} dropped)",
                )
            )
        if lag is not None and lag.get("material"):
            reasons.append(
                reason(
                    "lag_material",
                    f"{lag['message']}; {delayed_fraction:.1%} of requests were sent more than {late_threshold_ms:g} ms "
                    "late: add --workers, run the generator on another machine, or lower the server's CPU priority",
                )
            )
        elif delayed_fraction > MAX_DELAYED_FRACTION:
            lp = (lag or {}).get("lag_p99_ms")
            warnings.append(
                reason(
                    "late_sends",
                    f"{delayed_fraction:.1%} of requests were sent more than {late_threshold_ms:g} ms after their "
                    f"scheduled instant"
                    + (f" (lag p99 {lp:g} ms)" if lp is not None else "")
                    + ": latency is measured from the schedule, so this can only make the result pessimistic, and "
                    "here not enough to change it",
                )
            )
    if cpu_max_percent is not None and cpu_max_percent >= MAX_CPU_PERCENT:
        reasons.append(
            reason(
                "generator_cpu",
                f"generator CPU reached {cpu_max_percent:.0f}% (>= {MAX_CPU_PERCENT:.0f}%) of a core in a generating "
                "process: its timing cannot be trusted; add --workers or lower the load",
            )
        )
    elif cpu_max_percent is None:
        warnings.append(
            reason("cpu_unsampled", "generator CPU was not sampled (window shorter than the 1 s sampling interval?)")
        )
    if dropped > 0:
        reasons.append(
            reason(
                "client_drops",
                f"{dropped} requests dropped client-side at the in-flight cap (max_in_flight={max_in_flight}): "
                "the server cannot keep up with this rate, or raise --max-in-flight",
            )
        )
    if failed > 0:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
        warnings.append(
            reason(
                "failures",
                f"{failed} requests failed ({kinds}); failures are excluded from "
                "latency_ms and count as over the bound in an SLO verdict",
            )
        )
    return (not reasons), reasons, warnings
