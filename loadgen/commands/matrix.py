"""`inferload matrix`: max_batch_size × instances (× max_queue_delay_ms × --provider) on a local server, one configuration
at a time: low-load latency, max throughput, peak under the SLO; plus the in-process baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from loadgen.commands import _curves as C
from loadgen.commands import _providers as P


def _baseline(
    models: Path,
    model: str,
    batches: list[int],
    instances: list[int],
    duration: float,
    warmup: float,
    console,
    providers: list[str] | None = None,
) -> tuple[dict | None, str | None]:
    """In-process run_bench over the same batch sizes × instances (× providers) (before locust is imported)."""
    from loadgen.baseline.bench import model_baseline

    return model_baseline(models, model, batches, instances, duration, warmup, say=console.print, providers=providers)


def matrix(
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    model: str = typer.Option(..., "--model", help="Model name in the repository."),
    max_batch_size: str = typer.Option("1,4,8,16", "--max-batch-size", help="Server max_batch_size values."),
    instances: str = typer.Option("1,2", "--instances", help="Server instance counts."),
    max_queue_delay_ms: str = typer.Option("0", "--max-queue-delay-ms", help="Server batching delays (ms), e.g. 0,2."),
    provider: str | None = P.provider_option("the model's [instances] provider (no provider axis)"),
    slo_p99_ms: float = typer.Option(
        ...,
        "--slo-ms",
        "--slo-p99-ms",
        min=0.001,
        help="Latency bound (ms) on --percentile for the peak search (--slo-p99-ms: the old name).",
    ),
    percentile: float = typer.Option(99.0, "--percentile", min=1.0, max=99.999, help="Percentile the SLO bounds."),
    precision: float = typer.Option(0.1, "--precision", min=0.001, max=0.9, help="Peak-search relative precision."),
    max_probes: int = typer.Option(
        10, "--max-probes", min=1, help="Peak-search runs per configuration (confirmations included)."
    ),
    confirm: int = typer.Option(3, "--confirm", min=1, help="Runs at each configuration's peak; a majority must pass."),
    max_probe_duration: float = typer.Option(
        60.0, "--max-probe-duration", min=1.0, help="Longest measured window of one peak probe (s)."
    ),
    low_load: bool = typer.Option(True, "--low-load/--no-low-load", help="Measure p99 with 1 closed-loop user."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also run the in-process baseline."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/matrix-<time>)."),
    server_nice: int = typer.Option(
        19,
        "--server-nice",
        min=0,
        max=19,
        help="CPU niceness of the local server, so the load generator on the same CPUs keeps its schedule.",
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    target_rps: float | None = C.TARGET_RPS,
    headroom: float = C.HEADROOM,
    duration: float | None = C.DURATION,
    warmup: float | None = C.WARMUP,
    payload: str | None = C.PAYLOAD,
    batch: int | None = C.BATCH,
    arrival: str | None = C.ARRIVAL,
    seed: int | None = C.SEED,
    workers: int | None = C.WORKERS,
    timeout_ms: float | None = C.TIMEOUT_MS,
) -> None:
    """Batch × instances matrix on a local server: best configuration for latency and for throughput.

    For each configuration: start the server (loopback, free port, overrides via INFERLOAD_OVERRIDES), measure p99 at low load (1 user), max throughput (closed loop, users = 2 × max_batch × instances) and the peak rate under the SLO (open loop); stop it. Writes matrix.json.
    """
    from rich.console import Console

    from loadgen.baseline.serverproc import ServerProcess
    from loadgen.report.terminal_search import print_matrix
    from loadgen.results.machine import machine_info
    from loadgen.search.matrix import MatrixOptions, matrix_configs, new_matrix_doc, overrides_for, run_matrix

    console = Console()
    batches, insts = C.parse_ints(max_batch_size, "--max-batch-size"), C.parse_ints(instances, "--instances")
    providers = P.parse_providers(provider)
    if providers:
        P.check_or_exit(console, providers, "matrix")
    configs = matrix_configs(
        batches, insts, C.parse_floats(max_queue_delay_ms, "--max-queue-delay-ms", allow_zero=True), providers
    )
    base = C.build_scenario(
        None,
        target="http://127.0.0.1:1",
        model=model,
        duration_s=duration,
        warmup_s=warmup,
        payload=payload,
        batch=batch,
        arrival=arrival,
        seed=seed,
        workers=workers,
        timeout_ms=timeout_ms,
        slo_p99_ms=slo_p99_ms,
        mode="closed",
        users=1,
    )
    out = out or C.default_out("matrix")
    out.mkdir(parents=True, exist_ok=True)
    opts = MatrixOptions(
        slo_ms=slo_p99_ms,
        percentile=percentile,
        precision=precision,
        max_probes=max_probes,
        confirm=confirm,
        max_probe_s=max_probe_duration,
        low_load=low_load,
        target_rps=target_rps,
        headroom=headroom,
    )
    bench, note = (None, "in-process baseline not run (--no-baseline)")
    if baseline:
        bench, note = _baseline(
            models,
            model,
            batches,
            insts,
            base.duration_s if duration is not None else 3.0,
            min(base.warmup_s, 1.0),
            console,
            providers,
        )
    doc = new_matrix_doc(base, model, str(models), opts, baseline=bench, baseline_note=note, machine=machine_info())

    def serve(cfg: dict, log: Path) -> ServerProcess:
        return ServerProcess(
            models,
            model_names=[model],
            overrides=overrides_for(cfg),
            log_path=log,
            ready_timeout_s=300,
            nice=server_nice,
            grpc=base.protocol == "grpc",
        )

    run = C.runner(progress=False)  # imports locust now, after the in-process baseline
    run_matrix(
        doc,
        base,
        run,
        configs,
        serve,
        out,
        opts,
        on_event=lambda m: console.print(f"  {m}"),
        on_config=lambda i, label: console.rule(f"[bold]{i + 1}/{len(configs)}[/bold] {label}"),
    )
    print_matrix(console, doc, out / "matrix.json")
    C.write_html_of(console, out, html)


def register(app: typer.Typer) -> None:
    app.command("matrix")(matrix)
