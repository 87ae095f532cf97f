"""The configuration advisor's driver and command on simulated servers (fake runner, no server, no locust)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from loadgen.cli import app
from loadgen.commands import _curves
from loadgen.commands import tune as tune_cmd
from loadgen.results.schema import TuneDoc
from loadgen.search.tune import Constraints, Objective, TuneSpace
from loadgen.search.tune_run import TuneOptions, TuneRequest, run_tune
from server.repository import load_model_config
from tests.curves.fakes import _scenario, tune_fetch, tune_run, tune_serve

REPO = Path(__file__).resolve().parents[2]
SPACE = TuneSpace(batch_sizes=(1, 4, 8, 16), instances=(1, 2), delays_ms=(0.0, 2.0), cpus=2)
cli = CliRunner()


def _request(out: Path, space: TuneSpace = SPACE, **kw) -> TuneRequest:
    return TuneRequest(
        model="tiny_classifier",
        space=space,
        method=kw.pop("method", "quick"),
        objective=Objective.named("balanced"),
        constraints=kw.pop("constraints", Constraints(50.0)),
        opts=TuneOptions(slo_ms=50.0, max_probes=4, confirm=1),
        out_dir=out,
        checkpoint=out / "tune-checkpoint.json",
        models_dir=REPO / "models",
        **kw,
    )


class Interrupt(BaseException):
    """Stands in for Ctrl-C (a BaseException: a configuration's failure is recorded, an interrupt is not)."""


def test_quick_tune_writes_a_valid_document_config_toml_and_sizing(tmp_path):
    doc = run_tune(_request(tmp_path, target_rps=2000.0), _scenario(), tune_run, tune_serve, fetch=tune_fetch)
    TuneDoc.model_validate(doc)
    on_disk = orjson.loads((tmp_path / "tune.json").read_bytes())
    assert on_disk["recommended"] == doc["recommended"] and on_disk["kind"] == "tune"
    assert doc["grid_size"] == 16 and 0 < doc["configs_measured"] < 16
    names = [c["name"] for c in doc["configs"]]
    assert all(c["pooled"]["rss_mb"] == pytest.approx(100 + 60 * c["instances"]) for c in doc["configs"])
    # capacity grows with batch and instances in the simulation: the search climbs to the largest of both
    rec = doc["recommended"]
    assert rec["max_batch_size"] == 16 and rec["instances"] == 2 and rec["intra_op_threads"] == 1
    assert set(doc["pareto"]) <= set(names) and rec["name"] in doc["pareto"]
    toml = (tmp_path / "config.toml").read_text()
    assert doc["config_toml_path"] == "config.toml" and toml == doc["config_toml"]
    parsed = tomllib.loads(toml)
    assert parsed["max_batch_size"] == 16 and parsed["instances"] == {
        "count": 2,
        "intra_op_threads": 1,
        "provider": "cpu",
    }
    assert parsed["builtin"] == "tiny_classifier"  # the model's own keys are kept
    model_dir = tmp_path / "models" / "tiny_classifier"
    model_dir.mkdir(parents=True)
    (model_dir / "config.toml").write_text(toml)
    cfg = load_model_config(model_dir)
    assert cfg.max_batch_size == 16 and cfg.instances.count == 2
    s = doc["sizing"]
    assert s["configuration"] == rec["name"] and s["replicas"] * s["usable_rps_per_replica"] >= 2000
    for c in doc["configs"]:  # every measurement's runs are on disk
        for k in range(1, len(c["measurements"]) + 1):
            assert (tmp_path / "runs" / f"{c['name']}-m{k}").is_dir()


def test_an_interrupted_search_resumes_from_its_checkpoint_and_measures_nothing_twice(tmp_path):
    full = run_tune(_request(tmp_path / "full"), _scenario(), tune_run, tune_serve)
    calls = {"n": 0}

    def dies_after_three_configs(scenario):
        calls["n"] += 1
        if calls["n"] > 3 * 10:  # well inside the fourth measurement (each takes >= 3 runs)
            raise Interrupt()
        return tune_run(scenario)

    out = tmp_path / "cut"
    with pytest.raises(Interrupt):
        run_tune(_request(out), _scenario(), dies_after_three_configs, tune_serve)
    ckpt = orjson.loads((out / "tune-checkpoint.json").read_bytes())
    taken = sum(len(v) for v in ckpt["measurements"].values())
    assert 1 <= taken < full["measure_calls"] and not (out / "tune.json").exists()
    resumed = run_tune(_request(out), _scenario(), tune_run, tune_serve)
    assert resumed["reused_from_checkpoint"] == taken
    assert resumed["measure_calls"] + taken == full["measure_calls"]
    assert resumed["recommended"] == full["recommended"] and resumed["ranking"] == full["ranking"]
    again = run_tune(_request(out), _scenario(), lambda sc: pytest.fail("measured again"), tune_serve)
    assert again["measure_calls"] == 0 and again["recommended"] == full["recommended"]


def test_a_configuration_whose_server_fails_is_recorded_not_fatal(tmp_path):
    def serve(cfg, log):
        if cfg.instances == 2:
            raise RuntimeError("server exited with code 1 before it was ready")
        return tune_serve(cfg, log)

    doc = run_tune(
        _request(tmp_path, space=TuneSpace((1, 8), (1, 2), (0.0,), 2), method="grid"), _scenario(), tune_run, serve
    )
    bad = [c for c in doc["configs"] if c["instances"] == 2]
    assert len(bad) == 2 and all(not c["feasible"] for c in bad)
    assert all("server exited" in c["pooled"]["peak_status"] for c in bad)
    assert doc["recommended"]["instances"] == 1


def _patch(monkeypatch, run=tune_run):
    monkeypatch.setattr(_curves, "runner", lambda progress=True: run)
    monkeypatch.setattr(tune_cmd, "_serve", lambda models, model, nice, grpc=False: tune_serve)
    monkeypatch.setattr(tune_cmd, "_fetch", tune_fetch)


ARGS = [
    "tune",
    "--model",
    "tiny_classifier",
    "--models",
    str(REPO / "models"),
    "--slo-p99-ms",
    "50",
    "--max-batch-size",
    "1,8",
    "--instances",
    "1,2",
    "--max-queue-delay-ms",
    "0",
    "--no-baseline",
    "--max-probes",
    "4",
    "--confirm",
    "1",
    "--cpus",
    "2",
]


def test_tune_command_thresholds_junit_html_and_resume(tmp_path, monkeypatch):
    _patch(monkeypatch)
    out = tmp_path / "t"
    r = cli.invoke(
        app,
        [
            *ARGS,
            "--out",
            str(out),
            "--target-rps",
            "1000",
            "--assert",
            "peak>=100rps",
            "--assert",
            "throughput>=100rps",
            "--junit",
            str(tmp_path / "j.xml"),
            "--html",
            str(tmp_path / "t.html"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = orjson.loads((out / "tune.json").read_bytes())
    assert doc["recommended"]["name"] == "b8-i2x1-d0" and (out / "config.toml").is_file()
    assert "recommended:" in r.output and "b8-i2x1-d0" in r.output and "sizing" in r.output
    assert "threshold PASS peak>=100rps" in r.output and 'failures="0"' in (tmp_path / "j.xml").read_text()
    page = (tmp_path / "t.html").read_text()
    assert 'id="tune-pareto"' in page and "config.toml" in page
    r = cli.invoke(app, [*ARGS, "--out", str(out)])  # the checkpoint is there: refuse to start afresh over it
    assert r.exit_code == 2 and "--resume" in r.output
    _patch(monkeypatch, run=lambda sc: pytest.fail("resumed search measured again"))
    r = cli.invoke(app, [*ARGS, "--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    assert orjson.loads((out / "tune.json").read_bytes())["reused_from_checkpoint"] == doc["measure_calls"]


def test_tune_command_exit_codes(tmp_path, monkeypatch):
    _patch(monkeypatch, run=lambda sc: pytest.fail("load generated despite a bad --assert"))
    r = cli.invoke(app, [*ARGS, "--out", str(tmp_path / "a"), "--assert", "p99<50ms"])
    assert r.exit_code == 2 and "a tune document has no p99" in r.output
    r = cli.invoke(app, [*ARGS, "--out", str(tmp_path / "a"), "--assert", "peak>>3"])
    assert r.exit_code == 2 and "expected <metric> <op> <number>" in r.output
    _patch(monkeypatch)
    r = cli.invoke(app, [*ARGS, "--out", str(tmp_path / "m"), "--max-memory-mb", "150", "--assert", "peak>=1rps"])
    assert r.exit_code == 1, r.output  # 1 instance = 160 MB in the simulation: nothing is feasible
    assert "nothing recommended" in r.output and "threshold FAIL peak>=1rps" in r.output
    assert not (tmp_path / "m" / "config.toml").exists()
