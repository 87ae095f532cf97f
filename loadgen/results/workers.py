"""Per-worker accounts of a run made by several generating processes (`--workers N`, `--expect-workers N`).

The merged result is the run's answer; this table says what each worker did (its stream of the schedule, what it
sent and got back, its CPU and send lag, the generator reasons that hold for it alone) and names the worker that
limited the run, if one did: a worker that was lost, one whose CPU saturated, or one that fell short of its share of
the schedule. Each worker times latency against its own schedule and its own clock, so the workers' clocks never need
to agree; the counts here add up to the merged result's (the merge is exact). Pure: recorded data in, dict out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgen.results import analysis
from loadgen.results.recorded import RecordData
from loadgen.results.validity import MAX_CPU_PERCENT, MIN_ACHIEVED_RATIO


def worker_row(name: str, stream: int | None, data: RecordData, mode: str) -> dict[str, Any]:
    data.flush()
    m = data.phases["measure"]
    cpu = analysis.cpu_summary(data.cpu)
    scheduled = m.sent + m.dropped
    answered = m.success + m.failure
    finished = answered
    problems: list[str] = []
    if cpu["max"] is not None and cpu["max"] >= MAX_CPU_PERCENT:
        problems.append("generator_cpu")
    share = (answered / scheduled) if (mode == "open" and scheduled) else None
    if share is not None and share < MIN_ACHIEVED_RATIO:
        problems.append("schedule_short")
    return {
        "name": name,
        "stream": stream,
        "scheduled": scheduled if mode == "open" else None,
        "sent": m.sent,
        "completed": m.success,
        "failed": m.failure,
        "dropped": m.dropped,
        "answered_share": round(share, 4) if share is not None else None,
        "delayed_fraction": round(m.delayed / finished, 6) if finished else 0.0,
        "schedule_lag_ms": analysis.p50_p99_max_ms(m.hists.get("lag")),
        "cpu_percent": cpu,
        "problems": problems,
    }


def workers_section(
    by_source: Mapping[str, RecordData],
    streams: Mapping[str, int],
    mode: str,
    lost: list[str] | None = None,
    late: list[str] | None = None,
) -> dict[str, Any]:
    """The `workers` block of a run result (schema: loadgen.results.schema.WorkersSection)."""
    lost = list(lost or [])
    names = sorted(set(streams) | set(by_source), key=lambda n: (streams.get(n, 1 << 30), n))
    rows = []
    for n in names:
        row = worker_row(n, streams.get(n), by_source.get(n) or RecordData(), mode)
        if n in lost:
            row["problems"].insert(0, "worker_lost")
        rows.append(row)
    limited_by, why = _limiting(rows)
    busiest = max(rows, key=lambda r: r["cpu_percent"]["max"] or -1.0, default=None)
    return {
        "count": len(rows),
        "lost": lost,
        "joined_late": list(late or []),
        "limited_by": limited_by,
        "limited_reason": why,
        "busiest": busiest["name"] if busiest and busiest["cpu_percent"]["max"] is not None else None,
        "per_worker": rows,
    }


def _limiting(rows: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The worker that limited the run: a lost one first, then the highest CPU among those with a problem."""
    for r in rows:
        if "worker_lost" in r["problems"]:
            return r["name"], f"worker {r['name']} (stream {r['stream']}) was lost mid-run"
    troubled = [r for r in rows if r["problems"]]
    if not troubled:
        return None, None
    r = max(troubled, key=lambda r: (r["cpu_percent"]["max"] or 0.0, -(r["answered_share"] or 1.0)))
    parts = []
    if "generator_cpu" in r["problems"]:
        parts.append(f"its CPU reached {r['cpu_percent']['max']:.0f}% of a core")
    if "schedule_short" in r["problems"]:
        parts.append(f"it answered {r['answered_share']:.1%} of its share of the schedule")
    return r["name"], f"worker {r['name']} (stream {r['stream']}): " + " and ".join(parts)
