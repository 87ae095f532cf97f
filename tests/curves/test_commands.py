"""The sweep / peak / report / compare commands, wired through Typer with a simulated runner (no locust)."""

from __future__ import annotations

import math

import orjson
import pytest
from typer.testing import CliRunner

from loadgen.cli import app
from loadgen.commands import _curves
from loadgen.results.io import write_json
from tests.curves.fakes import fake_bench, fake_run

cli = CliRunner()


def _fake_runner(monkeypatch):
    monkeypatch.setattr(_curves, "runner", lambda progress=True: fake_run)


def test_sweep_command_rates_with_sizing_and_html(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    write_json(tmp_path / "bench.json", fake_bench())
    out = tmp_path / "sw"
    r = cli.invoke(
        app,
        [
            "sweep",
            "--model",
            "tiny_classifier",
            "--target",
            "http://127.0.0.1:9",
            "--rates",
            "50,100,300",
            "--duration",
            "5",
            "--warmup",
            "1",
            "--slo-p99-ms",
            "50",
            "--out",
            str(out),
            "--target-rps",
            "1000",
            "--raw-limit",
            str(tmp_path / "bench.json"),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "sweep.json").read_bytes())
    assert len(doc["points"]) == 3 and doc["peak"]["rate_rps"] == 100
    assert doc["raw_limit"]["items_per_s"] == 520
    assert doc["sizing"]["replicas"] == 13  # ceil(1000 / (~100 x 0.8))
    assert "peak under SLO" in r.output and (tmp_path / "r.html").is_file()


def test_sweep_command_auto_and_users(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    r = cli.invoke(
        app,
        [
            "sweep",
            "--model",
            "m",
            "--rates",
            "auto",
            "--start-rate",
            "40",
            "--factor",
            "2",
            "--slo-p99-ms",
            "50",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "SLO broken" in orjson.loads((tmp_path / "a" / "sweep.json").read_bytes())["stopped"]
    r = cli.invoke(app, ["sweep", "--model", "m", "--users", "1,2", "--out", str(tmp_path / "u")])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["sweep", "--model", "m", "--users", "1", "--rates", "5"])
    assert r.exit_code != 0


def test_peak_command_writes_every_probe(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    out = tmp_path / "pk"
    r = cli.invoke(
        app,
        [
            "peak",
            "--model",
            "m",
            "--slo-p99-ms",
            "50",
            "--start-rate",
            "50",
            "--precision",
            "0.1",
            "--out",
            str(out),
            "--target-rps",
            "1000",
            "--html",
            str(tmp_path / "p.html"),
            "--confirm-rule",
            "pooled",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "peak.json").read_bytes())
    assert doc["kind"] == "peak" and doc["status"] == "found"
    assert 200 < doc["peak_rps"] < 360
    assert all((out / p["file"]).is_file() and p["phase"] in ("bracket", "bisect", "confirm") for p in doc["probes"])
    conf = doc["confirmation"]
    # the pooled rule: one verdict over the three runs at the answer, pooled (single runs there may be undecided)
    assert doc["confirm_rule"] == "pooled" and conf["rule"] == "pooled" and conf["runs"] == 3
    pooled = conf["pooled"]
    assert conf["rate_rps"] == doc["peak_rps"] == pooled["rate_rps"] and pooled["verdict"] == "pass"
    runs = [p for p in doc["probes"] if p["rate_rps"] == doc["peak_rps"]]
    assert pooled["queries"] == sum(p["info"]["verdict"]["samples"] for p in runs)  # no probe is extended
    assert pooled["files"] == [p["file"] for p in runs]
    assert "pooled" in doc["reason"] and f"p{pooled['holds_to_percentile']:.2f}" in doc["reason"]
    at_peak = [p["phase"] for p in doc["probes"] if p["rate_rps"] == doc["peak_rps"]]
    assert at_peak.count("confirm") == conf["runs"] - 1  # the first run there came from the bracket or bisection
    assert doc["sizing"]["replicas"] >= 4
    assert "peak:" in r.output and "sizing" in r.output


def test_peak_command_without_start_rate_probes_capacity_first(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    out = tmp_path / "pk"
    r = cli.invoke(app, ["peak", "--model", "m", "--slo-p99-ms", "50", "--out", str(out), "--duration", "5"])
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "peak.json").read_bytes())
    cap = doc["capacity_probe"]
    assert cap["mode"] == "closed" and (out / "capacity.json").is_file()
    assert doc["start_rps"] == pytest.approx(0.6 * cap["rps"]) and doc["max_rps"] == pytest.approx(1.2 * cap["rps"])
    assert doc["probes"][0]["rate_rps"] == pytest.approx(doc["start_rps"])
    assert doc["status"] == "found" and 200 < doc["peak_rps"] < 360
    # every probe collected the queries its verdict is sized for (838 for p99 at 99%), at least --duration
    for p in doc["probes"]:
        run = orjson.loads((out / p["info"]["files"][0]).read_bytes())
        assert run["duration_s"] == max(5, math.ceil(838 / p["rate_rps"]))


def test_peak_command_confirms_by_one_pooled_verdict_by_default_and_by_majority_on_request(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    out = tmp_path / "pk"
    args = ["peak", "--model", "m", "--slo-ms", "50", "--start-rate", "50", "--precision", "0.1", "--out", str(out)]
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "peak.json").read_bytes())
    assert doc["confirm_rule"] == "pooled" and doc["pooled_verdicts"] and doc["plan"]["extend"] is False
    assert doc["confirmation"]["pooled"]["verdict"] == "pass" and "(pooled)" in r.output
    out2 = tmp_path / "pk2"
    r = cli.invoke(app, [*args[:-1], str(out2), "--confirm-rule", "majority"])
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out2 / "peak.json").read_bytes())
    assert doc["confirm_rule"] == "majority" and doc["pooled_verdicts"] == [] and doc["plan"]["extend"] is True
    conf = doc["confirmation"]
    assert conf["rule"] == "majority" and 2 * conf["passes"] > conf["runs"] >= 2
    assert "(majority)" in r.output and "confirmed by" in doc["reason"] and "pooled" not in doc["reason"]
    assert cli.invoke(app, [*args, "--confirm-rule", "vote"]).exit_code == 2


def test_peak_command_never_passing_exits_1(tmp_path, monkeypatch):
    _fake_runner(monkeypatch)
    r = cli.invoke(
        app,
        [
            "peak",
            "--model",
            "m",
            "--slo-p99-ms",
            "0.5",
            "--start-rate",
            "8",
            "--min-rate",
            "2",
            "--out",
            str(tmp_path / "pk"),
        ],
    )
    assert r.exit_code == 1
    doc = orjson.loads((tmp_path / "pk" / "peak.json").read_bytes())
    assert doc["peak_rps"] is None and doc["status"] == "never_passed"


def test_report_and_compare_commands(tmp_path, fake_sweep):
    html = tmp_path / "out.html"
    r = cli.invoke(app, ["report", str(fake_sweep.parent), "--html", str(html)])
    assert r.exit_code == 0, r.output
    assert html.read_text().startswith("<!DOCTYPE html>")
    r = cli.invoke(app, ["report", str(fake_sweep)])
    assert r.exit_code == 0 and "Sweep" in r.output
    r = cli.invoke(
        app, ["compare", str(fake_sweep.parent / "point-000.json"), str(fake_sweep.parent / "point-003.json")]
    )
    assert r.exit_code == 0, r.output
    assert "p99 ms" in r.output and "Δ%" in r.output
    r = cli.invoke(app, ["report", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "not found" in r.output


def test_peak_html_puts_the_answer_and_sizing_on_top(tmp_path, monkeypatch):
    from loadgen.report.html import render_html
    from loadgen.results.io import load_doc

    _fake_runner(monkeypatch)
    out = tmp_path / "pk"
    r = cli.invoke(app, ["peak", "--model", "m", "--slo-p99-ms", "50", "--out", str(out), "--target-rps", "1000"])
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "peak.json").read_bytes())
    page = render_html([load_doc(out)])
    top = page.index('id="overview"')
    assert top < page.index('id="doc-0"')
    answer = page[top : page.index('id="doc-0"')]
    assert f"{doc['sizing']['replicas']} replicas</strong> for 1,000 req/s" in answer
    assert "--target-rps" not in answer  # the advice names the sizing already given, not the flag
    assert "99% confidence" in answer and "req/s</strong> at p99 &le; 50 ms" in answer
    assert "Confirmation at" in page and "p99 ≤ at 99%" in page


def test_number_lists_take_zero_where_zero_means_something():
    import typer

    assert _curves.parse_floats("0,2", "--max-queue-delay-ms", allow_zero=True) == [0.0, 2.0]
    with pytest.raises(typer.BadParameter, match="> 0"):
        _curves.parse_floats("0,2", "--rates")
    with pytest.raises(typer.BadParameter, match=">= 1"):
        _curves.parse_ints("0", "--instances")
    with pytest.raises(typer.BadParameter, match="comma-separated integers"):
        _curves.parse_ints("1,x", "--instances")


def test_matrix_command_runs_with_its_default_delay(tmp_path, monkeypatch):
    """--max-queue-delay-ms defaults to '0': a zero delay is a configuration, not a bad value."""
    _fake_runner(monkeypatch)
    import loadgen.baseline.serverproc as sp
    from loadgen.search.matrix import no_server

    monkeypatch.setattr(sp, "ServerProcess", lambda *a, **k: no_server()({}, tmp_path))
    r = cli.invoke(
        app,
        [
            "matrix",
            "--model",
            "tiny_classifier",
            "--max-batch-size",
            "1",
            "--instances",
            "1",
            "--slo-p99-ms",
            "50",
            "--no-baseline",
            "--no-low-load",
            "--max-probes",
            "4",
            "--out",
            str(tmp_path / "mx"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = orjson.loads((tmp_path / "mx" / "matrix.json").read_bytes())
    assert [c["max_queue_delay_ms"] for c in doc["configs"]] == [0.0]
