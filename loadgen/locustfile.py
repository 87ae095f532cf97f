"""inferload as a plain locustfile: `locust -f loadgen/locustfile.py` (web UI, headless, --master/--worker).

The same users and recording as `inferload run`; configure with custom arguments or environment variables:

    --inferload-scenario FILE.toml   (INFERLOAD_SCENARIO)    a scenario file; the flags below override it
    --inferload-model NAME           (INFERLOAD_MODEL)
    --inferload-mode open|closed     (INFERLOAD_MODE)
    --inferload-rate R               (INFERLOAD_RATE)        open loop: total req/s over all workers
    --inferload-arrival poisson|constant (INFERLOAD_ARRIVAL)
    --inferload-payload binary|json|image (INFERLOAD_PAYLOAD)
    --inferload-batch B              (INFERLOAD_BATCH)
    --inferload-duration S / --inferload-warmup S   (INFERLOAD_DURATION / INFERLOAD_WARMUP)
    --inferload-out FILE.json        (INFERLOAD_OUT)         written by the master/local process at the end
    INFERLOAD_METRICS_PORT                                   Prometheus exporter port (master/local)
    INFERLOAD_WORKERS                                        the worker count (each worker follows rate/workers);
                                                             default: the master's --expect-workers
    --host is the target URL. Closed loop: users = Locust's -u. Open loop: run ONE user per process
    (-u 1 locally, -u <workers> with --master --expect-workers <workers>); each worker follows rate/workers.

For precise timers export GEVENT_BACKEND=select before starting locust (gevent's default epoll backend rounds
sleeps up to 1 ms; the result then carries a warning). `inferload run` sets it for you.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadgen.engine.users import InferenceUser, LoadContext, install_worker_reporting, send_final_when_finished

__all__ = ["InferenceUser"]
log = logging.getLogger("inferload")

_STATE: dict[str, Any] = {
    "ctx": None,
    "collector": None,
    "scenario": None,
    "info": None,
    "started_at": None,
    "metrics": None,
}
_ARGS = [
    ("scenario", str, None),
    ("model", str, None),
    ("mode", str, None),
    ("rate", float, None),
    ("arrival", str, None),
    ("payload", str, None),
    ("batch", int, None),
    ("duration", float, None),
    ("warmup", float, None),
    ("out", str, None),
]


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    for name, typ, default in _ARGS:
        parser.add_argument(
            f"--inferload-{name}",
            type=typ,
            default=default,
            env_var=f"INFERLOAD_{name.upper()}",
            help=f"inferload {name}",
        )


def _scenario_and_info(environment: Any) -> tuple[Any, dict]:
    from loadgen.engine.scenario import Scenario

    if os.environ.get("INFERLOAD_SCENARIO_JSON"):  # workers started by `inferload run --workers`
        sc = Scenario.model_validate_json(os.environ["INFERLOAD_SCENARIO_JSON"])
        info = json.loads(os.environ["INFERLOAD_MODEL_INFO_JSON"])
        return sc, info
    o = environment.parsed_options
    over = {
        "target": environment.host or getattr(o, "host", None),
        "model": o.inferload_model,
        "mode": o.inferload_mode,
        "rate_rps": o.inferload_rate,
        "arrival": o.inferload_arrival,
        "payload": o.inferload_payload,
        "batch": o.inferload_batch,
        "duration_s": o.inferload_duration,
        "warmup_s": o.inferload_warmup,
    }
    if o.inferload_mode == "closed" or (o.inferload_mode is None and o.inferload_rate is None):
        over["users"] = max(1, int(getattr(o, "num_users", None) or 1))
    if o.inferload_scenario:
        sc = Scenario.from_toml(o.inferload_scenario, **over)
    else:
        sc = Scenario.build({k: v for k, v in over.items() if v is not None}, source="locust arguments")
    from loadgen.engine.preflight import model_info

    return sc, model_info(sc)


def _streams(environment: Any) -> int:
    # One name for the worker count: INFERLOAD_WORKERS (`inferload run --workers N` sets it for its workers; compose
    # and Kubernetes set it to the worker replicas). INFERLOAD_STREAMS is its old name.
    for name in ("INFERLOAD_WORKERS", "INFERLOAD_STREAMS"):
        if os.environ.get(name):
            return int(os.environ[name])
    return max(1, int(getattr(environment.parsed_options, "expect_workers", 1) or 1))


def _new_ctx(environment: Any) -> LoadContext:
    sc, info = _STATE["scenario"], _STATE["info"]
    runner = environment.runner
    stream = max(0, getattr(runner, "worker_index", 0)) if isinstance(runner, WorkerRunner) else 0
    streams = _streams(environment) if isinstance(runner, WorkerRunner) else 1
    ctx = LoadContext(sc, info, stream=stream % streams, streams=streams, source=f"worker{stream}")
    ctx.attach(environment)
    return ctx


def _on_worker_report(client_id: str, data: dict, **kw: Any) -> None:
    coll = _STATE["collector"]
    if coll is not None:
        coll.on_worker_report(client_id, data)


def _on_final(environment: Any = None, msg: Any = None, **kw: Any) -> None:
    coll = _STATE["collector"]
    if coll is not None:
        coll.on_final(environment, msg)


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    from loadgen.engine.payloads import PayloadError
    from loadgen.engine.scenario import ScenarioError

    try:
        sc, info = _scenario_and_info(environment)
    except (ScenarioError, PayloadError) as e:
        log.error("inferload: %s", e)
        raise SystemExit(2) from None
    _STATE.update(scenario=sc, info=info)
    if isinstance(runner, WorkerRunner):
        install_worker_reporting(environment, lambda: _STATE["ctx"])
        _STATE["ctx"] = _new_ctx(environment)  # build payloads now, not at test start
        return
    from loadgen.engine.exporter import LoadgenMetrics, MetricsServer

    port = os.environ.get("INFERLOAD_METRICS_PORT")
    _STATE["metrics"] = metrics = LoadgenMetrics() if port else None
    if metrics is not None:
        MetricsServer(metrics, int(port))
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(_on_worker_report)
        runner.register_message("inferload_final", _on_final)
    elif runner is not None:
        _STATE["ctx"] = _new_ctx(environment)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    from loadgen.engine.merge import Collector

    runner = environment.runner
    _STATE["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if isinstance(runner, MasterRunner):
        _STATE["collector"] = coll = Collector(_STATE["scenario"], _STATE.get("metrics"))
        gevent.spawn(_master_watch, environment, coll)
        return
    ctx = _STATE["ctx"]
    stale = ctx is None or ctx.t0 is not None  # a previous test used it: start afresh
    if isinstance(runner, WorkerRunner) and ctx is not None and ctx.streams != _streams(environment):
        stale = True  # --expect-workers arrives with the master's spawn message
    if stale:
        if ctx is not None:
            ctx.detach(environment)
        ctx = _STATE["ctx"] = _new_ctx(environment)
    if isinstance(runner, WorkerRunner):
        send_final_when_finished(environment, ctx)
    else:
        _STATE["collector"] = coll = Collector(_STATE["scenario"], _STATE.get("metrics"))
        gevent.spawn(_local_watch, environment, ctx, coll)


def _headless(environment: Any) -> bool:
    return bool(getattr(environment.parsed_options, "headless", False))


def _local_watch(environment: Any, ctx: LoadContext, coll: Any) -> None:
    while not ctx.finished.wait(1.0):
        coll.add(ctx.recorder.take(), "local")
    coll.add(ctx.recorder.take(), "local")
    _finish(environment, coll)


def _master_watch(environment: Any, coll: Any) -> None:
    n = max(1, int(getattr(environment.parsed_options, "expect_workers", 1) or 1))
    while len(coll.finals) < n:
        gevent.sleep(0.5)
    _finish(environment, coll)


def _finish(environment: Any, coll: Any) -> None:
    from loadgen.report.terminal import print_summary
    from loadgen.results.build import build_result
    from loadgen.results.io import write_json

    info = _STATE["info"]
    result = build_result(
        coll.total,
        _STATE["scenario"],
        started_at=_STATE["started_at"],
        server={"server": info["server"], "model": info["metadata"], "model_config": info.get("config")},
    )
    _STATE["result"] = result
    out = getattr(environment.parsed_options, "inferload_out", None)
    if out:
        write_json(out, result)
    print_summary(result)
    if _headless(environment):
        environment.runner.quit()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    ctx = _STATE["ctx"]
    if ctx is not None:
        ctx.stop()
