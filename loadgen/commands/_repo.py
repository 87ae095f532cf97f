"""Shared by the commands that read the model repository: load it (and build missing built-in files), or print
the configuration error and exit 2. No locust here."""

from __future__ import annotations

from pathlib import Path

import typer


def repository_or_exit(console, models: Path, names: list[str] | None = None, build: bool = False) -> dict:
    from server.repository import ConfigError, ensure_built, load_repository

    try:
        repo = load_repository(models, names)
        if build:
            for cfg in repo.values():
                ensure_built(cfg)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    return repo
