"""One probe of a search: a load test at a rate, sized to the samples its verdict needs, retried when the
generator (not the server) fell short, extended when the verdict is undecided (`ProbePlan.extend`; the peak search's
pooled rule turns this off: its pooled verdicts over a fixed number of runs replace the second look). Pure given an
injected `run`.

Sizing: a confident verdict on a high percentile needs queries (p99 at 99% confidence: 459 with no query over
the bound). A probe collects `ProbePlan.samples()` of them — by default enough to pass when the share over the
bound is 30% of what the percentile allows (838 for p99 at 99%) — so its duration is samples / rate, at least
the user's --duration and at most `max_duration_s` (then the shortfall is said, never silently ignored).

Outcome (see loadgen.search.peak): "pass" / "fail" / "undecided" from the SLO verdict with confidence (loadgen.results.confidence)
over every VALID run made at this rate (an extension's samples are pooled with the first run's: same rate, same
server; only when one more run of at most `max_duration_s` can reach the queries the verdict needs); "fail" for a
run INVALID because of the server; "generator_limited" when the run was INVALID only for
the generator's reasons twice in a row (measured again with another seed first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadgen.results.analysis import judge_slo
from loadgen.results.bursts import design_effect, windows_of
from loadgen.results.confidence import DEFAULT_CONFIDENCE, min_queries
from loadgen.results.points import summarize_point
from loadgen.results.recorded import decode_histogram, new_histogram
from loadgen.results.validity import generator_limited, reason_list, reason_text

SAMPLE_SLACK = 0.3
RunProbe = Callable[[float, float, int, str], tuple[dict, str]]
"""run(rate_rps, duration_s, seed, tag) -> (result, file written); tag is '' | 'retry' | 'more'."""


def sample_target(percentile: float = 99.0, confidence: float = DEFAULT_CONFIDENCE, slack: float = SAMPLE_SLACK) -> int:
    """Queries with which a run passes when its share over the bound is `slack` x the share the percentile
    allows (p99, 99%: 838; with no query over the bound 459 suffice)."""
    n = min_queries(percentile / 100.0, confidence, slack * (1.0 - percentile / 100.0))
    assert n is not None
    return n


@dataclass(frozen=True)
class ProbePlan:
    slo_ms: float
    percentile: float = 99.0
    confidence: float = DEFAULT_CONFIDENCE
    min_duration_s: float = 10.0
    max_duration_s: float = 60.0
    target_samples: int | None = None
    extend: bool = True

    def samples(self) -> int:
        return self.target_samples or sample_target(self.percentile, self.confidence)

    def duration_for(self, rate_rps: float) -> float:
        want = math.ceil(self.samples() / rate_rps)
        return float(min(self.max_duration_s, max(self.min_duration_s, want)))

    def shortfall(self, rate_rps: float) -> str | None:
        """A message when the longest probe allowed cannot collect the samples at this rate."""
        d = self.duration_for(rate_rps)
        if d * rate_rps >= self.samples():
            return None
        return (
            f"at {rate_rps:.4g} req/s a probe of {d:g} s collects ~{d * rate_rps:.0f} queries, fewer than the "
            f"{self.samples()} a confident p{self.percentile:g} verdict is sized for; its verdict may stay "
            f"undecided (raise --max-probe-duration to probe such low rates)"
        )

    def lowest_rate(self) -> float:
        """Below this rate even the longest probe cannot collect the minimum for any pass (no query over)."""
        n0 = min_queries(self.percentile / 100.0, self.confidence, 0.0) or 1
        return n0 / self.max_duration_s


def primary_attempt(info: dict[str, Any]) -> str | None:
    """The file of a probe's run before any extension: the last of its first run and the generator retry."""
    files = [a["file"] for a in info.get("attempts") or [] if a.get("tag") in ("first", "retry")]
    return files[-1] if files else None


def judge_runs(results: list[dict], plan: ProbePlan) -> dict[str, Any]:
    """The SLO verdict over the pooled successes and failures of VALID runs at one rate, weighed by the design effect
    of their per-second windows taken together (loadgen.results.bursts: a burst in one run against the others' calm)."""
    h = new_histogram()
    failed = 0
    windows: list[tuple[int, int]] = []
    for r in results:
        if r.get("histogram_b64"):
            h.add(decode_histogram(r["histogram_b64"]))
        failed += int(r.get("failed") or 0)
        windows += windows_of(r)
    de = design_effect(windows, plan.confidence)
    return judge_slo(h, failed, plan.slo_ms, plan.percentile, plan.confidence, de)


def probe_with_retry(run: RunProbe, rate_rps: float, plan: ProbePlan, seed: int = 1) -> tuple[str, dict[str, Any]]:
    """Measure one rate (module docstring). Returns (outcome, info); info holds the summary row of the last
    run, the verdict, a reason {code, message}, every file written and each attempt."""
    duration = plan.duration_for(rate_rps)
    attempts: list[dict[str, Any]] = []

    def attempt(d: float, s: int, tag: str) -> dict:
        res, file = run(rate_rps, d, s, tag)
        attempts.append(
            {
                "tag": tag or "first",
                "file": file,
                "duration_s": d,
                "valid": bool(res.get("valid")),
                "invalid_reasons": reason_list(res.get("invalid_reasons") or []),
                "achieved_rps": res.get("achieved_rate_rps"),
                "warmup_s": res.get("warmup_s"),
            }
        )
        return res

    res = attempt(duration, seed, "")
    if generator_limited(res):
        res = attempt(duration, seed + 1, "retry")
    row = summarize_point(res, attempts[-1]["file"])
    info: dict[str, Any] = {**row, "attempts": attempts, "files": [a["file"] for a in attempts], "duration_s": duration}
    short = plan.shortfall(rate_rps)
    if short:
        info["note"] = short
    if generator_limited(res):
        answered = (res.get("completed") or 0) + (res.get("failed") or 0)
        info["generator_rps"] = round(answered / float(res.get("duration_s") or duration), 3)
        info["reason"] = {
            "code": "generator_limited",
            "message": "the generator, not the server, fell short twice: "
            + reason_text(res.get("invalid_reasons") or []),
        }
        return "generator_limited", info
    if not res.get("valid"):
        info["reason"] = {"code": "invalid", "message": "INVALID run: " + reason_text(res.get("invalid_reasons") or [])}
        return "fail", info
    valid_runs = [res]
    verdict = judge_runs(valid_runs, plan)
    more = max(0, int(verdict.get("queries_needed") or 0) - int(verdict["samples"]))
    if verdict["verdict"] == "undecided" and plan.extend and 0 < more <= rate_rps * plan.max_duration_s:
        # one more run can reach the queries that would decide it (if the over-rate holds): pool its samples
        d2 = float(min(plan.max_duration_s, max(plan.min_duration_s, math.ceil(1.1 * more / rate_rps))))
        ext = attempt(d2, seed + 2, "more")
        if ext.get("valid"):
            valid_runs.append(ext)
            verdict = judge_runs(valid_runs, plan)
    info["verdict"] = verdict
    info["pooled_runs"] = len(valid_runs)
    info["reason"] = {"code": verdict["verdict"], "message": verdict["message"]}
    return verdict["verdict"], info
