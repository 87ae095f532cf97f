"""The worker end of a fleet (loadgen.engine.fleet): `inferload worker --master HOST[:PORT]`.

Joins the master, then serves runs until the master quits (or stays silent for Locust's 60-s heartbeat timeout):
for each run, `inferload_prepare` brings the scenario, the model info, this worker's stream and the shipped files;
the worker builds its LoadContext (payload pool, its stream of the schedule) in a directory of its own and answers
`inferload_prepared`; `inferload_go` starts its users; deltas go out with Locust's reports, tagged with the run, and a
final `inferload_final` once its part has finished and drained; `inferload_abort` ends its part early.
Imports gevent and locust: only `serve` (the command) imports this module.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import tempfile
from typing import Any

from loadgen.engine.users import send_final_when_finished

log = logging.getLogger("inferload")


class WorkerState:
    def __init__(self, env: Any, runner: Any) -> None:
        self.env, self.runner = env, runner
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.ctx: Any = None
        self.run_id: int | None = None
        self.users = 0
        self.tmp: str | None = None

    # ---- messages ------------------------------------------------------------------------------------------------
    def on_prepare(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        d = msg.data
        self._end_previous()
        try:
            from loadgen.engine.scenario import Scenario
            from loadgen.engine.shipping import unpack
            from loadgen.engine.users import LoadContext

            self.tmp = tempfile.mkdtemp(prefix="inferload-worker-")
            fields = unpack(dict(d["scenario"]), d.get("files") or {}, self.tmp)
            sc = Scenario.model_validate(fields)
            self.ctx = LoadContext(sc, d["info"], stream=int(d["stream"]), streams=int(d["streams"]), source=self.name)
            self.run_id, self.users = int(d["run"]), int(d["users"])
            reply = {"run": d["run"], "name": self.name, "ok": True}
        except Exception as e:  # reported to the master, which stops the run before any load
            log.exception("inferload worker: cannot prepare run %s", d.get("run"))
            self.ctx, self.run_id = None, None
            reply = {"run": d.get("run"), "name": self.name, "ok": False, "error": f"{type(e).__name__}: {e}"}
        self.runner.send_message("inferload_prepared", reply)

    def on_go(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        ctx = self.ctx
        if ctx is None or msg.data.get("run") != self.run_id:
            return
        run_id = self.run_id
        if self.users <= 0:  # a closed loop with fewer users than workers: this one has none
            ctx.mark_finished()
        else:
            ctx.attach(self.env)
            self.runner.spawn_users({"InferenceUser": self.users}, wait=False)
        send_final_when_finished(self.env, ctx, run=run_id).link(lambda _: self._stop_users())

    def on_abort(self, environment: Any = None, msg: Any = None, **_: Any) -> None:
        if self.ctx is not None and msg.data.get("run") == self.run_id:
            self.ctx.stop()

    def reporting_ctx(self) -> Any:
        """The context whose deltas go out with Locust's reports: the current run's, until its final delta is due."""
        ctx = self.ctx
        return ctx if ctx is not None and not ctx.finished.is_set() else None

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _stop_users(self) -> None:
        n = self.runner.user_classes_count.get("InferenceUser", 0)
        if n:
            self.runner.stop_users({"InferenceUser": n})

    def _end_previous(self) -> None:
        if self.ctx is not None:
            self.ctx.detach(self.env)
            self._stop_users()
        self.ctx = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def serve(master_host: str, master_port: int, connect_timeout_s: float = 60.0) -> int:
    """Join the master and serve its runs; returns the exit code (0 when the master quits, 3 if it never answered)."""
    from loadgen.engine.runner import prepare_engine

    prepare_engine()
    import locust.runners as lr
    from locust.env import Environment
    from locust.event import Events

    from loadgen.engine.users import InferenceUser, install_worker_reporting

    lr.CONNECT_RETRY_COUNT = max(1, math.ceil(connect_timeout_s / lr.CONNECT_TIMEOUT))
    env = Environment(user_classes=[InferenceUser], events=Events())
    try:
        runner = env.create_worker_runner(master_host, master_port)
    except ConnectionError:
        log.error(
            "inferload worker: no master answered at %s:%d within %g s (is `inferload ... --expect-workers N` running "
            "there, listening with --master-bind on an address this machine reaches?)",
            master_host,
            master_port,
            connect_timeout_s,
        )
        return 3
    state = WorkerState(env, runner)
    runner.register_message("inferload_prepare", state.on_prepare, concurrent=True)
    runner.register_message("inferload_go", state.on_go)
    runner.register_message("inferload_abort", state.on_abort)
    install_worker_reporting(env, state.reporting_ctx, tag=lambda: {"inferload_run": state.run_id})
    runner.send_message("inferload_hello", {"name": state.name})
    log.warning("inferload worker %s joined the master at %s:%d", state.name, master_host, master_port)
    try:
        runner.greenlet.join()
    finally:
        state._end_previous()
    return 0
