"""Realistic synthetic results, sweeps, peaks and matrices for report tests (no server, no locust).

A toy server: service time ~6 ms per batch, 1 instance, dynamic batching up to 8; latency grows as the rate
nears the capacity (~400 req/s). Figures follow the result schema (schema_version 1) of loadgen.runner.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from loadgen.sweep import raw_limit_from_bench, summarize_point, write_json

CAPACITY_RPS = 400.0
PCTS = [50, 75, 90, 95, 99, 99.9, 99.99, 100]


def fake_result(rate_rps: float, *, seed: int = 0, duration_s: float = 10.0, mode: str = "open",
                users: int | None = None, slo_ms: float | None = 50.0, errors: int = 0,
                invalid: list[str] | None = None, batch: int = 1) -> dict:
    rng = np.random.default_rng(seed + int(rate_rps * 10))
    rho = min(rate_rps / CAPACITY_RPS, 0.995)
    base = 4.0
    wait = base * rho / (1 - rho)  # M/M/1-ish queueing delay
    n = max(50, int(rate_rps * duration_s))
    lat = base + rng.gamma(2.0, 0.5, n) + rng.exponential(wait + 0.1, n)
    pct = [[float(p), float(np.percentile(lat, p))] for p in PCTS]
    achieved = min(rate_rps, CAPACITY_RPS * 0.97) * (1 - 0.002 * rng.random())
    comp = achieved * duration_s
    lat_ms = {k: float(np.percentile(lat, q)) for k, q in
              (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9))}
    lat_ms.update(max=float(lat.max()), min=float(lat.min()), mean=float(lat.mean()), stdev=float(lat.std()))
    mean_batch = 1 + 6 * rho ** 2
    sizes = {str(b): int(comp / mean_batch * w) for b, w in
             zip((1, 2, 4, 8), (max(0.05, 1 - rho), rho * 0.4, rho * 0.4, rho ** 3)) if w > 0}
    ts = []
    for t in range(int(duration_s)):
        jitter = 1 + 0.05 * rng.standard_normal()
        ts.append({"t_s": float(t + 1), "offered": rate_rps * (1 + 0.03 * rng.standard_normal()),
                   "completed": achieved * jitter, "errors": float(errors / duration_s),
                   "in_flight": rate_rps * lat_ms["mean"] / 1000 * jitter,
                   "p50_ms": lat_ms["p50"] * jitter, "p99_ms": lat_ms["p99"] * (1 + 0.2 * rng.random())})
    valid = not invalid
    return {
        "schema_version": 1, "mode": mode, "target_rate_rps": rate_rps if mode == "open" else None,
        "users": users, "duration_s": duration_s, "completed": int(comp), "failed": errors,
        "achieved_rate_rps": achieved, "offered_rate_rps": rate_rps, "items_per_s": achieved * batch,
        "latency_ms": lat_ms, "latency_insufficient": ["p999"] if n < 10000 else [],
        "errors": {"503": errors} if errors else {}, "delayed_fraction": 0.001, "dropped": 0,
        "schedule_lag_ms": {"p50": 0.2, "p99": 1.1, "max": 3.0},
        "server_timing_ms": {
            "queue": {"p50": wait * 0.5, "p99": wait * 4, "mean": wait},
            "compute": {"p50": base, "p99": base * 1.5, "mean": base * 1.1},
            "preprocess": {"p50": 0.0, "p99": 0.0, "mean": 0.0},
            "total": {"p50": base + wait * 0.5, "p99": base * 1.5 + wait * 4, "mean": base * 1.1 + wait}},
        "decomposition_ms": {
            "client_lag": {"p50": 0.2, "mean": 0.3}, "network_http": {"p50": 0.9, "mean": 1.1},
            "queue": {"p50": wait * 0.5, "mean": wait}, "compute": {"p50": base, "mean": base * 1.1},
            "preprocess": {"p50": 0.0, "mean": 0.0}},
        "batch_size": sizes, "percentiles": pct, "histogram_b64": "",
        "timeseries": ts, "generator_cpu_percent": {"max": 35.0, "mean": 20.0},
        "valid": valid, "invalid_reasons": list(invalid or []), "warnings": [],
        "notes": ["latency measured from the scheduled instant (open loop)"] if mode == "open" else
                 ["closed loop: latency hides server stalls"],
        "scenario": {"target": "http://127.0.0.1:8000", "model": "tiny_classifier", "mode": mode,
                     "rate_rps": rate_rps, "arrival": "poisson", "users": users, "duration_s": duration_s,
                     "warmup_s": 2.0, "payload": "binary", "batch": batch, "seed": seed,
                     "slo_p99_ms": slo_ms, "workers": 1, "timeout_ms": 10000},
        "server": {"name": "inferload", "version": "0.1.0", "model": {"max_batch_size": 8, "instances": 1}},
        "machine": {"cpu_model": "Fake CPU @ 2.0GHz", "cpus_available": 2, "python": "3.11.2"},
        "started_at": "2024-11-25T03:30:00+00:00",
    }


def fake_bench() -> dict:
    return {"schema_version": 1, "kind": "bench", "model": "tiny_classifier", "results": [
        {"batch_size": b, "instances": 1, "threads_per_instance": 2, "throughput_items_per_s": t,
         "latency_ms": {"p50": 1.0, "p90": 1.2, "p95": 1.3, "p99": 1.6}}
        for b, t in ((1, 450.0), (8, 520.0))]}


def write_fake_sweep(out_dir: Path, rates=(50, 100, 200, 300, 360, 390), slo_ms: float = 50.0) -> Path:
    out_dir = Path(out_dir)
    points = []
    for i, r in enumerate(rates):
        inv = ["achieved/target 0.93 < 0.99"] if r > CAPACITY_RPS * 0.95 else None
        res = fake_result(r, seed=i, slo_ms=slo_ms, invalid=inv, errors=3 if inv else 0)
        name = f"point-{i:03d}.json"
        write_json(out_dir / name, res)
        points.append(summarize_point(res, name, i))
    ok = [p for p in points if p["valid"] and p["p99_ms"] <= slo_ms]
    peak = max(ok, key=lambda p: p["achieved_rps"]) if ok else None
    doc = {"schema_version": 1, "kind": "sweep", "sweep": "rates",
           "scenario": fake_result(rates[0])["scenario"], "slo_p99_ms": slo_ms, "percentile": 99,
           "points": points,
           "peak": {"rate_rps": peak["offered_rps"], "achieved_rps": peak["achieved_rps"],
                    "latency_ms": peak["p99_ms"], "percentile": 99} if peak else None,
           "raw_limit": raw_limit_from_bench(fake_bench(), 1), "notes": []}
    write_json(out_dir / "sweep.json", doc)
    return out_dir / "sweep.json"


def fake_measure(threshold: float):
    def measure(rate: float):
        r = fake_result(rate)
        return (r["latency_ms"]["p99"] <= threshold and r["valid"]), {"p99_ms": r["latency_ms"]["p99"]}
    return measure


def fake_run(scenario) -> dict:
    """Stands in for loadgen.runner.run_scenario: a simulated server (see fake_result)."""
    if scenario.mode == "closed":
        r = fake_result(min(390.0, 45.0 * scenario.users), mode="closed", users=scenario.users,
                        duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms)
    else:
        r = fake_result(scenario.rate_rps, duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms)
    r["scenario"] = scenario.model_dump(mode="json")
    return r


def _scenario():
    from loadgen.scenario import Scenario

    return Scenario(target="http://127.0.0.1:9", model="tiny_classifier", mode="open", rate_rps=10,
                    duration_s=5, warmup_s=1, slo_p99_ms=50)


def write_fake_matrix(out_dir: Path, slo_ms: float = 50.0) -> Path:
    from loadgen.matrix import choose_best, matrix_configs, measure_config

    out_dir = Path(out_dir)
    rows = []
    for cfg in matrix_configs([1, 8], [1, 2], [0.0]):
        row = measure_config(_scenario(), fake_run, cfg, "http://127.0.0.1:1", out_dir, slo_ms=slo_ms, max_probes=5)
        scale = cfg["max_batch_size"] ** 0.3 * cfg["instances"] ** 0.2  # make cells differ
        row["max_items_per_s"] *= scale
        row["peak_rps"] = row["peak_rps"] * scale if row["peak_rps"] else None
        row["peak_items_per_s"] = row["peak_rps"]
        row["raw_items_per_s"] = 450.0 * scale
        rows.append(row)
    doc = {"schema_version": 1, "kind": "matrix", "model": "tiny_classifier", "slo_ms": slo_ms, "percentile": 99,
           "scenario": _scenario().model_dump(mode="json"), "configs": rows, "best": choose_best(rows),
           "baseline": fake_bench(), "notes": ["max throughput = closed loop with enough users"],
           "machine": {"cpu_model": "Fake CPU", "cpus_available": 2}}
    write_json(out_dir / "matrix.json", doc)
    return out_dir / "matrix.json"
