"""`inferload tune`: the configuration advisor (issue #12). Searches max_batch_size × instances (intra-op threads
split to fit the CPUs) × max_queue_delay_ms (× preferred_batch_sizes × execution provider) on a local server, one configuration at a
time (loadgen.search.tune_run), and writes tune.json, the recommended config.toml beside it, and the checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.commands import _providers as P


def _space(
    batch_sizes: str,
    instances: str,
    delays: str,
    preferred: list[str] | None,
    cpus: int | None,
    items_per_request: int,
    providers: list[str] | None = None,
) -> Any:
    from loadgen.search.tune import TuneSpace
    from server.cpus import available_cpus

    delay_vals = C.parse_floats(delays, "--max-queue-delay-ms", allow_zero=True)
    batches = C.parse_ints(batch_sizes, "--max-batch-size")
    if min(batches) < items_per_request:
        raise typer.BadParameter(
            f"--max-batch-size {min(batches)} < --batch {items_per_request}: the server would "
            "refuse every request; drop the smaller sizes or lower --batch"
        )
    variants = [()] + [tuple(C.parse_ints(p, "--preferred-batch-sizes")) for p in preferred or []]
    try:
        return TuneSpace(
            tuple(batches),
            tuple(C.parse_ints(instances, "--instances")),
            tuple(delay_vals),
            cpus or available_cpus(),
            tuple(variants),
            tuple(providers or ["cpu"]),
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _request(out: Path | None, checkpoint: Path | None, resume: bool, **kw: Any) -> Any:
    from loadgen.search.tune_run import TuneRequest

    if resume and out is None and checkpoint is None:
        raise typer.BadParameter("--resume needs the --out (or --checkpoint) of the interrupted search")
    out = out or C.default_out("tune")
    ckpt = checkpoint or out / "tune-checkpoint.json"
    if ckpt.exists() and not resume:
        typer.echo(
            f"error: {ckpt} exists: add --resume to continue that search, or delete it to start afresh", err=True
        )
        raise typer.Exit(2)
    return TuneRequest(out_dir=out, checkpoint=ckpt, **kw)


def tune(
    model: str = typer.Option(..., "--model", help="Model name in the repository."),
    slo_p99_ms: float = typer.Option(
        ...,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Latency bound (ms) on p99: each configuration's peak is the highest rate meeting it "
        "(--slo-p99-ms: the old name).",
    ),
    search: str = typer.Option("quick", "--search", help="quick (coordinate ascent) | grid (every configuration)."),
    objective: str = typer.Option("balanced", "--objective", help="throughput | latency | balanced."),
    min_throughput: float | None = typer.Option(
        None, "--min-throughput", min=0.0, help="Constraint: req/s under the SLO."
    ),
    max_memory_mb: float | None = typer.Option(
        None, "--max-memory-mb", min=1.0, help="Constraint: server RSS (MB, from /metrics)."
    ),
    max_batch_size: str = typer.Option("1,4,8,16,32", "--max-batch-size", help="max_batch_size values."),
    instances: str = typer.Option("1,2", "--instances", help="Instance counts (intra-op threads = CPUs / instances)."),
    max_queue_delay_ms: str = typer.Option("0,2", "--max-queue-delay-ms", help="Batching delays (ms)."),
    provider: str | None = P.provider_option(
        "every provider this ONNX Runtime has (cpu; cpu,openvino in .venv-openvino)"
    ),
    preferred: list[str] | None = typer.Option(
        None,
        "--preferred-batch-sizes",
        help="A preferred_batch_sizes variant, e.g. 4,8 (repeatable; none is always tried).",
    ),
    cpus: int | None = typer.Option(
        None, "--cpus", min=1, help="CPUs to split among instances (default: usable CPUs)."
    ),
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/tune-<time>)."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Checkpoint file (default: OUT/tune-checkpoint.json)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted search from its checkpoint."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also run the in-process baseline."),
    precision: float = typer.Option(0.1, "--precision", min=0.001, max=0.9, help="Peak-search relative precision."),
    max_probes: int = typer.Option(6, "--max-probes", min=1, help="Peak-search runs per configuration."),
    confirm: int = typer.Option(2, "--confirm", min=1, help="Runs at each configuration's peak."),
    server_nice: int = typer.Option(19, "--server-nice", min=0, max=19, help="CPU niceness of the local server."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    target_rps: float | None = C.TARGET_RPS,
    headroom: float = C.HEADROOM,
    duration: float = typer.Option(5.0, "--duration", min=0.1, help="Measured seconds per run."),
    warmup: float = typer.Option(1.0, "--warmup", min=0.0, help="Warm-up seconds per run."),
    payload: str | None = C.PAYLOAD,
    batch: int | None = C.BATCH,
    seed: int | None = C.SEED,
    workers: int | None = C.WORKERS,
    timeout_ms: float | None = C.TIMEOUT_MS,
    asserts: list[str] | None = A.assert_option("tune"),
    allow_invalid: bool = A.ALLOW_INVALID,
    junit: Path | None = A.JUNIT,
) -> None:
    """Which server configuration to deploy: measure configurations on a local server, recommend one (config.toml)."""
    from rich.console import Console

    from loadgen.search.tune import Constraints

    console, thresholds, obj = Console(), A.parse(asserts, "tune"), _objective(search, objective)
    base = C.build_scenario(
        None,
        target="http://127.0.0.1:1",
        model=model,
        duration_s=duration,
        warmup_s=warmup,
        payload=payload,
        batch=batch,
        seed=seed,
        workers=workers,
        timeout_ms=timeout_ms,
        slo_p99_ms=slo_p99_ms,
        mode="closed",
        users=1,
    )
    providers = P.parse_providers(provider) or P.installed_providers()
    P.check_or_exit(console, providers, "tune")
    space = _space(max_batch_size, instances, max_queue_delay_ms, preferred, cpus, base.batch, providers)
    req = _request(
        out,
        checkpoint,
        resume,
        model=model,
        space=space,
        method=search,
        objective=obj,
        constraints=Constraints(slo_p99_ms, min_throughput, max_memory_mb),
        models_dir=models,
        opts=_options(slo_p99_ms, precision, max_probes, confirm, duration),
        target_rps=target_rps,
        headroom=headroom,
    )
    console.print(
        f"[bold]tune[/bold] {model}: {search} search over {len(space.grid())} configurations "
        f"({space.cpus} CPUs, provider {', '.join(space.providers)}), objective {obj.name}, SLO p99 <= {slo_p99_ms:g} ms → {req.out_dir}"
    )
    doc = _measure(console, req, base, baseline, server_nice)
    _print_tune(console, doc, req.out_dir / "tune.json")
    C.write_html_of(console, req.out_dir, html)
    A.check(console, doc, thresholds, junit, source=str(req.out_dir / "tune.json"), allow_invalid=allow_invalid)


def _objective(search: str, objective: str) -> Any:
    from loadgen.search.tune import Objective

    if search not in ("quick", "grid"):
        raise typer.BadParameter(f"--search {search!r}: expected quick | grid")
    try:
        return Objective.named(objective)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _print_tune(console: Any, doc: dict, path: Path) -> None:
    from loadgen.report.terminal_search import print_tune

    print_tune(console, doc, path)


def _options(slo_ms: float, precision: float, max_probes: int, confirm: int, duration: float) -> Any:
    from loadgen.search.tune_run import TuneOptions

    return TuneOptions(
        slo_ms=slo_ms, precision=precision, max_probes=max_probes, confirm=confirm, max_probe_s=max(30.0, duration)
    )


def _serve(models_dir: Path, model: str, nice: int, grpc: bool = False) -> Any:
    """serve(config, log): a local server (loopback, free port; gRPC too when `grpc`) with the configuration's
    overrides."""
    from loadgen.baseline.serverproc import ServerProcess

    return lambda cfg, log: ServerProcess(
        models_dir,
        model_names=[model],
        overrides=cfg.overrides(),
        log_path=log,
        ready_timeout_s=300,
        nice=nice,
        grpc=grpc,
    )


def _fetch(url: str) -> str:
    from loadgen.search.overload import urllib_fetch

    return urllib_fetch(url)


def _measure(console: Any, req: Any, base: Any, baseline: bool, server_nice: int) -> dict:
    """Baseline (before locust is imported), then the search on servers started per configuration."""
    from loadgen.baseline.bench import model_baseline
    from loadgen.results.machine import machine_info
    from loadgen.search.tune_run import run_tune

    bench, note = None, "in-process baseline not run (--no-baseline)"
    if baseline:
        bench, note = model_baseline(
            req.models_dir,
            req.model,
            list(req.space.batch_sizes),
            list(req.space.instances),
            2.0,
            0.5,
            say=console.print,
            providers=list(req.space.providers),
        )
    run = C.runner(progress=False)  # imports locust now, after the in-process baseline
    return run_tune(
        req,
        base,
        run,
        _serve(req.models_dir, req.model, server_nice, grpc=base.protocol == "grpc"),
        bench=bench,
        bench_note=note,
        fetch=_fetch,
        machine=machine_info(),
        say=lambda m: console.print(f"  [dim]{m}[/dim]"),
    )


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
