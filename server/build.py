"""`python -m server.build`: build the repository's built-in model files (the server image's own way to prepare
models; `inferload models build` prints the same rows as a table).

Deterministic: seeded weights, the same bytes on every build, nothing downloaded. A name that is a built-in builder
but not yet in the repository gets a folder and config.toml. Exit codes: 0 built/present, 2 a bad name or config.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from server.repository import ConfigError, ModelConfig, ensure_built, load_repository, scaffold_builtin


@dataclass(frozen=True)
class BuildRow:
    name: str
    builtin: str | None
    precision: str
    status: str
    """'built 1.2s' | 'present' | 'user model' | 'missing' | '= <name>' (same file as another model)"""
    params: int | None
    gflops: float | None
    size_mb: float | None
    sha256: str


def select_models(models: Path, names: list[str] | None, precision: str = "fp32") -> dict[str, ModelConfig]:
    """The models to build: `names` (scaffolding built-in builders not yet in the repository), or every built-in
    model of `precision` in it. ConfigError on a bad name or config."""
    if precision not in ("fp32", "int8"):
        raise ConfigError(f"precision must be fp32 or int8, got {precision!r}")
    models.mkdir(parents=True, exist_ok=True)
    if not names:
        return {k: c for k, c in load_repository(models).items() if c.builtin and c.precision == precision}
    selected = []
    for n in names:
        if precision == "int8" or not (models / n / "config.toml").exists():
            selected.append(scaffold_builtin(models, n.removesuffix("_int8"), precision).name)
        else:
            selected.append(n)
    return load_repository(models, selected)


def build_models(repo: dict[str, ModelConfig], force: bool = False) -> list[BuildRow]:
    """Build what is missing (or everything, `force`); one row per model with its size and digest."""
    import onnx

    from server.zoo import model_stats

    rows: list[BuildRow] = []
    seen: dict[Path, tuple[str, dict, str]] = {}
    for name, cfg in repo.items():
        path = cfg.model_path
        if path in seen:
            status = f"= {seen[path][0]}"
        elif cfg.builtin is None:
            status = "user model" if path.exists() else "missing"
        else:
            t0 = time.perf_counter()
            status = f"built {time.perf_counter() - t0:.1f}s" if ensure_built(cfg, force=force) else "present"
        if path.exists() and path not in seen:
            seen[path] = (name, model_stats(onnx.load(str(path))), hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        _, st, digest = seen.get(path, (name, {}, "-"))
        rows.append(
            BuildRow(
                name,
                cfg.builtin,
                cfg.precision,
                status,
                st.get("params"),
                st.get("gflops"),
                path.stat().st_size / 1e6 if path.exists() else None,
                digest,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m server.build", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="models or built-in builders (default: every built-in model)")
    p.add_argument("--models", type=Path, default=Path("models"), help="model repository (created if missing)")
    p.add_argument("--precision", default="fp32", help="fp32 or int8")
    p.add_argument("--force", action="store_true", help="rebuild files that already exist")
    a = p.parse_args(argv)
    try:
        rows = build_models(select_models(a.models, a.names, a.precision), force=a.force)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{r.name}: {r.status} ({r.builtin or 'user'}, {r.precision}, {r.sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
