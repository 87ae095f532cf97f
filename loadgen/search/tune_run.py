"""The configuration advisor's driver (issue #12, `inferload tune`): a server configuration in, a `Measurement` out,
and the whole search from the space to `tune.json` + the recommended `config.toml`.

`make_measure(...)` returns the `measure(config)` the pure search (loadgen.search.tune) calls: it starts a server
with the configuration's overrides through the injected `serve(config, log) -> context manager with .url`
(ServerProcess in the CLI; loadgen.search.matrix.no_server in simulations), runs the matrix measurements of
loadgen.search.matrix.measure_config (p99 at low load, max throughput, peak under the SLO) with the injected
`run(scenario) -> result`, and samples the server's resident memory from its /metrics
(`process_resident_memory_bytes`, the maximum over the measurement; loadgen.search.overload.MetricsWatcher) when a
`fetch` is given. The in-process limit (a bench document, run before locust is imported) is set beside each
configuration. A configuration whose server fails to start is recorded as a measurement with no figures
(infeasible), never an abort of the search.

`run_tune(...)` runs the quick or grid search with a checkpoint (resume measures nothing twice), then writes
`tune.json` (kind "tune", validated against loadgen.results.schema.TuneDoc) and, when a configuration is
recommended, `config.toml` next to it.
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from loadgen.results.io import write_json
from loadgen.search.matrix import measure_config, on_server, raw_items_per_s
from loadgen.search.overload import Fetch, MetricsWatcher
from loadgen.search.tune import (
    Constraints,
    Measurement,
    Objective,
    TuneConfig,
    TuneResult,
    TuneSpace,
    grid_search,
    quick_search,
)
from loadgen.search.tune_doc import Checkpoint, render_config_toml, tune_document, tune_sizing

RunFn = Callable[[Any], dict]
TuneServe = Callable[[TuneConfig, Path], AbstractContextManager[Any]]
"""serve(config, log_path) -> a context manager yielding a started server with `.url`."""
Say = Callable[[str], None]


@dataclass(frozen=True)
class TuneOptions:
    """How each configuration is measured (the matrix's measurements; see loadgen.search.matrix)."""

    slo_ms: float
    percentile: float = 99.0
    precision: float = 0.1
    max_probes: int = 6
    confirm: int = 2
    max_probe_s: float = 30.0
    metrics_interval_s: float = 0.5


def measurement_of(row: dict[str, Any], *, rss_mb: float | None, raw_rps: float | None) -> Measurement:
    """A matrix row (measure_config's) as the search's Measurement; figures of INVALID runs are left out."""
    ll, mt = row.get("low_load") or {}, row.get("max_throughput") or {}
    return Measurement(
        peak_rps=row.get("peak_rps"),
        peak_status=(row.get("peak") or {}).get("status"),
        max_throughput_rps=mt.get("achieved_rps") if mt.get("valid") else None,
        p99_low_load_ms=ll.get("p99_ms") if ll.get("valid") else None,
        rss_mb=rss_mb,
        raw_rps=raw_rps,
        p99_at_peak_ms=row.get("p99_at_peak_ms"),
    )


def _cell(cfg: TuneConfig) -> dict[str, Any]:
    return {
        "max_batch_size": cfg.max_batch_size,
        "instances": cfg.instances,
        "max_queue_delay_ms": cfg.max_queue_delay_ms,
        "provider": cfg.provider,
    }


def make_measure(
    base: Any,
    run: RunFn,
    serve: TuneServe,
    out_dir: Path,
    opts: TuneOptions,
    *,
    bench: dict | None = None,
    fetch: Fetch | None = None,
    done: dict[str, int] | None = None,
    say: Say = lambda _m: None,
) -> Callable[[TuneConfig], Measurement]:
    """`measure(config)` for the search (module docstring). Each measurement's runs go to
    `out_dir/runs/<config>-m<k>/`; `done` counts the measurements already taken per configuration (a checkpoint's)."""
    taken: Counter[str] = Counter(done or {})
    items = max(1, int(getattr(base, "batch", 1) or 1))

    def measure(cfg: TuneConfig) -> Measurement:
        taken[cfg.name] += 1
        where = Path(out_dir) / "runs" / f"{cfg.name}-m{taken[cfg.name]}"
        raw = raw_items_per_s(bench, _cell(cfg))
        raw_rps = None if raw is None else raw / items
        say(
            f"{cfg.name}: measurement {taken[cfg.name]} (server: max_batch_size {cfg.max_batch_size}, "
            f"{cfg.instances} instance(s) x {cfg.intra_op_threads} thread(s), delay {cfg.max_queue_delay_ms:g} ms, "
            f"provider {cfg.provider})"
        )
        try:
            with serve(cfg, where / "server.log") as srv:
                watch: Any = MetricsWatcher(srv.url, base.model, fetch, opts.metrics_interval_s) if fetch else None
                with watch if watch is not None else contextlib.nullcontext():
                    on, target = on_server(base, srv)
                    row = measure_config(
                        on,
                        run,
                        _cell(cfg),
                        target,
                        where,
                        slo_ms=opts.slo_ms,
                        percentile=opts.percentile,
                        precision=opts.precision,
                        max_probes=opts.max_probes,
                        confirm=opts.confirm,
                        max_probe_s=opts.max_probe_s,
                        low_load=True,
                        on_event=say,
                    )
        except Exception as e:
            say(f"{cfg.name}: not measured: {type(e).__name__}: {e}")
            return Measurement(None, f"error: {type(e).__name__}: {e}"[:300], None, None, None, raw_rps)
        rss = watch.summary().get("rss_max_mb") if watch is not None else None
        m = measurement_of(row, rss_mb=rss, raw_rps=raw_rps)
        g = lambda v, d=4: "–" if v is None else f"{v:.{d}g}"  # noqa: E731
        say(
            f"{cfg.name}: peak {g(m.peak_rps)} req/s ({m.peak_status}), max {g(m.max_throughput_rps)} req/s, p99 at "
            f"low load {g(m.p99_low_load_ms, 3)} ms" + (f", RSS {rss:.0f} MB" if rss else "")
        )
        return m

    return measure


def checkpoint_meta(
    model: str, space: TuneSpace, base: Any, opts: TuneOptions, objective: Objective, constraints: Constraints
) -> dict[str, Any]:
    """What must not change between an interrupted search and its resumption (JSON round-trip stable)."""
    meta = {
        "model": model,
        "objective": objective.name,
        "constraints": {
            "slo_p99_ms": constraints.slo_p99_ms,
            "min_throughput_rps": constraints.min_throughput_rps,
            "max_memory_mb": constraints.max_memory_mb,
        },
        "space": space_dict(space),
        "measure": {
            "percentile": opts.percentile,
            "precision": opts.precision,
            "max_probes": opts.max_probes,
            "confirm": opts.confirm,
            "duration_s": base.duration_s,
            "warmup_s": base.warmup_s,
            "payload": base.payload,
            "batch": base.batch,
            "arrival": base.arrival,
        },
    }
    return json.loads(json.dumps(meta))


def space_dict(space: TuneSpace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "max_batch_size": list(space.batch_sizes),
        "instances": list(space.instances),
        "max_queue_delay_ms": list(space.delays_ms),
        "preferred_batch_sizes": [list(p) for p in space.preferred],
        "cpus": space.cpus,
    }
    if space.providers != ("cpu",):  # (checkpoints of cpu-only searches from before the provider axis still resume)
        out["provider"] = list(space.providers)
    return out


def base_config(models_dir: Path, model: str) -> dict[str, Any]:
    """The model's current config.toml as a dict ({} when it cannot be read: the tuned keys are written anyway)."""
    try:
        return tomllib.loads((Path(models_dir) / model / "config.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


@dataclass(frozen=True)
class TuneRequest:
    """Everything `run_tune` needs besides the injected run / serve."""

    model: str
    space: TuneSpace
    method: Literal["quick", "grid"]
    objective: Objective
    constraints: Constraints
    opts: TuneOptions
    out_dir: Path
    checkpoint: Path
    models_dir: Path = Path("models")
    target_rps: float | None = None
    headroom: float = 0.2


def run_tune(
    req: TuneRequest,
    base: Any,
    run: RunFn,
    serve: TuneServe,
    *,
    bench: dict | None = None,
    bench_note: str | None = None,
    fetch: Fetch | None = None,
    machine: dict | None = None,
    say: Say = lambda _m: None,
) -> dict[str, Any]:
    """The search with its checkpoint, then tune.json (+ config.toml); returns the tune document."""
    out = Path(req.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    ckpt = Checkpoint(
        req.checkpoint, checkpoint_meta(req.model, req.space, base, req.opts, req.objective, req.constraints)
    )
    recorded = ckpt.load()
    if recorded:
        say(
            f"resuming from {req.checkpoint}: {sum(map(len, recorded.values()))} measurement(s) of "
            f"{len(recorded)} configuration(s) already taken"
        )
    measure = make_measure(
        base,
        run,
        serve,
        out,
        req.opts,
        bench=bench,
        fetch=fetch,
        done={k: len(v) for k, v in recorded.items()},
        say=say,
    )
    search = quick_search if req.method == "quick" else grid_search
    result = search(
        req.space, measure, objective=req.objective, constraints=req.constraints, recorded=recorded, on_new=ckpt.record
    )
    return write_tune(result, req, base, started=started, bench=bench, bench_note=bench_note, machine=machine)


def write_tune(
    result: TuneResult,
    req: TuneRequest,
    base: Any,
    *,
    started: str,
    bench: dict | None,
    bench_note: str | None,
    machine: dict | None,
) -> dict[str, Any]:
    out = Path(req.out_dir)
    toml_text = None
    notes = [
        f"each configuration: {n}"
        for n in (
            "p99 at low load: closed loop, 1 user",
            "max throughput: closed loop, enough users to fill every batch",
            "peak: open-loop peak search under the SLO (loadgen.search.peaksearch)",
            "memory: max server RSS (process_resident_memory_bytes) over the measurement",
        )
    ]
    if result.recommended is not None:
        rec = result.recommended
        toml_text = render_config_toml(
            base_config(req.models_dir, req.model),
            rec,
            header=[
                f"{req.model}: configuration recommended by `inferload tune` ({result.method} search, objective "
                f"{result.objective.name}) on {started}",
                f"copy to {req.models_dir / req.model / 'config.toml'}",
            ],
        )
        (out / "config.toml").write_text(toml_text)
    else:
        notes.append("no configuration met every constraint: nothing recommended, no config.toml written")
    sizing = tune_sizing(result, req.target_rps, req.headroom) if req.target_rps else None
    doc = tune_document(result, model=req.model, sizing=sizing, config_toml=toml_text, notes=notes)
    doc.update(
        {
            "started_at": started,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "space": space_dict(req.space),
            "grid_size": len(req.space.grid()),
            "configs_measured": len(result.evaluated),
            "scenario": base.model_dump(mode="json"),
            "checkpoint": str(req.checkpoint),
            "config_toml_path": "config.toml" if toml_text else None,
            "baseline": bench,
            "baseline_note": bench_note,
            "machine": machine or {},
        }
    )
    write_json(out / "tune.json", doc)
    return doc
