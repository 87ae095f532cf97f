"""`inferload bench`: the in-process ONNX Runtime baseline (no HTTP, no locust)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


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
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Intra-op threads per instance (default: usable CPUs / instances)."),
    duration: float = typer.Option(5.0, "--duration", min=0.1, help="Measured seconds per point."),
    warmup: float = typer.Option(1.0, "--warmup", min=0.0, help="Warm-up seconds per point (excluded)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON result here."),
) -> None:
    """Raw ONNX Runtime throughput and latency for each (batch, instances) pair: the limit a server can reach."""
    import json

    from rich.console import Console
    from rich.table import Table

    from loadgen.bench import run_bench
    from loadgen.commands._repo import repository_or_exit

    console = Console()
    cfg = repository_or_exit(console, models, [model], build=True)[model]
    batches, insts = _int_list(batch), _int_list(instances)
    console.print(f"[bold]bench[/bold] {model}: batch {batches} × instances {insts}, {duration:g}s each (+{warmup:g}s warm-up)")
    result = run_bench(
        cfg.model_path, batches, insts, threads, duration, warmup, model_name=model,
        on_row=lambda r: console.print(
            f"  batch {r['batch_size']:>3} × {r['instances']} inst: {r['throughput_items_per_s']:8.1f} items/s, "
            f"p50 {r['latency_ms']['p50']:.2f} ms"
        ),
    )
    table = Table(title=f"In-process baseline: {model} ({result['machine']['cpu_model']}, {result['machine']['cpus_available']} CPUs)")
    for col in ("batch", "instances", "threads/inst", "items/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "ms/item"):
        table.add_column(col, justify="right")
    for r in result["results"]:
        lat = r["latency_ms"]
        table.add_row(
            str(r["batch_size"]), str(r["instances"]), str(r["threads_per_instance"]),
            f"{r['throughput_items_per_s']:.1f}", f"{lat['p50']:.2f}", f"{lat['p90']:.2f}", f"{lat['p95']:.2f}",
            f"{lat['p99']:.2f}", f"{r['per_item_latency_ms']['p50']:.2f}",
        )
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
