"""`inferload models`: list and build the model repository's models (no locust)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

models_app = typer.Typer(help="List and build models in the repository.", no_args_is_help=True)


@models_app.command("build")
def build(
    names: Optional[List[str]] = typer.Argument(None, help="Models to build (default: every built-in model)."),
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or int8 (onnxruntime.quantization, synthetic calibration)."),
    force: bool = typer.Option(False, "--force", help="Rebuild files that already exist."),
) -> None:
    """Build missing built-in model files (deterministic: same bytes on every build). Prints params and GFLOPs."""
    import hashlib
    import time

    import onnx
    from rich.console import Console
    from rich.table import Table

    from server.repository import ConfigError, ensure_built, load_repository
    from server.zoo import model_stats

    console = Console()
    if precision not in ("fp32", "int8"):
        console.print(f"[red]error:[/red] --precision must be fp32 or int8, got {precision!r}")
        raise typer.Exit(2)
    try:
        repo = load_repository(models, list(names) if names else None)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    table = Table(title=f"Models in {models}")
    for col in ("model", "builder", "file", "status", "params", "GFLOPs", "MB", "sha256"):
        table.add_column(col)
    done: dict[Path, tuple] = {}
    for name, cfg in repo.items():
        path = cfg.model_path
        if cfg.builtin is None:
            status = "user model" if path.exists() else "[red]missing[/red]"
        elif path in done:
            status = f"shared with {done[path][0]}"
        else:
            t0 = time.perf_counter()
            try:
                built = ensure_built(cfg, precision=precision, force=force)
            except ConfigError as e:
                console.print(f"[red]error:[/red] {e}")
                raise typer.Exit(2)
            status = f"built in {time.perf_counter() - t0:.1f}s" if built else "present"
        if path.exists() and path not in done:
            proto = onnx.load(str(path))
            st = model_stats(proto)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            done[path] = (name, st, digest)
        _, st, digest = done.get(path, (name, {}, "-"))
        params = st.get("params")
        gflops = st.get("gflops")
        table.add_row(
            name, cfg.builtin or "-", str(path.relative_to(Path(models).resolve())) if path.is_relative_to(Path(models).resolve()) else str(path),
            status, f"{params / 1e6:.2f}M" if params else "-", f"{gflops:.2f}" if gflops is not None else "-",
            f"{path.stat().st_size / 1e6:.1f}" if path.exists() else "-", digest,
        )
    console.print(table)


@models_app.command("list")
def list_models(models: Path = typer.Option(Path("models"), "--models", help="Model repository directory.")) -> None:
    """List models and their batching/instance settings."""
    from rich.console import Console
    from rich.table import Table

    from server.repository import ConfigError, load_repository

    console = Console()
    try:
        repo = load_repository(models)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    table = Table(title=f"Models in {models}")
    for col in ("model", "kind", "max batch", "delay ms", "preferred", "queue", "instances", "threads", "image", "file present"):
        table.add_column(col)
    for name, cfg in repo.items():
        b = cfg.batching
        table.add_row(
            name, cfg.kind, str(cfg.max_batch_size), f"{b.max_queue_delay_ms:g}", ",".join(map(str, b.preferred_batch_sizes)) or "-",
            str(b.max_queue_size), str(cfg.instances.count), str(cfg.threads_per_instance()),
            f"{cfg.image.width}x{cfg.image.height}" if cfg.image else "-", "yes" if cfg.model_path.exists() else "no",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
