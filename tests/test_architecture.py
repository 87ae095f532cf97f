"""Checks that keep the architecture as documented (docs/architecture.md): lint and format (ruff), strict types on
the pure cores (mypy), import contracts (import-linter: layers, the server never imports the load generator, no
cycles), modules of a readable size, and a server that runs without the load generator's dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MAX_MODULE_LINES = 440  # "about 400": formatted code; split before a module passes it


def _tool(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is not installed in {BIN} (it is in the [dev] extra: pip install -e '.[dev]')")
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_import_contracts():
    r = _tool("lint-imports")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "BROKEN" not in r.stdout and r.stdout.count("KEPT") >= 3


def test_ruff_lint_and_format():
    r = _tool("ruff", "check", "loadgen", "server", "tests", "benchmarks")
    assert r.returncode == 0, r.stdout[-4000:]
    r = _tool("ruff", "format", "--check", "loadgen", "server", "tests", "benchmarks")
    assert r.returncode == 0, "run `ruff format`:\n" + r.stdout[-3000:]


def test_mypy_strict_on_the_pure_cores():
    r = _tool("mypy", timeout=600)  # files and strictness: [tool.mypy] in pyproject.toml
    assert r.returncode == 0, r.stdout[-4000:]


def test_no_module_over_the_size_limit():
    big = []
    for pkg in ("loadgen", "server"):
        for f in (ROOT / pkg).rglob("*.py"):
            n = len(f.read_text(encoding="utf-8").splitlines())
            if n > MAX_MODULE_LINES:
                big.append(f"{f.relative_to(ROOT)}: {n} lines")
    assert not big, f"split these modules (limit {MAX_MODULE_LINES} lines): {big}"


def test_the_server_runs_without_the_load_generators_dependencies(tmp_path):
    """`inferload[server]` has no locust, gevent, matplotlib, typer or rich: importing the server and building a
    model with them blocked must work."""
    code = textwrap.dedent(f"""
        import sys
        BLOCKED = {{"locust", "gevent", "matplotlib", "typer", "rich", "hdrh", "psutil", "loadgen"}}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked in this test: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import server.app, server.__main__
        from server.build import main
        sys.exit(main(["--models", {str(tmp_path / "models")!r}, "tiny_classifier"]))
    """)
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "tiny_classifier: built" in r.stdout
    assert (tmp_path / "models" / "tiny_classifier" / "config.toml").is_file()


def test_the_load_generator_runs_without_the_servers_dependencies():
    """`inferload[loadgen]` has no ONNX Runtime, FastAPI or uvicorn and its image has no server/ package: the CLI
    must load and the load-generating commands must parse."""
    code = textwrap.dedent("""
        import sys
        BLOCKED = {"server", "onnxruntime", "onnx", "fastapi", "uvicorn", "starlette"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked in this test: {name}")
                return None

        sys.meta_path.insert(0, Block())
        from typer.testing import CliRunner
        from loadgen.cli import app
        for cmd in ("run", "sweep", "peak", "report", "compare", "overload"):
            r = CliRunner().invoke(app, [cmd, "--help"])
            assert r.exit_code == 0, (cmd, r.output)
        import loadgen.engine.runner, loadgen.report.html, loadgen.search.peaksearch
        print("ok")
    """)
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]
