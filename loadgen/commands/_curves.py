"""Shared pieces of the curve commands (sweep, peak, matrix, overload, tune): common run flags, scenario building,
the lazy runner, raw-limit loading. The leading underscore keeps it out of subcommand discovery.

Nothing here imports locust at module level: `runner()` imports loadgen.engine.runner (and so locust/gevent) only
when a command actually generates load.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from loadgen.util.numbers import parse_numbers

# Common run flags, shared by sweep / peak / matrix (typer OptionInfo objects can be reused as defaults).
SCENARIO_FILE = typer.Option(None, "--scenario", help="Scenario TOML file; flags given here override it.")
DEFAULT_TARGET = "http://127.0.0.1:8000"
DEFAULT_GRPC_TARGET = "grpc://127.0.0.1:8001"  # --protocol grpc: the server's gRPC port (Triton's default too)
TARGET = typer.Option(
    None,
    "--target",
    envvar="INFERLOAD_TARGET",
    help="Server base URL; a path prefix is kept for every call. Order: this flag, $INFERLOAD_TARGET, the --scenario "
    "file's target, then http://127.0.0.1:8000 (--protocol grpc: grpc://127.0.0.1:8001).",
)
MODEL = typer.Option(None, "--model", help="Model name on the server.")
DURATION = typer.Option(None, "--duration", min=0.1, help="Measured seconds per run (default: 10).")
WARMUP = typer.Option(None, "--warmup", min=0.0, help="Warm-up seconds per run, excluded (default: 2).")
PAYLOAD = typer.Option(None, "--payload", help="binary | json | image (default: binary).")
BATCH = typer.Option(None, "--batch", min=1, help="Items per request (client-side batch) (default: 1).")
ARRIVAL = typer.Option(
    None,
    "--arrival",
    help="Open-loop arrivals: poisson | constant | burst (each rate is the "
    "on-period rate) | trace:FILE[:COLUMN] (each rate rescales the trace) (default: poisson).",
)
SEED = typer.Option(None, "--seed", help="Seed of the arrival schedule and payloads.")
WORKERS = typer.Option(None, "--workers", min=0, help="Local Locust worker processes (0 = in-process).")
TIMEOUT_MS = typer.Option(None, "--timeout-ms", min=1.0, help="Per-request client timeout (ms).")
TARGET_RPS = typer.Option(
    None, "--target-rps", min=0.001, help="Sizing: replicas needed to serve this many req/s (uses the measured peak)."
)
HEADROOM = typer.Option(
    0.2, "--headroom", min=0.0, max=0.95, help="Sizing: capacity kept in reserve per replica (0.2 = 20%)."
)
RAW_LIMIT = typer.Option(
    None, "--raw-limit", help="A bench JSON (inferload bench --out): its max items/s is marked as the raw limit."
)


def parse_floats(text: str, what: str, *, allow_zero: bool = False) -> list[float]:
    try:
        return parse_numbers(text, what, float, allow_minimum=allow_zero)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def parse_ints(text: str, what: str, minimum: int = 1) -> list[int]:
    try:
        return parse_numbers(text, what, int, minimum=minimum, allow_minimum=True)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _file_protocol(scenario_file: Path, given: dict[str, Any]) -> Any:
    if "protocol" in given:
        return given["protocol"]
    import tomllib

    try:
        return tomllib.loads(Path(scenario_file).read_text()).get("protocol")
    except (OSError, ValueError):
        return None  # Scenario.from_toml reports it


def build_scenario(scenario_file: Path | None, **fields: Any):
    """Scenario from an optional TOML file plus flags (None = not given). Exits with a clear message on error."""
    from loadgen.engine.scenario import Scenario, ScenarioError

    given = {k: v for k, v in fields.items() if v is not None}
    try:
        if scenario_file is not None:
            default = DEFAULT_GRPC_TARGET if _file_protocol(scenario_file, given) == "grpc" else DEFAULT_TARGET
            return Scenario.from_toml(scenario_file, defaults={"target": default}, **given)
        given.setdefault("target", DEFAULT_GRPC_TARGET if given.get("protocol") == "grpc" else DEFAULT_TARGET)
        if "model" not in given:
            raise ScenarioError("--model is required (or a --scenario file naming the model)")
        return Scenario.build(given, source="command line")
    except ScenarioError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


class Runner:
    """run_scenario bound with progress (and its other keywords). Used as a context manager (`with C.runner(...) as
    run:`), it keeps one fleet of workers (`--workers N`, `--expect-workers N`) for every run the command makes, and
    stops it at the end; called bare, each run with `--workers N` starts and stops its own worker processes."""

    def __init__(self, progress: bool, fleet: dict[str, Any] | None, kw: dict[str, Any]) -> None:
        from loadgen.engine.runner import prepare_engine

        prepare_engine()
        self.progress, self.fleet_opts, self.kw = progress, fleet or {}, kw
        self.expect = int(self.fleet_opts.get("expect_workers") or 0)
        self.fleet: Any = None
        self.entered = False

    def __enter__(self) -> Runner:
        self.entered = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()
            self.fleet = None

    def _wants_fleet(self, scenario: Any) -> bool:
        return self.fleet is not None or bool(self.expect) or (self.entered and scenario.workers > 0)

    def _fleet_for(self, scenario: Any) -> Any:
        expect = self.expect
        if self.fleet is None:
            from loadgen.engine.fleet import Fleet, FleetError, FleetSpec

            spec = FleetSpec(
                local=scenario.workers,
                expect=expect,
                bind=self.fleet_opts.get("master_bind"),
                timeout_s=float(self.fleet_opts.get("worker_timeout") or 120.0),
            )
            if expect:
                host, port = spec.address()
                typer.echo(f"waiting up to {spec.timeout_s:g} s for {expect} worker(s) on {host}:{port} ...", err=True)
            try:
                self.fleet = Fleet(spec)
            except FleetError as e:
                typer.echo(f"error: {e}", err=True)
                raise typer.Exit(3) from None
        return self.fleet

    def __call__(self, scenario: Any) -> dict:
        from loadgen.engine.payloads import PayloadError
        from loadgen.engine.runner import run_scenario
        from loadgen.engine.shipping import ShipError

        try:
            fleet = (lambda: self._fleet_for(scenario)) if self._wants_fleet(scenario) else None
            return run_scenario(scenario, progress=self.progress, fleet=fleet, **self.kw)
        except (PayloadError, ShipError) as e:  # found before any load (preflight, shipping): the user can fix it
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None


def runner(progress: bool = True, fleet: dict[str, Any] | None = None, **kw: Any) -> Runner:
    """A Runner (run_scenario bound); imports locust (gevent) now, not before."""
    return Runner(progress, fleet, kw)


@contextmanager
def running(progress: bool = True, fleet: dict[str, Any] | None = None, **kw: Any) -> Iterator[Any]:
    """`with running(...) as run:` a runner (runner() above, looked up at call time) whose fleet of workers, if any,
    lives for the block and is stopped at its end."""
    run = runner(progress=progress, **({"fleet": fleet} if fleet else {}), **kw)
    with run if hasattr(run, "__enter__") else nullcontext(run) as r:  # a Runner's exit stops its fleet
        yield r


def default_out(kind: str) -> Path:
    return Path("results") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_raw_limit(path: Path | None, items_per_request: int) -> dict | None:
    if path is None:
        return None
    from loadgen.results.io import ReportInputError, read_json
    from loadgen.results.points import raw_limit_from_bench

    try:
        lim = raw_limit_from_bench(read_json(path), items_per_request)
    except ReportInputError as e:
        typer.echo(f"error: --raw-limit {e}", err=True)
        raise typer.Exit(2) from None
    if lim:
        lim["file"] = str(path)
    return lim


def write_html_of(console: Any, out: Path, html: Path | None) -> None:
    """`--html FILE`: the HTML report of the document a command just wrote to `out`."""
    if html is None:
        return
    from loadgen.report.html import write_html
    from loadgen.results.io import load_doc

    write_html([load_doc(out)], html)
    console.print(f"wrote {html}")
