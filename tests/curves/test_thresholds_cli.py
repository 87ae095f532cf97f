"""`--assert` / `--junit` through the CLI on simulated runs: exit codes 0 pass, 1 a threshold failed, 2 usage
error (before any load), 3 the measurement is INVALID; each outcome printed; JUnit XML written."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson
import pytest
from typer.testing import CliRunner

from loadgen.cli import app
from loadgen.commands import _curves
from tests.curves.fakes import fake_run

cli = CliRunner()
RUN = [
    "run",
    "--model",
    "tiny_classifier",
    "--target",
    "http://127.0.0.1:9",
    "--duration",
    "10",
    "--warmup",
    "1",
    "--no-progress",
]


def _runner(monkeypatch, run=fake_run) -> list:
    calls: list = []

    def counted(scenario):
        calls.append(scenario)
        return run(scenario)

    monkeypatch.setattr(_curves, "runner", lambda progress=True, **kw: counted)
    return calls


def test_run_passing_thresholds_exit_0_and_write_junit(tmp_path, monkeypatch):
    calls = _runner(monkeypatch)
    junit = tmp_path / "ci" / "junit.xml"
    r = cli.invoke(
        app,
        [
            *RUN,
            "--rate",
            "100",
            "--out",
            str(tmp_path / "r.json"),
            "--assert",
            "p99<1s",
            "--assert",
            "errors<0.1%",
            "--assert",
            "throughput>=90rps",
            "--junit",
            str(junit),
        ],
    )
    assert r.exit_code == 0, r.output
    assert len(calls) == 1 and calls[0].rate_rps == 100
    assert r.output.count("threshold PASS") == 3
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "0"


def test_run_failed_threshold_exits_1(tmp_path, monkeypatch):
    _runner(monkeypatch)
    r = cli.invoke(
        app,
        [*RUN, "--rate", "100", "--assert", "p99<0.5ms", "--assert", "errors<1%", "--junit", str(tmp_path / "j.xml")],
    )
    assert r.exit_code == 1, r.output
    assert "threshold FAIL p99<0.5ms" in r.output and "threshold PASS errors<1%" in r.output
    assert 'failures="1"' in (tmp_path / "j.xml").read_text()


def test_invalid_run_exits_3_even_when_thresholds_pass(tmp_path, monkeypatch):
    _runner(monkeypatch, run=lambda sc: fake_run(sc.model_copy(update={"rate_rps": 395.0})))  # drops: INVALID
    r = cli.invoke(app, [*RUN, "--rate", "100", "--assert", "p99<10s"])
    assert r.exit_code == 3, r.output
    assert "INVALID measurement" in r.output and "threshold PASS p99<10s" in r.output


@pytest.mark.parametrize(
    "expr,message",
    [
        ("p99 50ms", "expected <metric> <op> <number>"),
        ("p98<50ms", "unknown metric 'p98'"),
        ("p99<50rps", "does not fit p99"),
        ("peak>=10rps", "a run document has no peak"),
    ],
)
def test_bad_assert_exits_2_before_any_load(monkeypatch, expr, message):
    calls = _runner(monkeypatch)
    r = cli.invoke(app, [*RUN, "--rate", "100", "--assert", expr])
    assert r.exit_code == 2 and message in r.output, r.output
    assert calls == []


def test_without_thresholds_an_invalid_run_exits_3_unless_allowed(monkeypatch):
    _runner(monkeypatch, run=lambda sc: fake_run(sc.model_copy(update={"rate_rps": 395.0})))
    r = cli.invoke(app, [*RUN, "--rate", "100"])
    assert r.exit_code == 3 and "INVALID" in r.output and "--allow-invalid" in r.output, r.output
    r = cli.invoke(app, [*RUN, "--rate", "100", "--allow-invalid"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, [*RUN, "--rate", "100", "--allow-invalid", "--assert", "errors<100%"])
    assert r.exit_code == 0, r.output  # --allow-invalid also lifts the INVALID exit under thresholds


def test_sweep_and_peak_thresholds(tmp_path, monkeypatch):
    _runner(monkeypatch)
    base = ["--model", "m", "--slo-p99-ms", "50", "--duration", "5", "--warmup", "1"]
    r = cli.invoke(
        app,
        [
            "sweep",
            *base,
            "--rates",
            "50,100",
            "--out",
            str(tmp_path / "s"),
            "--assert",
            "peak>=100rps",
            "--assert",
            "throughput>=1000rps",
        ],
    )
    assert r.exit_code == 1, r.output
    assert "threshold PASS peak>=100rps" in r.output and "threshold FAIL throughput>=1000rps" in r.output
    r = cli.invoke(
        app,
        [
            "peak",
            *base,
            "--start-rate",
            "50",
            "--out",
            str(tmp_path / "p"),
            "--assert",
            "peak>=150rps",
            "--junit",
            str(tmp_path / "p.xml"),
        ],
    )
    assert r.exit_code == 0, r.output
    peak = orjson.loads((tmp_path / "p" / "peak.json").read_bytes())["peak_rps"]
    assert peak >= 150 and "threshold PASS peak>=150rps" in r.output
    r = cli.invoke(app, ["peak", *base, "--out", str(tmp_path / "q"), "--assert", "errors<1%"])
    assert r.exit_code == 2 and "a peak document has no errors" in r.output
