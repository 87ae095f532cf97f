"""`inferload bench`: the in-process ONNX Runtime baseline (no HTTP, no locust)."""

from __future__ import annotations

from pathlib import Path

import typer

from loadgen.commands import _providers as P
from loadgen.results.io import write_json
from loadgen.results.machine import machine_cpus


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter(f"expected positive integers, got {text!r}")
    return values


def bench(
    model: str = typer.Option(..., "--model", help="Model name in the repository."),
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    batch: str = typer.Option("1,8", "--batch", help="Batch sizes, e.g. 1,2,4,8."),
    instances: str = typer.Option("1", "--instances", help="Concurrent instances, e.g. 1,2."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Intra-op threads per instance (default: usable CPUs / instances)."
    ),
    duration: float = typer.Option(5.0, "--duration", min=0.1, help="Measured seconds per point."),
    warmup: float = typer.Option(1.0, "--warmup", min=0.0, help="Warm-up seconds per point (excluded)."),
    idle_gap_ms: float = typer.Option(
        50.0, "--idle-gap-ms", min=0.0, help="Also time single calls after this much idleness (1 instance only)."
    ),
    idle_calls: int = typer.Option(20, "--idle-calls", min=0, help="Calls after an idle gap (0 = skip)."),
    spin: bool = typer.Option(
        False, "--spin/--no-spin", help="Let ORT's threads spin between calls ([instances] allow_spinning in a config)."
    ),
    provider: str | None = P.provider_option("the model's [instances] provider"),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON result here."),
) -> None:
    """Raw ONNX Runtime throughput and latency for each (batch, instances) pair: the limit a server can reach."""

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from loadgen.baseline.bench import run_bench
    from loadgen.commands._repo import repository_or_exit
    from server.providers import ProviderError

    console = Console()
    cfg = repository_or_exit(console, models, [model], build=True)[model]
    batches, insts = _int_list(batch), _int_list(instances)
    providers = P.parse_providers(provider) or [cfg.instances.provider]
    P.check_or_exit(console, providers, "bench")
    console.print(
        f"[bold]bench[/bold] {model}: provider {providers} × batch {batches} × instances {insts}, {duration:g}s each "
        f"(+{warmup:g}s warm-up)"
    )
    try:
        result = run_bench(
            cfg.model_path,
            batches,
            insts,
            threads,
            duration,
            warmup,
            model_name=model,
            idle_gap_s=idle_gap_ms / 1000.0,
            idle_calls=idle_calls,
            allow_spinning=spin,
            providers=providers,
            provider_options={cfg.instances.provider: dict(cfg.instances.provider_options)},
            on_row=lambda r: console.print(
                f"  {r['provider']:>8} batch {r['batch_size']:>3} × {r['instances']} inst: "
                f"{r['throughput_items_per_s']:8.1f} items/s, p50 {r['latency_ms']['p50']:.2f} ms"
            ),
        )
    except ProviderError as e:
        console.print(f"[red]bench:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None
    table = Table(
        title=f"In-process baseline: {model} ({result['machine']['cpu_model']}, {machine_cpus(result['machine'])} CPUs)"
    )
    for col in (
        "provider",
        "batch",
        "instances",
        "threads/inst",
        "items/s",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "ms/item",
        f"p50 after {idle_gap_ms:g} ms idle",
        "p99 after idle",
    ):
        table.add_column(col, justify="right")
    for r in result["results"]:
        lat, idle = r["latency_ms"], r.get("latency_after_idle_ms") or {}
        table.add_row(
            r["provider"],
            str(r["batch_size"]),
            str(r["instances"]),
            str(r["threads_per_instance"]),
            f"{r['throughput_items_per_s']:.1f}",
            f"{lat['p50']:.2f}",
            f"{lat['p90']:.2f}",
            f"{lat['p95']:.2f}",
            f"{lat['p99']:.2f}",
            f"{r['per_item_latency_ms']['p50']:.2f}",
            f"{idle['p50']:.2f}" if idle else "–",
            f"{idle['p99']:.2f}" if idle else "–",
        )
    console.print(table)
    console.print(
        "[dim]p50/p99: back to back; after idle: one call at a time after an idle gap (what a lone camera "
        "sees; idle CPUs and parked ORT threads wake slowly). See docs/server.md, 'The latency path'.[/dim]"
    )
    if out is not None:
        write_json(out, result)
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
