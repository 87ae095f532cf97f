"""Realistic synthetic results, sweeps, peaks and matrices for report tests (no server, no locust).

A toy server: service time ~6 ms per batch, 1 instance, dynamic batching up to 8; latency grows as the rate
nears the capacity (~400 req/s). Every result is built by the real `build_result` from simulated requests fed
through the real `Recorder`, so a renamed or reshaped field fails the tests that use these fakes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from loadgen.engine.recorder import Recorder
from loadgen.results.build import build_result
from loadgen.results.io import write_json
from loadgen.results.points import raw_limit_from_bench, summarize_point

CAPACITY_RPS = 400.0
SUSTAINED_SHARE = 0.97  # above 97% of capacity the open loop drops what it cannot keep in flight


def fake_result(rate_rps: float, *, seed: int = 0, duration_s: float = 10.0, mode: str = "open",
                users: int | None = None, slo_ms: float | None = 50.0, errors: int = 0,
                overload: bool | None = None, batch: int = 1, warmup_s: float = 2.0,
                cpu_percent: float = 35.0, refusal_server_ms: float | None = None) -> dict:
    """A result of the toy server at `rate_rps` (closed loop: the rate its `users` achieve). `overload` forces
    client-side drops (INVALID: client_drops, schedule_short); by default they happen above 97% of capacity."""
    from loadgen.engine.scenario import Scenario

    rng = np.random.default_rng(seed + int(rate_rps * 10))
    rho = min(rate_rps / CAPACITY_RPS, 0.995)
    base = 4.0
    wait = base * rho / (1 - rho)  # M/M/1-ish queueing delay
    scheduled = max(20, int(round(rate_rps * duration_s)))
    overload = (mode == "open" and rate_rps > CAPACITY_RPS * SUSTAINED_SHARE) if overload is None else overload
    n = int(scheduled * (0.93 if overload else 1.0))
    sc = Scenario(target="http://127.0.0.1:8000", model="tiny_classifier", mode=mode,
                  rate_rps=rate_rps if mode == "open" else None, users=users if mode == "closed" else None,
                  duration_s=duration_s, warmup_s=warmup_s, slo_p99_ms=slo_ms, batch=batch, seed=seed,
                  max_in_flight=10000)
    rec = Recorder(warmup_s, duration_s)
    lat_ms = base + rng.gamma(2.0, 0.5, n) + rng.exponential(wait + 0.1, n)
    lag_ms = rng.exponential(0.15, n)
    fail = set(rng.choice(n, size=min(errors, n), replace=False).tolist()) if errors else set()
    mean_batch = 1 + 6 * rho ** 2
    for i in range(scheduled):
        t = warmup_s + i * duration_s / scheduled
        if i >= n:
            rec.on_drop(t)
            continue
        rec.on_send(t)
        q = float(rng.exponential(wait + 0.01))
        st = (f"queue;dur={q:.3f}, compute;dur={base:.3f}, batch;desc=\"{min(8, int(mean_batch + rng.random()))}\", "
              f"total;dur={q + base:.3f}")
        ok = i not in fail
        if not ok and refusal_server_ms is not None:  # refused at once: the server's time and a quick answer
            rec.record(t, t + lag_ms[i] / 1e3, t + (lag_ms[i] + 2 * refusal_server_ms) / 1e3, False, "503",
                       f"total;dur={refusal_server_ms:.3f}")
            continue
        rec.record(t, t + lag_ms[i] / 1e3, t + lat_ms[i] / 1e3, ok, None if ok else "503", st if ok else None)
    for k in range(int(duration_s)):
        rec.on_cpu(warmup_s + k + 0.5, cpu_percent)
    res = build_result(rec.take(), sc, started_at="2024-11-25T03:30:00+00:00",
                       server={"server": {"name": "inferload", "version": "0.1.0"},
                               "model": {"name": "tiny_classifier"},
                               "model_config": {"max_batch_size": 8, "instances": 1}},
                       machine={"cpu_model": "Fake CPU @ 2.0GHz", "cpus": 2, "python": "3.11.2"})
    return res


def fake_bench() -> dict:
    return {"schema_version": 1, "kind": "bench", "model": "tiny_classifier", "results": [
        {"batch_size": b, "instances": 1, "threads_per_instance": 2, "throughput_items_per_s": t,
         "latency_ms": {"p50": 1.0, "p90": 1.2, "p95": 1.3, "p99": 1.6}}
        for b, t in ((1, 450.0), (8, 520.0))]}


def write_fake_sweep(out_dir: Path, rates=(50, 100, 200, 300, 360, 390), slo_ms: float = 50.0) -> Path:
    out_dir = Path(out_dir)
    points = []
    for i, r in enumerate(rates):
        inv = r > CAPACITY_RPS * 0.95
        res = fake_result(r, seed=i, slo_ms=slo_ms, overload=inv, errors=3 if inv else 0)
        name = f"point-{i:03d}.json"
        write_json(out_dir / name, res)
        points.append(summarize_point(res, name, i))
    ok = [p for p in points if p["valid"] and p["p99_ms"] <= slo_ms]
    peak = max(ok, key=lambda p: p["achieved_rps"]) if ok else None
    doc = {"schema_version": 2, "kind": "sweep", "sweep": "rates",
           "scenario": fake_result(rates[0])["scenario"], "slo_p99_ms": slo_ms, "percentile": 99,
           "points": points,
           "peak": {"rate_rps": peak["offered_rps"], "achieved_rps": peak["achieved_rps"],
                    "latency_ms": peak["p99_ms"], "percentile": 99} if peak else None,
           "raw_limit": raw_limit_from_bench(fake_bench(), 1), "notes": []}
    write_json(out_dir / "sweep.json", doc)
    return out_dir / "sweep.json"


def fake_measure(threshold: float):
    def measure(rate: float):
        r = fake_result(rate, slo_ms=threshold, duration_s=max(10.0, math.ceil(838 / rate)))
        return r["slo"]["verdict"], {"p99_ms": r["latency_ms"]["p99"], "reason": r["slo"]["message"]}
    return measure


def fake_run(scenario) -> dict:
    """Stands in for loadgen.engine.runner.run_scenario: a simulated server (see fake_result)."""
    if scenario.mode == "closed":
        r = fake_result(min(390.0, 45.0 * scenario.users), mode="closed", users=scenario.users,
                        duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms, seed=scenario.seed)
    else:
        r = fake_result(scenario.rate_rps, duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms,
                        seed=scenario.seed)
    r["scenario"] = scenario.model_dump(mode="json")
    return r


def _scenario():
    from loadgen.engine.scenario import Scenario

    return Scenario(target="http://127.0.0.1:9", model="tiny_classifier", mode="open", rate_rps=10,
                    duration_s=5, warmup_s=1, slo_p99_ms=50)


def write_fake_matrix(out_dir: Path, slo_ms: float = 50.0) -> Path:
    from loadgen.search.matrix import choose_best, matrix_configs, measure_config

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
           "machine": {"cpu_model": "Fake CPU", "cpus": 2}}
    write_json(out_dir / "matrix.json", doc)
    return out_dir / "matrix.json"
