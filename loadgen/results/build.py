"""The run result document (kind "run"; its typed model is loadgen.results.schema.RunResult).

Every duration is in milliseconds (`_ms`), rates in requests/s (`_rps`), `duration_s`/`warmup_s` in seconds.
`build_result` is pure (recorded data in, dict out); `loadgen.results.io.write_json` writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadgen.results import analysis, bursts, validity
from loadgen.results.machine import machine_info
from loadgen.results.recorded import SERVER_STAGES, RecordData, encode_histogram, new_histogram
from loadgen.results.schema import SCHEMA_VERSION

if TYPE_CHECKING:  # the engine builds results; results never import the engine at run time
    from loadgen.engine.scenario import Scenario


def build_result(
    data: RecordData,
    scenario: Scenario,
    *,
    started_at: str,
    server: dict[str, Any] | None = None,
    machine: dict[str, Any] | None = None,
    extra_warnings: list[str] | None = None,
    extra_notes: list[str] | None = None,
    lost_reason: str | None = None,
) -> dict[str, Any]:
    data.flush()
    m = data.phases["measure"]
    T = scenario.duration_s
    completed, failed = m.success, m.failure
    achieved = completed / T
    offered = m.sent / T
    succ = m.hists.get("success")
    finished = completed + failed
    delayed_fraction = (m.delayed / finished) if finished else 0.0
    cpu = analysis.cpu_summary(data.cpu)
    open_loop = scenario.mode == "open"
    conf = scenario.confidence
    unbounded = analysis.unbounded_percentiles(completed, conf)
    h = m.hists
    slo = None
    rows = analysis.timeseries_rows(data.seconds, scenario.warmup_s, scenario.end_s, scenario.slo_p99_ms)
    if scenario.slo_p99_ms is not None:
        de = bursts.design_effect(bursts.windows_of({"timeseries": rows}), conf)
        slo = analysis.judge_slo(succ, failed, scenario.slo_p99_ms, scenario.slo_percentile, conf, de)
    lag = validity.lag_effect(
        scenario.mode,
        lag=h.get("lag"),
        succ=succ,
        lag_free=h.get("service"),
        failed=failed,
        slo=slo,
        percentile=scenario.slo_percentile if slo else 99.0,
        confidence=conf,
        floor_ms=scenario.late_threshold_ms,
    )
    valid, reasons, warnings = validity.validity(
        mode=scenario.mode,
        duration_s=T,
        completed=completed,
        failed=failed,
        errors=m.errors,
        unbounded=unbounded,
        # a shaped schedule (ramp, trace) has no single rate: judge it by the requests it scheduled
        target_rate_rps=(scenario.rate_rps or (m.sent + m.dropped) / T or None) if open_loop else None,
        achieved_rate_rps=achieved,
        delayed_fraction=delayed_fraction,
        dropped=m.dropped,
        max_in_flight=scenario.max_in_flight if open_loop else None,
        cpu_max_percent=cpu["max"],
        scheduled=(m.sent + m.dropped) if open_loop else None,
        late_threshold_ms=scenario.late_threshold_ms,
        lag=lag,
        confidence=conf,
    )
    if lost_reason is not None:  # the load was not the requested process: INVALID, the generator's doing
        reasons = [r for r in reasons if r["code"] not in ("no_successes", "schedule_short")]
        reasons.insert(0, validity.reason("worker_lost", lost_reason))
        valid = False
    warnings += validity.reason_list(extra_warnings or [])
    notes = [] if open_loop else [analysis.CLOSED_LOOP_NOTE]
    notes.append(
        "latency is measured from each request's scheduled instant"
        + (" (open loop: the precomputed arrival schedule)" if open_loop else " (closed loop: its send instant)")
        + "; failures are excluded from latency_ms"
    )
    notes += list(extra_notes or [])
    lat = analysis.latency_summary_ms(succ)
    if slo is not None:
        slo["p99_ms"] = scenario.slo_p99_ms  # the bound, under its schema-1 name
        slo["met"] = slo["verdict"] == "pass"
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "tool": "inferload",
        "started_at": started_at,
        "mode": scenario.mode,
        "target_rate_rps": scenario.rate_rps if open_loop else None,
        "users": scenario.users if not open_loop else None,
        "duration_s": T,
        "warmup_s": scenario.warmup_s,
        "batch": scenario.batch,
        "completed": completed,
        "failed": failed,
        "achieved_rate_rps": round(achieved, 3),
        "offered_rate_rps": round(offered, 3),
        "items_per_s": round(achieved * scenario.batch, 3),
        "latency_ms": lat,
        "latency_ucb_ms": analysis.percentile_ucb_ms(succ, conf),
        "confidence": conf,
        "latency_insufficient": unbounded,
        "errors": dict(sorted(m.errors.items())),
        "delayed_fraction": round(delayed_fraction, 6),
        "delayed": m.delayed,
        "dropped": m.dropped,
        "schedule_lag_ms": analysis.p50_p99_max_ms(h.get("lag")),
        "lag_effect": lag,
        "server_timing_ms": {k: analysis.p50_p99_mean_ms(h.get(k)) for k in SERVER_STAGES},
        "refusal_ms": {
            "client": analysis.p50_p99_max_ms(h.get("refusal")),
            "server": analysis.p50_p99_max_ms(h.get("refusal_server")),
        },
        "decomposition_ms": {
            "client_lag": analysis.p50_mean_ms(h.get("lag")),
            "network_http": analysis.p50_mean_ms(h.get("network")),
            "body_read": analysis.p50_mean_ms(h.get("read")),
            "queue": analysis.p50_mean_ms(h.get("queue")),
            "compute": analysis.p50_mean_ms(h.get("compute")),
            "preprocess": analysis.p50_mean_ms(h.get("preprocess")),
        },
        "batch_size": dict(sorted(m.batch_sizes.items(), key=lambda kv: int(kv[0]))),
        "percentiles": analysis.percentile_distribution_ms(succ),
        "histogram_b64": encode_histogram(succ if succ is not None else new_histogram()),
        "histogram_unit": "us",
        "timeseries": rows,
        "generator_cpu_percent": cpu,
        "slo": slo,
        "valid": valid,
        "invalid_reasons": reasons,
        "warnings": warnings,
        "notes": notes,
        "phases": {
            p: {"sent": d.sent, "completed": d.success, "failed": d.failure, "dropped": d.dropped}
            for p, d in data.phases.items()
        },
        "scenario": scenario.model_dump(mode="json"),
        "server": server or {},
        "machine": machine if machine is not None else machine_info(),
    }
