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
from loadgen.results.points import raw_limit_from_bench
from loadgen.results.schema import BenchDoc, BenchRow

CAPACITY_RPS = 400.0
SUSTAINED_SHARE = 0.97  # above 97% of capacity the open loop drops what it cannot keep in flight


def fake_result(
    rate_rps: float,
    *,
    seed: int = 0,
    duration_s: float = 10.0,
    mode: str = "open",
    users: int | None = None,
    slo_ms: float | None = 50.0,
    errors: int = 0,
    overload: bool | None = None,
    batch: int = 1,
    warmup_s: float = 2.0,
    cpu_percent: float = 35.0,
    refusal_server_ms: float | None = None,
    capacity_rps: float | None = None,
) -> dict:
    """A result of the toy server at `rate_rps` (closed loop: the rate its `users` achieve). `overload` forces
    client-side drops (INVALID: client_drops, schedule_short); by default they happen above 97% of capacity."""
    from loadgen.engine.scenario import Scenario

    rng = np.random.default_rng(seed + int(rate_rps * 10))
    capacity = capacity_rps or CAPACITY_RPS
    rho = min(rate_rps / capacity, 0.995)
    base = 4.0
    wait = base * rho / (1 - rho)  # M/M/1-ish queueing delay
    scheduled = max(20, int(round(rate_rps * duration_s)))
    overload = (mode == "open" and rate_rps > capacity * SUSTAINED_SHARE) if overload is None else overload
    n = int(scheduled * (0.93 if overload else 1.0))
    sc = Scenario(
        target="http://127.0.0.1:8000",
        model="tiny_classifier",
        mode=mode,
        rate_rps=rate_rps if mode == "open" else None,
        users=users if mode == "closed" else None,
        duration_s=duration_s,
        warmup_s=warmup_s,
        slo_p99_ms=slo_ms,
        batch=batch,
        seed=seed,
        max_in_flight=10000,
    )
    rec = Recorder(warmup_s, duration_s)
    lat_ms = base + rng.gamma(2.0, 0.5, n) + rng.exponential(wait + 0.1, n)
    lag_ms = rng.exponential(0.15, n)
    fail = set(rng.choice(n, size=min(errors, n), replace=False).tolist()) if errors else set()
    mean_batch = 1 + 6 * rho**2
    for i in range(scheduled):
        t = warmup_s + i * duration_s / scheduled
        if i >= n:
            rec.on_drop(t)
            continue
        rec.on_send(t)
        q = float(rng.exponential(wait + 0.01))
        st = (
            f'queue;dur={q:.3f}, compute;dur={base:.3f}, batch;desc="{min(8, int(mean_batch + rng.random()))}", '
            f"total;dur={q + base:.3f}"
        )
        ok = i not in fail
        if not ok and refusal_server_ms is not None:  # refused at once: the server's time and a quick answer
            rec.record(
                t,
                t + lag_ms[i] / 1e3,
                t + (lag_ms[i] + 2 * refusal_server_ms) / 1e3,
                False,
                "503",
                f"total;dur={refusal_server_ms:.3f}",
            )
            continue
        rec.record(t, t + lag_ms[i] / 1e3, t + lat_ms[i] / 1e3, ok, None if ok else "503", st if ok else None)
    for k in range(int(duration_s)):
        rec.on_cpu(warmup_s + k + 0.5, cpu_percent)
    res = build_result(
        rec.take(),
        sc,
        started_at="2024-11-25T03:30:00+00:00",
        server={
            "server": {"name": "inferload", "version": "0.1.0"},
            "model": {"name": "tiny_classifier"},
            "model_config": {"max_batch_size": 8, "instances": 1},
        },
        machine={"cpu_model": "Fake CPU @ 2.0GHz", "cpus": 2, "python": "3.11.2"},
    )
    return res


def fake_bench() -> dict:
    """A bench document built through its schema model (as `inferload bench` writes it)."""
    lat = {"p50": 1.0, "p90": 1.2, "p95": 1.3, "p99": 1.6}
    rows = [
        BenchRow(
            batch_size=b,
            instances=1,
            threads_per_instance=2,
            allow_spinning=False,
            calls=int(t / b * 5),
            items=int(t * 5),
            window_s=5.0,
            throughput_items_per_s=t,
            latency_ms=lat,
            per_item_latency_ms={k: v / b for k, v in lat.items()},
        )
        for b, t in ((1, 450.0), (8, 520.0))
    ]
    return BenchDoc(
        model="tiny_classifier",
        model_path="models/tiny_classifier/model.onnx",
        duration_s=5.0,
        warmup_s=1.0,
        started_at="2026-01-01T00:00:00+00:00",
        machine={"cpu_model": "Fake CPU", "cpus": 2},
        results=rows,
    ).model_dump(mode="json")


def write_fake_sweep(out_dir: Path, rates=(50, 100, 200, 300, 360, 390), slo_ms: float = 50.0) -> Path:
    """A rate sweep made by the real loadgen.search.sweep.run_sweep on simulated runs (see fake_run)."""
    from loadgen.search.sweep import run_sweep

    out_dir = Path(out_dir)
    run_sweep(
        _scenario().model_copy(update={"slo_p99_ms": slo_ms}),
        fake_run,
        out_dir,
        rates=list(rates),
        slo_ms=slo_ms,
        raw_limit=raw_limit_from_bench(fake_bench(), 1),
    )
    return out_dir / "sweep.json"


def fake_measure(threshold: float):
    def measure(rate: float):
        r = fake_result(rate, slo_ms=threshold, duration_s=max(10.0, math.ceil(838 / rate)))
        return r["slo"]["verdict"], {"p99_ms": r["latency_ms"]["p99"], "reason": r["slo"]["message"]}

    return measure


def fake_run(scenario, capacity_rps: float | None = None) -> dict:
    """Stands in for loadgen.engine.runner.run_scenario: a simulated server (see fake_result)."""
    cap = capacity_rps or CAPACITY_RPS
    if scenario.mode == "closed":
        r = fake_result(
            min(cap * 0.975, 45.0 * scenario.users),
            mode="closed",
            users=scenario.users,
            duration_s=scenario.duration_s,
            slo_ms=scenario.slo_p99_ms,
            seed=scenario.seed,
            capacity_rps=cap,
        )
    else:
        r = fake_result(
            scenario.rate_rps,
            duration_s=scenario.duration_s,
            slo_ms=scenario.slo_p99_ms,
            seed=scenario.seed,
            capacity_rps=cap,
        )
    r["scenario"] = scenario.model_dump(mode="json")
    return r


def _scenario():
    from loadgen.engine.scenario import Scenario

    return Scenario(
        target="http://127.0.0.1:9",
        model="tiny_classifier",
        mode="open",
        rate_rps=10,
        duration_s=5,
        warmup_s=1,
        slo_p99_ms=50,
    )


def write_fake_matrix(out_dir: Path, slo_ms: float = 50.0) -> Path:
    """A matrix measured by the real search (loadgen.search.matrix.run_matrix) on simulated runs; cells made to
    differ by scaling the simulated capacity with the configuration."""
    from loadgen.search.matrix import MatrixOptions, matrix_configs, new_matrix_doc, no_server, run_matrix

    out_dir = Path(out_dir)
    opts = MatrixOptions(slo_ms=slo_ms, max_probes=5)
    doc = new_matrix_doc(
        _scenario(),
        "tiny_classifier",
        "models",
        opts,
        baseline=fake_bench(),
        baseline_note=None,
        machine={"cpu_model": "Fake CPU", "cpus": 2},
    )

    def scaled_run(scenario):
        url = scenario.target  # no_server passes the configuration in the URL's port: b * 100 + instances
        port = int(url.rsplit(":", 1)[1])
        b, n = port // 100, port % 100
        return fake_run(scenario, capacity_rps=CAPACITY_RPS * b**0.3 * n**0.2)

    def serve(cfg, log):
        return no_server(f"http://127.0.0.1:{cfg['max_batch_size'] * 100 + cfg['instances']}")(cfg, log)

    run_matrix(doc, _scenario(), scaled_run, matrix_configs([1, 8], [1, 2], [0.0]), serve, out_dir, opts)
    return out_dir / "matrix.json"


# ---- the configuration advisor on simulated servers --------------------------------------------------------
def _tune_port(cfg) -> int:
    """A TuneConfig in a URL port (no_server passes it to the runs): b * 100 + instances * 10 + delay."""
    return cfg.max_batch_size * 100 + cfg.instances * 10 + int(cfg.max_queue_delay_ms)


def tune_serve(cfg, log):
    """serve(config, log) for simulations: nothing started; the runs learn the configuration from the URL."""
    from loadgen.search.matrix import no_server

    return no_server(f"http://127.0.0.1:{_tune_port(cfg)}")(cfg, log)


def tune_run(scenario) -> dict:
    """A simulated server whose capacity grows with the batch size and instances (as write_fake_matrix's)."""
    port = int(scenario.target.rsplit(":", 1)[1])
    b, n = port // 100, (port % 100) // 10
    return fake_run(scenario, capacity_rps=CAPACITY_RPS * b**0.3 * n**0.2)


def tune_fetch(url: str) -> str:
    """The server's /metrics for simulations: resident memory 100 MB + 60 MB per instance."""
    port = int(url.split(":")[2].split("/")[0])
    n = (port % 100) // 10
    return f"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {(100 + 60 * n) * 2**20}\n"


# ---- a single-server queue with a known true percentile curve (the peak search's accuracy) ---------------------
def mm1_true_peak_rps(service_rps: float, bound_ms: float, percentile: float = 99.0) -> float:
    """The rate at which an M/M/1 queue's stationary p-th percentile sojourn time equals the bound: the sojourn time
    is exponential with rate (mu - lambda), so its p-quantile is -ln(1 - p) / (mu - lambda)."""
    return service_rps + math.log1p(-percentile / 100.0) / (bound_ms / 1e3)


def mm1_over_share(rate_rps: float, service_rps: float, bound_ms: float) -> float:
    """The stationary share of an M/M/1 queue's requests whose sojourn time exceeds the bound."""
    if rate_rps >= service_rps:
        return 1.0
    return math.exp(-(service_rps - rate_rps) * bound_ms / 1e3)


def mm1_run(
    rate_rps: float,
    *,
    service_rps: float,
    duration_s: float,
    warmup_s: float = 2.0,
    seed: int = 0,
    slo_ms: float | None = None,
    independent: bool = False,
) -> dict:
    """A run against an M/M/1 FIFO queue (Poisson arrivals at `rate_rps`, exponential service at `service_rps`)
    that starts EMPTY at t = 0, as a real probe's server does; requests scheduled in the warm-up are served (they
    fill the queue) but not counted. Waiting times by Lindley's recursion, vectorised (W_k = U_k - min_{j<=k} U_j).
    Returns the fields of a run result the peak search reads (the histogram of the measured requests, validity,
    rates); no Recorder: a search of ~20 runs takes milliseconds.

    independent=True: each sojourn time drawn on its own from the queue's stationary law, Exp(mu - lambda): the same
    true percentile curve, without the queue's memory (a long wait is not followed by more long waits), i.e. the
    independent queries a binomial verdict assumes."""
    from loadgen.results.recorded import encode_histogram, new_histogram, record_many, to_us

    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(round(rate_rps * 1000))])
    end = warmup_s + duration_s
    k = int(rate_rps * end * 1.2 + 50)
    t = np.cumsum(rng.exponential(1.0 / rate_rps, k))
    while t[-1] < end:  # rarely: draw more arrivals
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate_rps, k))])
    t = t[t < end]
    s = rng.exponential(1.0 / service_rps, t.size)
    steps = np.concatenate([[0.0], s[:-1] - np.diff(t)])
    u = np.cumsum(steps)
    wait = u - np.minimum.accumulate(u)
    sojourn = wait + s
    if independent:
        sojourn = rng.exponential(1.0 / max(service_rps - rate_rps, 1e-3), t.size)
    lat = sojourn[t >= warmup_s]
    rows = []
    if slo_ms is not None:  # the per-second windows a real run records (by scheduled second), for the burst check
        sec = np.floor(t[t >= warmup_s] - warmup_s).astype(int)
        judged = np.bincount(sec, minlength=int(math.ceil(duration_s)))
        over = np.bincount(sec, weights=lat > slo_ms / 1e3, minlength=judged.size)
        rows = [
            {"t_s": i, "phase": "measure", "judged": int(m), "over_slo": int(c)}
            for i, (m, c) in enumerate(zip(judged, over))
        ]
    h = new_histogram()
    record_many(h, [to_us(x) for x in lat])
    p50, p99 = (float(np.percentile(lat, q)) * 1e3 for q in (50, 99)) if lat.size else (None, None)
    return {
        "mode": "open",
        "target_rate_rps": rate_rps,
        "achieved_rate_rps": lat.size / duration_s,
        "completed": int(lat.size),
        "failed": 0,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "valid": True,
        "invalid_reasons": [],
        "histogram_b64": encode_histogram(h),
        "latency_ms": {"p50": p50, "p99": p99},
        "timeseries": rows,
        "scenario": {"rate_rps": rate_rps, "duration_s": duration_s, "warmup_s": warmup_s, "slo_p99_ms": slo_ms},
    }


def mm1_scenario_run(service_rps: float, independent: bool = False):
    """run(scenario) -> result for loadgen.search.peaksearch.run_peak_search: the M/M/1 queue above (closed loop: the
    capacity probe completes `service_rps`, what 8 users back to back keep a single server doing)."""

    def run(scenario) -> dict:
        if scenario.mode == "closed":
            return {
                "mode": "closed",
                "achieved_rate_rps": service_rps,
                "completed": int(service_rps * scenario.duration_s),
                "failed": 0,
                "duration_s": scenario.duration_s,
                "valid": True,
                "invalid_reasons": [],
                "latency_ms": {},
            }
        return mm1_run(
            scenario.rate_rps,
            service_rps=service_rps,
            duration_s=scenario.duration_s,
            warmup_s=scenario.warmup_s,
            seed=scenario.seed,
            slo_ms=scenario.slo_p99_ms,
            independent=independent,
        )

    return run
