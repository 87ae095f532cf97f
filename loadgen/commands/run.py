"""`inferload run`: one load-generation run against an OIP v2 server.

Precedence: built-in defaults < --scenario FILE.toml < --preset < explicit flags.
Presets:
  latency     closed loop, 1 user, batch 1, no think time (MLPerf SingleStream-like: per-request latency).
  throughput  closed loop, batch B = min(8, max_batch_size), users = ceil(2 x max_batch_size / B) (from the
              model's Triton config; 8 when unknown): two full server batches in flight, so the queue never
              runs dry and dynamic batches fill up, without queueing seconds of work; read items_per_s.
              (Closed loop on purpose: saturation, not latency, is the question.)
Locust is imported only inside the command (via loadgen.engine.runner.run_scenario), never at CLI start-up.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.commands._request import fleet_options, request_options


class Preset(str, Enum):
    latency = "latency"
    throughput = "throughput"


def _preset_values(preset: Preset, target: Any, model: str, timeout_s: float) -> dict[str, Any]:
    if preset == Preset.latency:
        return {"mode": "closed", "users": 1, "batch": 1, "think_time_ms": 0.0, "rate_rps": None}
    from loadgen.engine.payloads import fetch_model_info

    max_bs = 8
    try:
        cfg = fetch_model_info(target, model, timeout_s).get("config") or {}
        max_bs = int(cfg.get("max_batch_size") or 8)
    except Exception:
        pass
    batch = min(8, max_bs)
    # Enough requests in flight for two full server batches: saturates one instance without queueing seconds.
    users = max(2, -(-2 * max_bs // batch))
    return {"mode": "closed", "users": users, "batch": batch, "rate_rps": None}


@fleet_options
@request_options
def run(
    target: str | None = C.TARGET,
    model: str | None = typer.Option(None, "--model", help="Model name"),
    mode: str | None = typer.Option(None, "--mode", help="open | closed (inferred from --rate / --users)"),
    rate: float | None = typer.Option(None, "--rate", help="Open loop: arrivals per second (all workers)"),
    arrival: str | None = typer.Option(
        None,
        "--arrival",
        help="poisson (default) | constant | burst | trace:FILE[:COLUMN] (replay; --rate rescales it to that mean rate, --speedup divides its offsets)",
    ),
    ramp: str | None = typer.Option(
        None,
        "--ramp",
        help="Open loop: START:END:DURATION, e.g. 10:200:60s (linear after the warm-up; replaces --rate)",
    ),
    speedup: float | None = typer.Option(None, "--speedup", help="Trace replay: divide the trace's offsets by this"),
    burst_on_s: float | None = typer.Option(
        None, "--burst-on-s", help="--arrival burst: seconds at --rate (default 1)"
    ),
    burst_off_s: float | None = typer.Option(
        None, "--burst-off-s", help="--arrival burst: silent seconds after each burst (default 4)"
    ),
    users: int | None = typer.Option(None, "--users", help="Closed loop: concurrent users"),
    think_time_ms: float | None = typer.Option(None, "--think-time-ms", help="Closed loop think time"),
    duration: float | None = typer.Option(None, "--duration", help="Measurement window, seconds (default 10)"),
    warmup: float | None = typer.Option(None, "--warmup", help="Warm-up, seconds (default 2)"),
    payload: str | None = typer.Option(None, "--payload", help="binary (default) | json | image"),
    batch: int | None = typer.Option(None, "--batch", help="Items per request (default 1)"),
    images: str | None = typer.Option(None, "--images", help="Directory of .jpg/.png for --payload image"),
    timeout_ms: float | None = typer.Option(None, "--timeout-ms", help="Per-request timeout (default 30000)"),
    seed: int | None = typer.Option(None, "--seed", help="Seed for arrivals and payloads (default 1)"),
    slo_p99_ms: float | None = typer.Option(
        None,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Latency bound (ms) on --percentile: the run gets a pass / fail / undecided verdict with confidence "
        "(--slo-p99-ms: the old name).",
    ),
    percentile: float | None = typer.Option(
        None, "--percentile", min=1.0, max=99.999, help="Percentile the SLO bounds (default 99)."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Local Locust worker processes (0 = in-process)"),
    max_in_flight: int | None = typer.Option(None, "--max-in-flight", help="Open-loop in-flight cap (drops beyond)"),
    late_threshold_ms: float | None = typer.Option(
        None,
        "--late-threshold-ms",
        help="Open loop: a request sent later than this after its scheduled instant is delayed (default 2)",
    ),
    scenario_file: str | None = typer.Option(None, "--scenario", help="Scenario TOML; flags override it"),
    preset: Preset | None = typer.Option(None, "--preset", help="latency | throughput (see docs)"),
    out: str | None = typer.Option(None, "--out", help="Write the result JSON here"),
    csv_path: str | None = typer.Option(None, "--csv", help="Write the per-second time series CSV here"),
    metrics_port: int | None = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics on 127.0.0.1:PORT"),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a TTY)"),
    asserts: list[str] | None = A.assert_option("run"),
    allow_invalid: bool = A.ALLOW_INVALID,
    junit: Path | None = A.JUNIT,
    request: dict[str, Any] | None = None,
    fleet: dict | None = None,
) -> None:
    """Generate load (open or closed loop) and report latency, throughput and validity."""
    from rich.console import Console

    from loadgen.report.csv_report import write_csv
    from loadgen.report.terminal import print_summary
    from loadgen.results.io import write_json

    console = Console(stderr=False)
    thresholds = A.parse(asserts, "run")
    flags = {
        "target": target,
        "model": model,
        "mode": mode,
        "rate_rps": rate,
        "arrival": arrival,
        "users": users,
        "think_time_ms": think_time_ms,
        "duration_s": duration,
        "warmup_s": warmup,
        "payload": payload,
        "batch": batch,
        "images_dir": images,
        "timeout_ms": timeout_ms,
        "seed": seed,
        "slo_p99_ms": slo_p99_ms,
        "slo_percentile": percentile,
        "workers": workers,
        "max_in_flight": max_in_flight,
        "late_threshold_ms": late_threshold_ms,
        "ramp": ramp,
        "speedup": speedup,
        "burst_on_s": burst_on_s,
        "burst_off_s": burst_off_s,
        **(request or {}),
    }
    sc = _scenario({k: v for k, v in flags.items() if v is not None}, scenario_file, preset, console)

    from loadgen.commands._curves import running

    show = sys.stdout.isatty() if progress is None else progress
    with running(progress=show, fleet=fleet, metrics_port=metrics_port) as run_one:
        result = run_one(sc)  # a PayloadError exits 2 there, before any load
    print_summary(result, console)
    if out:
        write_json(out, result)
        console.print(f"result JSON: {out}")
    if csv_path:
        write_csv(result, csv_path)
        console.print(f"time series CSV: {csv_path}")
    A.check(console, result, thresholds, junit, source=out, allow_invalid=allow_invalid)


def _scenario(flags: dict[str, Any], scenario_file: str | None, preset: Preset | None, console: Any) -> Any:
    """Defaults < --scenario FILE < --preset < flags; the open-loop schedule is computed once here, so a trace that
    cannot be read exits 2 before any load. Exits 2 with the problem named."""
    from loadgen.engine.arrivals import ArrivalError
    from loadgen.engine.scenario import Scenario, ScenarioError
    from loadgen.engine.schedule import scenario_offsets

    shaped = flags.get("ramp") is not None or str(flags.get("arrival") or "").startswith("trace:")
    if (flags.get("rate_rps") is not None or shaped) and "mode" not in flags and "users" not in flags:
        flags["mode"] = "open"
    elif "users" in flags and "mode" not in flags and "rate_rps" not in flags:
        flags["mode"] = "closed"
    try:
        base: dict[str, Any] = {}
        if scenario_file:
            base = Scenario.from_toml(scenario_file).with_secrets()
        if preset is not None:
            t, m = flags.get("target", base.get("target")) or C.DEFAULT_TARGET, flags.get("model", base.get("model"))
            if not m:
                raise ScenarioError("--preset needs --model")
            from loadgen.engine.target import target_of

            probe = Scenario.build(
                {**base, **flags, "target": t, "mode": "closed", "users": 1, "rate_rps": None}, source="--preset"
            )
            base.update(_preset_values(preset, target_of(probe), m, 10.0))
        data = {**base, **flags}
        data.setdefault("target", C.DEFAULT_TARGET)  # as every command: flag, $INFERLOAD_TARGET, file, then this
        if data.get("mode") == "open" and "users" not in flags:
            data["users"] = None
        if data.get("mode") == "closed" and "rate_rps" not in flags:
            data["rate_rps"] = None
        sc = Scenario.build(data, source=scenario_file or "command line")
        if sc.mode == "open" and not scenario_offsets(sc):
            raise ScenarioError("the arrival schedule has no request inside warm-up + duration")
    except (ScenarioError, ArrivalError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    return sc


def register(app: typer.Typer) -> None:
    app.command("run")(run)
