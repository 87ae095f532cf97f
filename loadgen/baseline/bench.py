"""In-process baseline: ONNX Runtime with no HTTP, the raw limit served numbers are compared against.

For every (batch size, instances) pair, `instances` threads each drive their own InferenceSession in a loop
for `duration_s` after `warmup_s`; throughput counts items completed inside the measured window.
This is the AIXPRT batch-size × concurrent-instances matrix, without a server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadgen.results.machine import machine_info
from loadgen.results.schema import SCHEMA_VERSION
from server.cpus import available_cpus
from server.runtime import OnnxInstance, random_inputs


@dataclass
class _Worker:
    instance: OnnxInstance
    inputs: dict
    latencies_s: list
    items: int = 0


def _percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {k: float("nan") for k in ("p50", "p90", "p95", "p99", "mean")}
    arr = np.asarray(samples_s) * 1000.0
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return {"p50": float(p50), "p90": float(p90), "p95": float(p95), "p99": float(p99), "mean": float(arr.mean())}


def bench_point(
    model_path: Path,
    batch_size: int,
    instances: int,
    threads_per_instance: int,
    duration_s: float,
    warmup_s: float,
    seed: int = 0,
    clock=time.perf_counter,
    idle_gap_s: float = 0.05,
    idle_calls: int = 20,
    sleep=time.sleep,
    allow_spinning: bool = False,
    provider: str = "cpu",
    provider_options: dict | None = None,
) -> dict:
    """Measure one (batch, instances) pair. Returns one result row.

    With one instance the row also holds `latency_after_idle_ms`: `idle_calls` single calls, each after
    `idle_gap_s` of idleness (the factory camera sends one photo at a time). On VMs an idle CPU wakes slowly and
    ONNX Runtime's threads park, so this is often far above the back-to-back `latency_ms`."""
    sessions = [
        OnnxInstance(
            model_path,
            threads_per_instance,
            allow_spinning=allow_spinning,
            provider=provider,
            provider_options=provider_options,
        )
        for _ in range(instances)
    ]
    workers = [_Worker(s, random_inputs(s.inputs, batch_size, seed + i), []) for i, s in enumerate(sessions)]
    for w in workers:  # first call pays for allocation and kernel selection
        w.instance.run(w.inputs)

    t_start = clock()
    t_measure = t_start + warmup_s
    t_end = t_measure + duration_s
    barrier = threading.Barrier(len(workers))

    def loop(w: _Worker) -> None:
        barrier.wait()
        while True:
            t0 = clock()
            if t0 >= t_end:
                return
            w.instance.run(w.inputs)
            t1 = clock()
            # A call counts if it started inside the window; throughput counts what ran inside it.
            if t0 >= t_measure:
                w.latencies_s.append(t1 - t0)
                w.items += batch_size

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_done = clock()
    # The window ends when the last call that started inside it finishes.
    window_s = max(t_done, t_end) - t_measure
    lat = [x for w in workers for x in w.latencies_s]
    items = sum(w.items for w in workers)
    lat_ms = _percentiles_ms(lat)
    idle = None
    if instances == 1 and idle_calls > 0:
        w = workers[0]
        samples = []
        for _ in range(idle_calls):
            sleep(idle_gap_s)
            t0 = clock()
            w.instance.run(w.inputs)
            samples.append(clock() - t0)
        idle = _percentiles_ms(samples)
    return {
        "batch_size": batch_size,
        "instances": instances,
        "threads_per_instance": threads_per_instance,
        "allow_spinning": allow_spinning,
        "calls": len(lat),
        "items": items,
        "window_s": round(window_s, 4),
        "throughput_items_per_s": items / window_s if window_s > 0 else 0.0,
        "latency_ms": lat_ms,
        "per_item_latency_ms": {k: v / batch_size for k, v in lat_ms.items()},
        "idle_gap_ms": idle_gap_s * 1000.0 if idle is not None else None,
        "latency_after_idle_ms": idle,
        "provider": sessions[0].provider,
        "requested_provider": provider,
        "execution_providers": list(sessions[0].providers),
    }


def run_bench(
    model_path: Path,
    batches: list[int],
    instances: list[int],
    threads: int | None = None,
    duration_s: float = 5.0,
    warmup_s: float = 1.0,
    model_name: str | None = None,
    on_row=None,
    idle_gap_s: float = 0.05,
    idle_calls: int = 20,
    allow_spinning: bool = False,
    providers: list[str] | None = None,
    provider_options: dict[str, dict] | None = None,
) -> dict:
    """The whole matrix, for each execution provider in `providers` (default: cpu) in turn; `provider_options` maps
    a provider to its options. `threads=None`: usable CPUs divided among the instances. Raises ProviderError when a
    provider is not installed or ONNX Runtime fell back from it."""
    cpus = available_cpus()
    rows = []
    for provider in providers or ["cpu"]:
        for n_inst in instances:
            tpi = threads if threads is not None else max(1, cpus // n_inst)
            for b in batches:
                row = bench_point(
                    Path(model_path),
                    b,
                    n_inst,
                    tpi,
                    duration_s,
                    warmup_s,
                    idle_gap_s=idle_gap_s,
                    idle_calls=idle_calls,
                    allow_spinning=allow_spinning,
                    provider=provider,
                    provider_options=(provider_options or {}).get(provider),
                )
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "bench",
        "model": model_name or Path(model_path).parent.name,
        "model_path": str(model_path),
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "results": rows,
    }


def model_baseline(
    models_dir: Path,
    model: str,
    batches: list[int],
    instances: list[int],
    duration_s: float,
    warmup_s: float,
    say=None,
    providers: list[str] | None = None,
) -> tuple[dict | None, str | None]:
    """run_bench over batch sizes x instances for a repository model (`matrix`, `tune`): (bench document, None),
    or (None, why not) — a failed baseline never stops the served measurements. Call it before locust is imported."""
    from server.repository import ensure_built, load_repository

    try:
        cfg = load_repository(Path(models_dir), [model])[model]
        ensure_built(cfg)
        if say is not None:
            say(f"baseline: in-process ONNX Runtime, batch {batches} × instances {instances}, {duration_s:g}s each")
        return run_bench(
            cfg.model_path,
            batches,
            instances,
            None,
            duration_s,
            warmup_s,
            model_name=model,
            providers=providers or [cfg.instances.provider],
            provider_options={cfg.instances.provider: dict(cfg.instances.provider_options)},
        ), None
    except Exception as e:
        return None, f"in-process baseline failed: {type(e).__name__}: {e}"
