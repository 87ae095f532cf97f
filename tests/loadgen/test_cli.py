"""`inferload run` command-line behaviour (subprocesses: the generator imports locust)."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_cli_import_does_not_import_locust_or_gevent():
    p = _py(
        "import sys, loadgen.cli, loadgen.engine.runner, loadgen.results.build, loadgen.report.terminal\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust', 'geventhttpclient')]\n"
        "assert not bad, bad\n"
        "assert 'run' in [c.name for c in loadgen.cli.app.registered_commands]\n"
    )
    assert p.returncode == 0, p.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", *args, "--no-progress", "--allow-invalid"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_scenario_file_preset_and_flag_precedence(standin, tmp_path):
    s = standin("--service-ms", "1")
    f = tmp_path / "sc.toml"
    f.write_text(f'target = "{s.url}"\nmodel = "m"\nmode = "open"\nrate_rps = 500\nbatch = 4\nduration_s = 30\n')
    out = tmp_path / "r.json"
    csv = tmp_path / "r.csv"
    p = _cli(
        "--scenario",
        str(f),
        "--preset",
        "latency",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--out",
        str(out),
        "--csv",
        str(csv),
    )
    assert p.returncode == 0, p.stdout + p.stderr
    import json

    r = json.loads(out.read_text())
    sc = r["scenario"]
    assert (sc["mode"], sc["users"], sc["batch"], sc["duration_s"], sc["rate_rps"]) == ("closed", 1, 1, 2.0, None)
    assert r["completed"] > 100 and "Latency of successes" in p.stdout
    assert csv.read_text().startswith("t_s,phase,offered")


def test_throughput_preset_reads_max_batch_size(standin, tmp_path):
    s = standin("--service-ms", "1", "--max-batch-size", "4")
    out = tmp_path / "r.json"
    p = _cli(
        "--target",
        s.url,
        "--model",
        "m",
        "--preset",
        "throughput",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stdout + p.stderr
    import json

    sc = json.loads(out.read_text())["scenario"]
    assert (sc["mode"], sc["users"], sc["batch"]) == (
        "closed",
        2,
        4,
    )  # two full server batches in flight: ceil(2 x 4 / 4)


def test_errors_name_the_problem(standin, tmp_path):
    s = standin()
    p = _cli("--target", s.url, "--model", "m", "--users", "1", "--payload", "image", "--duration", "1")
    assert p.returncode == 2 and "BYTES" in p.stdout + p.stderr  # errors go to stderr
    p = _cli("--target", s.url, "--model", "m", "--mode", "open", "--duration", "1")
    assert p.returncode == 2 and "rate_rps" in p.stdout


def test_an_invalid_run_exits_3_unless_allowed(standin, tmp_path):
    """INVALID is not a result: by default the command says so and exits 3 (a 1 s window is below the minimum)."""
    s = standin()
    args = ["-m", "loadgen.cli", "run", "--target", s.url, "--model", "m", "--rate", "20", "--duration", "1"]
    args += ["--warmup", "0.2", "--no-progress", "--out", str(tmp_path / "r.json")]
    p = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert p.returncode == 3, p.stdout + p.stderr
    assert "INVALID" in p.stdout and "--allow-invalid" in p.stdout and (tmp_path / "r.json").exists()
    p = subprocess.run(
        [sys.executable, *args, "--allow-invalid"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert p.returncode == 0, p.stdout + p.stderr
