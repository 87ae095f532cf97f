"""`inferload models`: list and build the model repository's models (no locust)."""

from __future__ import annotations

from pathlib import Path

import typer

models_app = typer.Typer(help="List and build models in the repository.", no_args_is_help=True)


@models_app.command("build")
def build(
    names: list[str] | None = typer.Argument(
        None, help="Models or built-in builders to build (default: every built-in model in the repository)."
    ),
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory (created if missing)."),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp32, or int8 (onnxruntime.quantization with synthetic calibration; served as <name>_int8).",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild files that already exist."),
) -> None:
    """Build missing built-in model files (deterministic: same bytes on every build). Prints params and GFLOPs.

    A name that is a built-in builder but not yet in the repository gets a folder and config.toml.
    """
    from rich.console import Console
    from rich.table import Table

    from server.build import build_models, select_models
    from server.repository import ConfigError

    console = Console(width=max(Console().width, 110))
    try:
        rows = build_models(select_models(models, names, precision), force=force)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    table = Table(title=f"Models in {models}")
    for col in ("model", "builder", "precision", "status", "params", "GFLOPs", "MB", "sha256"):
        table.add_column(col, justify="right" if col in ("params", "GFLOPs", "MB") else "left")
    for r in rows:
        table.add_row(
            r.name,
            r.builtin or "-",
            r.precision,
            "[red]missing[/red]" if r.status == "missing" else r.status,
            (f"{r.params / 1e6:.2f}M" if r.params >= 100_000 else f"{r.params:,}") if r.params else "-",
            f"{r.gflops:.3f}" if r.gflops is not None else "-",
            f"{r.size_mb:.1f}" if r.size_mb is not None else "-",
            r.sha256,
        )
    console.print(table)


@models_app.command("list")
def list_models(models: Path = typer.Option(Path("models"), "--models", help="Model repository directory.")) -> None:
    """List models and their batching/instance settings."""
    from rich.console import Console
    from rich.table import Table

    from loadgen.commands._repo import repository_or_exit

    console = Console()
    repo = repository_or_exit(console, models)
    table = Table(title=f"Models in {models}")
    for col in (
        "model",
        "kind",
        "max batch",
        "delay ms",
        "preferred",
        "queue",
        "instances",
        "threads",
        "image",
        "file present",
    ):
        table.add_column(col)
    for name, cfg in repo.items():
        b = cfg.batching
        table.add_row(
            name,
            cfg.kind,
            str(cfg.max_batch_size),
            f"{b.max_queue_delay_ms:g}",
            ",".join(map(str, b.preferred_batch_sizes)) or "-",
            str(b.max_queue_size),
            str(cfg.instances.count),
            str(cfg.threads_per_instance()),
            f"{cfg.image.width}x{cfg.image.height}" if cfg.image else "-",
            "yes" if cfg.model_path.exists() else "no",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
