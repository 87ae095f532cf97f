"""The documentation (README.md, docs/, mkdocs.yml) stays true:

- the generated reference pages (docs/reference/{cli,configuration,schemas,metrics}.md) are what
  scripts/gen_docs_reference.py writes from the code today;
- every `inferload ...` command in a ```bash block of README.md or docs/ parses against the real CLI: the command
  exists, every option exists and every value converts (click's `make_context`; nothing is executed, no load).
  Placeholders must therefore be real values (`--rate 50`, not `--rate R`); `[--opt VALUE]` marks an optional
  part and is checked without its brackets. Blocks in other languages (```sh, ```text) are not checked;
- every ```toml block that starts with `# scenario.toml` validates as a scenario, and every one that starts with
  `# models/<name>/config.toml` as a model configuration;
- the README's relative links lead to files that exist, and its quick start's two commands are Makefile targets;
- `mkdocs build --strict` passes (no broken link or anchor, no page missing from the nav).

Nothing here imports locust: loadgen.cli imports it only inside the commands that generate load.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import typer.core

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERATED = ("cli.md", "configuration.md", "schemas.md", "metrics.md")
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
CONFIG_HEADER = re.compile(r"^#\s*models/(?P<name>[A-Za-z0-9_.-]+)/config\.toml\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file (indented fences inside list items too)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        blocks.append(Block(path, start + 1, m["lang"].lower(), "\n".join(body)))
        i += 1
    return blocks


def _blocks(lang: str) -> list[Block]:
    return [b for p in DOC_FILES for b in fenced_blocks(p) if b.lang == lang]


def inferload_commands(block: Block) -> list[list[str]]:
    """The argument lists of every `inferload` (or `.venv/bin/inferload`) call in a shell block."""
    text = re.sub(r"\\\n", " ", block.text)
    out = []
    for line in text.splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as e:
            pytest.fail(f"{block.where}: cannot split {line!r}: {e}")
        segment: list[str] = []
        for tok in [*tokens, ";"]:
            if tok not in SHELL_OPERATORS:
                segment.append(tok)
                continue
            while segment and ENV_ASSIGNMENT.match(segment[0]):
                segment.pop(0)
            if segment and Path(segment[0]).name == "inferload":
                out.append(without_optional_brackets(segment[1:]))
            segment = []
    return out


def without_optional_brackets(args: list[str]) -> list[str]:
    """`[--opt VALUE]` is the usual notation for an optional part: check it with the brackets removed."""
    out, depth = [], 0
    for tok in args:
        if tok.startswith("[-"):
            depth += 1
            tok = tok[1:]
        if depth and tok.endswith("]"):
            depth -= 1
            tok = tok[:-1]
        if tok:
            out.append(tok)
    return out


class DocCommandError(Exception):
    pass


def parse_cli(args: list[str]) -> None:
    """Parse `inferload ARGS` with the real command tree, without invoking anything; DocCommandError says why not.

    Typer carries its own copy of click (typer._click), so this uses typer's public names: typer.Context,
    typer.core.TyperGroup, typer.TyperException (the base of click's usage errors), typer.Exit (--help)."""
    from loadgen.cli import app

    cmd = typer.main.get_command(app)
    name, ctx, rest = "inferload", None, list(args)
    while isinstance(cmd, typer.core.TyperGroup):
        ctx = typer.Context(cmd, info_name=name, parent=ctx)
        if not rest or rest[0].startswith("-"):
            raise DocCommandError(f"no subcommand after {name!r}")
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            raise DocCommandError(f"no such command {rest[0]!r} (known: {', '.join(cmd.list_commands(ctx))})")
        name, cmd, rest = rest[0], sub, rest[1:]
    try:
        cmd.make_context(name, rest, parent=ctx)
    except typer.Exit as e:  # --help
        if e.exit_code != 0:
            raise DocCommandError(f"exit {e.exit_code}") from None
    except typer.TyperException as e:
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        raise DocCommandError(f"{type(e).__name__}: {message}") from None


COMMANDS = [
    pytest.param(args, id=f"{b.where}:{' '.join(args[:1])}") for b in _blocks("bash") for args in inferload_commands(b)
]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_docs_reference", ROOT / "scripts" / "gen_docs_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- generated reference ----------------------------------------------------------------------------------------


def test_generated_reference_pages_are_current():
    gen = _load_generator()
    pages = gen.render_all()
    assert sorted(p.name for p in pages) == sorted(GENERATED)
    stale = [str(p.relative_to(ROOT)) for p, text in pages.items() if not p.exists() or p.read_text("utf-8") != text]
    assert not stale, f"stale generated docs {stale}: run `make docs` (or python scripts/gen_docs_reference.py)"


def test_generated_reference_covers_the_code():
    """Spot checks that the generator walked everything: every command, every schema kind, every metric family."""
    from loadgen.cli import app

    ref = ROOT / "docs" / "reference"
    cli = (ref / "cli.md").read_text("utf-8")
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="inferload")
    for name in root.list_commands(ctx):
        if isinstance(sub := root.get_command(ctx, name), typer.core.TyperGroup):
            for sub_name in sub.list_commands(ctx):
                assert f"## inferload {name} {sub_name} " in cli, f"cli.md lacks inferload {name} {sub_name}"
        assert f"## inferload {name} " in cli, f"cli.md lacks inferload {name}"
    for opt in ("--slo-ms", "--allow-invalid", "--bearer-token-file", "--input-data", "--shape", "--protocol"):
        assert f"`{opt}" in cli or f", {opt}" in cli, f"cli.md lacks {opt}"
    schemas = (ref / "schemas.md").read_text("utf-8")
    for f in (ROOT / "schemas").glob("*.schema.json"):
        assert f"## {f.name.removesuffix('.schema.json')} " in schemas
    metrics = (ref / "metrics.md").read_text("utf-8")
    names = set(re.findall(r"\"(inferload_[a-z_]+)\"", (ROOT / "server" / "metrics.py").read_text("utf-8")))
    assert names, "no metric names found in server/metrics.py"
    for n in names:
        assert f"`{n}" in metrics, f"metrics.md lacks {n}"


# --- examples ---------------------------------------------------------------------------------------------------


def test_docs_have_command_examples():
    assert len(COMMANDS) >= 30, f"only {len(COMMANDS)} inferload commands found in ```bash blocks"
    firsts = {args[0] for args in (p.values[0] for p in COMMANDS) if args}
    for cmd in ("run", "peak", "sweep", "overload", "tune", "matrix", "report", "compare", "bench", "serve"):
        assert cmd in firsts, f"no documented example of `inferload {cmd}`"


@pytest.mark.parametrize("args", COMMANDS)
def test_documented_command_parses(args):
    try:
        parse_cli(args)
    except DocCommandError as e:
        pytest.fail(f"`inferload {shlex.join(args)}` does not parse: {e}")


@pytest.mark.parametrize(
    "args",
    [["run", "--rate", "R"], ["run", "--no-such-option"], ["runn"], ["peak", "--model", "m"], ["models"]],
)
def test_the_parse_check_catches_bad_commands(args):
    with pytest.raises(DocCommandError):
        parse_cli(args)


def test_documented_scenarios_and_model_configs_validate(tmp_path):
    from loadgen.engine.scenario import Scenario
    from server.repository import ModelConfig

    scenarios = configs = 0
    for block in _blocks("toml"):
        first = block.text.lstrip().splitlines()[0] if block.text.strip() else ""
        if first.strip() == "# scenario.toml":
            f = tmp_path / "scenario.toml"
            f.write_text(block.text, encoding="utf-8")
            Scenario.from_toml(f)  # ScenarioError names the field
            scenarios += 1
        elif m := CONFIG_HEADER.match(first.strip()):
            raw = tomllib.loads(block.text)
            ModelConfig.model_validate({**raw, "name": m["name"]})
            configs += 1
    assert scenarios >= 1 and configs >= 1, f"{scenarios} scenario and {configs} config.toml examples checked"


def test_readme_links_and_quick_start():
    readme = (ROOT / "README.md").read_text("utf-8")
    missing = [t for t in re.findall(r"\]\(([^)#\s]+)[^)]*\)", readme) if "://" not in t and not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [
        ln.split("#")[0].strip() for b in re.findall(r"```bash\n(.*?)```", quick, re.S) for ln in b.splitlines()
    ]
    assert [c for c in commands if c] == ["make demo", "make test"], "the quick start is exactly two commands"
    makefile = (ROOT / "Makefile").read_text("utf-8")
    for target in ("demo", "test", "docs"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no `{target}` target"


# --- the site ---------------------------------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs / mkdocs-material not installed (the [docs] extra; `make setup` installs it from the lock)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert r.returncode == 0, "mkdocs build --strict failed:\n" + (r.stdout + r.stderr)[-4000:]
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").exists()
