"""Headless Locust run of one Scenario -> result dict (pinned: `run_scenario`).

`run_scenario` may be called many times in one process (sweeps): each call builds a fresh Environment
(with its own Events), its own LoadContext/Collector, and stops every greenlet, worker process and metrics
server it started. Locust (and so gevent's monkey-patching) is imported inside `run_scenario` only.

Timer precision: gevent's default libev backend (epoll) rounds every sleep up to a whole millisecond;
before gevent is first imported we select libev's `select` backend (GEVENT_BACKEND=select, microsecond
timeouts), which keeps the open-loop schedule lag at ~0.1 ms. Worker processes inherit the setting.

Several generating processes (`--workers N` local ones, `--expect-workers N` from other machines): a Fleet
(loadgen.engine.fleet) whose master runs in this process; each worker runs stream k of n of the schedule (rate/n,
derived seed); their recorder deltas are merged exactly here, and per worker (the result's `workers` table). A
command that makes many runs passes one Fleet to every call (`fleet=`), so the workers join once.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from loadgen.engine.exporter import LoadgenMetrics, MetricsServer
from loadgen.engine.merge import Collector
from loadgen.engine.scenario import Scenario
from loadgen.results.build import build_result
from loadgen.results.machine import machine_info
from loadgen.results.recorded import phase_of

TICK_S = 0.25


def _quiet_spawn_rate(record: logging.LogRecord) -> bool:
    """All users start at once on purpose (the warm-up absorbs it): drop Locust's high-spawn-rate warning."""
    return "spawn rate is very high" not in record.getMessage()


def prepare_engine() -> list[str]:
    """Import the load engine (gevent + locust, which monkey-patches threading) now.

    Call before starting any thread in a command that will generate load: importing locust while another thread
    runs (e.g. a /metrics watcher) deadlocks on the import lock."""
    warnings = _prepare_gevent()
    import locust  # noqa: F401

    return warnings


def _prepare_gevent() -> list[str]:
    os.environ.setdefault("GEVENT_BACKEND", "select")
    import gevent

    backend = getattr(gevent.get_hub().loop, "backend", "?")
    if backend != "select":
        return [f"gevent loop backend is {backend!r}, not 'select': sleeps round up to 1 ms, schedule lag is coarser"]
    return []


class _Progress:
    def __init__(self, enabled: bool, scenario: Scenario) -> None:
        self.enabled = enabled
        self.scenario = scenario
        self.prog: Any = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.prog = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                transient=True,
                auto_refresh=False,
            )
            self.prog.start()
            self.task = self.prog.add_task("starting", total=scenario.end_s, stats="")

    def update(self, elapsed: float, live: dict[str, int], in_flight: int) -> None:
        if not self.enabled:
            return
        sc = self.scenario
        phase = phase_of(elapsed, sc.warmup_s, sc.end_s).replace("warmup", "warm-up")
        stats = f"ok {live['success']}  err {live['failure']}  drop {live['dropped']}  in-flight {in_flight}"
        self.prog.update(self.task, completed=min(elapsed, sc.end_s), description=phase, stats=stats)
        self.prog.refresh()

    def close(self) -> None:
        if self.prog is not None:
            self.prog.stop()


def run_scenario(
    scenario: Scenario, *, progress: bool = False, metrics_port: int | None = None, fleet: Any = None
) -> dict:
    """Run one scenario headless; return the result dict (kind "run": loadgen.results.schema.RunResult).

    fleet: a loadgen.engine.fleet.Fleet to generate the load with (its workers stay for the next call), or a callable
    returning one (called after the preflight, so a bad input fails before any wait for workers); without one,
    `scenario.workers` > 0 starts a fleet of that many local processes for this run only."""
    from loadgen.engine.fleet import Fleet, FleetError, FleetSpec
    from loadgen.engine.preflight import model_info, preflight, target_or_error

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    warnings = _prepare_gevent()
    if scenario.protocol == "grpc":  # grpc goes on gevent before its first channel (grpc_transport.use_gevent)
        import locust  # noqa: F401  (patches the standard library)
    # With worker processes, one request is built here first: a bad input file fails now, not in every worker.
    info = preflight(scenario) if (scenario.workers or fleet is not None) else model_info(scenario)
    if fleet is not None and not hasattr(fleet, "run"):
        fleet = fleet()

    import gevent
    from locust.env import Environment
    from locust.event import Events

    from loadgen.engine.metrics_scrape import WindowScrape
    from loadgen.engine.users import InferenceUser, LoadContext

    # The server's metrics at the measurement window's two ends (Triton/MLServer/inferload adapters): window averages
    # of queue and compute time, realised batch size, memory. A JSON endpoint of unknown kind is scraped only on request.
    window = (
        None
        if scenario.protocol == "http-json" and not scenario.server_metrics
        else WindowScrape.for_scenario(scenario)
    )

    logging.getLogger("locust.runners").addFilter(_quiet_spawn_rate)
    metrics = LoadgenMetrics() if metrics_port is not None else None
    server = MetricsServer(metrics, metrics_port) if metrics is not None and metrics_port is not None else None
    coll = Collector(scenario, metrics)
    prog = _Progress(progress, scenario)
    own_fleet = fleet is None and scenario.workers > 0
    outcome = None
    gc.collect()
    gc.freeze()  # setup objects (payload pools, schedules) leave the GC's scans: fewer pauses mid-run
    try:
        if own_fleet:
            fleet = Fleet(FleetSpec(local=scenario.workers))
        if fleet is None:
            env = Environment(user_classes=[InferenceUser], events=Events(), host=scenario.target)
            _run_local(env, scenario, info, coll, prog, LoadContext, gevent, window)
        else:
            outcome = fleet.run(scenario, info, coll, prog, window)
            warnings += outcome.warnings
    except FleetError as e:
        outcome = _no_workers(str(e))
    finally:
        gc.unfreeze()
        prog.close()
        if server is not None:
            server.stop()
        if own_fleet and fleet is not None:
            fleet.close()
    extra_notes = []
    lost_reason = None
    if outcome is not None:
        n = len(outcome.participants)
        extra_notes.append(
            f"{n} worker processes, each following its own 1/{n} of the load against its own clock; "
            "histograms merged exactly"
        )
        if outcome.lost:
            lost_reason = (
                f"worker(s) lost mid-run: {', '.join(outcome.lost)}; the run's load is not the requested process"
                if n
                else outcome.warnings[-1]
            )
    res = build_result(
        coll.total,
        scenario,
        started_at=started_at,
        server={
            "server": info["server"],
            "model": info["metadata"],
            "model_config": info.get("config"),
            "target": target_or_error(scenario).describe(),
        },
        machine=machine_info(),
        extra_warnings=warnings,
        extra_notes=extra_notes,
        lost_reason=lost_reason,
    )
    if outcome is not None:
        from loadgen.results.workers import workers_section

        res["workers"] = workers_section(
            coll.by_source, outcome.participants, scenario.mode, outcome.lost, outcome.late
        )
    if window is not None:
        res["server_metrics"] = window.section(scenario.model)
    return res


def _no_workers(message: str) -> Any:
    """A run that could not start for want of workers: INVALID with worker_lost, so a search stops with a status."""
    from loadgen.engine.fleet import RunOutcome

    return RunOutcome(lost=["(all)"], warnings=[message])


def _hard_deadline(scenario: Scenario) -> float:
    return time.monotonic() + scenario.longest_s


def _run_local(
    env: Any,
    scenario: Scenario,
    info: dict,
    coll: Collector,
    prog: _Progress,
    ctx_cls: Any,
    gevent: Any,
    window: Any = None,
) -> None:
    ctx = ctx_cls(scenario, info, stream=0, streams=1, source="local")
    ctx.attach(env)
    runner = env.create_local_runner()
    try:
        n = 1 if scenario.mode == "open" else int(scenario.users or 1)
        runner.start(n, spawn_rate=max(1000, n))
        deadline = _hard_deadline(scenario)
        last_take = time.monotonic()
        # Handing the recorder's data over (take: histogram work, 1-4 ms at 2,000 req/s) runs in the thread that
        # also wakes the dispatcher: do it mid-run only when the live exporter needs per-second deltas; the
        # progress line reads the recorder's live counters.
        periodic = coll.metrics is not None
        while not ctx.finished.is_set() and time.monotonic() < deadline:
            ctx.finished.wait(TICK_S)
            warm = ctx.t0 is not None and time.perf_counter() - ctx.t0 >= scenario.warmup_s
            if window is not None and not window.started and warm:
                window.start()
            if periodic and time.monotonic() - last_take >= 1.0:
                coll.add(ctx.recorder.take(), "local")
                last_take = time.monotonic()
            if ctx.t0 is not None:
                prog.update(time.perf_counter() - ctx.t0, ctx.recorder.totals, ctx.recorder.in_flight)
        coll.add(ctx.recorder.take(), "local")
        if window is not None:
            window.end()
    finally:
        ctx.detach(env)
        runner.quit()
