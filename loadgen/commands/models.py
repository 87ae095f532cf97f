"""`inferload models`: list and build the model repository's models (no locust)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

models_app = typer.Typer(help="List and build models in the repository.", no_args_is_help=True)


@models_app.command("build")
def build(
    names: Optional[List[str]] = typer.Argument(None, help="Models or built-in builders to build (default: every built-in model in the repository)."),
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory (created if missing)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or int8 (onnxruntime.quantization with synthetic calibration; served as <name>_int8)."),
    force: bool = typer.Option(False, "--force", help="Rebuild files that already exist."),
) -> None:
    """Build missing built-in model files (deterministic: same bytes on every build). Prints params and GFLOPs.

    A name that is a built-in builder but not yet in the repository gets a folder and config.toml.
    """
    import hashlib
    import time

    import onnx
    from rich.console import Console
    from rich.table import Table

    from server.repository import ConfigError, ensure_built, load_repository, scaffold_builtin
    from server.zoo import model_stats

    console = Console(width=max(Console().width, 110))
    if precision not in ("fp32", "int8"):
        console.print(f"[red]error:[/red] --precision must be fp32 or int8, got {precision!r}")
        raise typer.Exit(2)
    try:
        models.mkdir(parents=True, exist_ok=True)
        if names:
            selected = []
            for n in names:
                base = n.removesuffix("_int8")
                if precision == "int8" or not (models / n / "config.toml").exists():
                    selected.append(scaffold_builtin(models, base, precision).name)
                else:
                    selected.append(n)
            repo = load_repository(models, selected)
        else:
            repo = {k: c for k, c in load_repository(models).items() if c.builtin and c.precision == precision}
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    table = Table(title=f"Models in {models}")
    for col in ("model", "builder", "precision", "status", "params", "GFLOPs", "MB", "sha256"):
        table.add_column(col, justify="right" if col in ("params", "GFLOPs", "MB") else "left")
    seen: dict[Path, tuple] = {}
    for name, cfg in repo.items():
        path = cfg.model_path
        if path in seen:
            status = f"= {seen[path][0]}"
        elif cfg.builtin is None:
            status = "user model" if path.exists() else "[red]missing[/red]"
        else:
            t0 = time.perf_counter()
            try:
                built = ensure_built(cfg, force=force)
            except ConfigError as e:
                console.print(f"[red]error:[/red] {e}")
                raise typer.Exit(2)
            status = f"built {time.perf_counter() - t0:.1f}s" if built else "present"
        if path.exists() and path not in seen:
            st = model_stats(onnx.load(str(path)))
            seen[path] = (name, st, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        _, st, digest = seen.get(path, (name, {}, "-"))
        params, gflops = st.get("params"), st.get("gflops")
        table.add_row(
            name, cfg.builtin or "-", cfg.precision, status,
            (f"{params / 1e6:.2f}M" if params >= 100_000 else f"{params:,}") if params else "-",
            f"{gflops:.3f}" if gflops is not None else "-",
            f"{path.stat().st_size / 1e6:.1f}" if path.exists() else "-", digest,
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
