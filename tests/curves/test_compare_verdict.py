"""`inferload compare` answers the question under its table: which of A and B is better, with bounds
(loadgen.results.comparison), for runs, sweeps, peaks and tune documents."""

from __future__ import annotations

from typer.testing import CliRunner

from loadgen.cli import app
from loadgen.results.io import write_json
from loadgen.search.tune import Constraints, Objective, TuneSpace
from loadgen.search.tune_run import TuneOptions, TuneRequest, run_tune
from tests.curves.fakes import _scenario, fake_result, tune_run, tune_serve, write_fake_sweep

cli = CliRunner()


def _tune(out, batch_sizes):
    req = TuneRequest(
        model="tiny_classifier",
        space=TuneSpace(batch_sizes, (1,), (0.0,), 2),
        method="grid",
        objective=Objective.named("throughput"),
        constraints=Constraints(50.0),
        opts=TuneOptions(slo_ms=50.0, max_probes=4, confirm=1),
        out_dir=out,
        checkpoint=out / "ckpt.json",
    )
    run_tune(req, _scenario(), tune_run, tune_serve)
    return out / "tune.json"


def test_runs_verdict_with_confidence(tmp_path):
    write_json(tmp_path / "a.json", fake_result(350, seed=3))  # near capacity: a long tail
    write_json(tmp_path / "b.json", fake_result(100, seed=3))
    r = cli.invoke(app, ["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "p99 latency: B's is lower than A's with 99% confidence" in r.output and "B is better" in r.output
    assert "exact order-statistic bounds" in r.output


def test_an_invalid_run_makes_the_comparison_undecidable(tmp_path):
    write_json(tmp_path / "a.json", fake_result(100))
    write_json(tmp_path / "b.json", fake_result(300, overload=True))
    r = cli.invoke(app, ["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], terminal_width=200)
    assert r.exit_code == 0 and "undecidable" in r.output and "B is INVALID" in r.output


def test_tune_documents_and_a_tune_against_a_sweep(tmp_path):
    small, large = _tune(tmp_path / "small", (1,)), _tune(tmp_path / "large", (1, 8))
    r = cli.invoke(app, ["compare", str(small), str(large)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "recommended" in r.output and "b1-i1x2-d0" in r.output and "b8-i1x2-d0" in r.output
    assert "peak rate under the SLO" in r.output and "range over" in r.output
    r = cli.invoke(app, ["report", str(large)], terminal_width=200)  # the terminal summary of a tune document
    assert r.exit_code == 0 and "recommended: b8-i1x2-d0" in r.output and "measured 2 of 2" in r.output
    sweep = write_fake_sweep(tmp_path / "sw")
    r = cli.invoke(app, ["compare", str(sweep.parent), str(large)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "peak under SLO req/s" in r.output and "peak rate under the SLO:" in r.output


def test_two_peaks_say_how_much_more_one_stack_sustains(tmp_path, monkeypatch):
    """The serving-stack question: "B sustains X% more at p99 <= Y ms", with both statuses and confidence."""
    import functools

    from loadgen.commands import _curves
    from tests.curves.fakes import fake_run

    for name, cap in (("a", 300), ("b", 420)):
        monkeypatch.setattr(_curves, "runner", lambda progress=True, c=cap: functools.partial(fake_run, capacity_rps=c))
        args = ["peak", "--model", "tiny_classifier", "--slo-p99-ms", "50", "--start-rate", "50"]
        r = cli.invoke(app, [*args, "--duration", "5", "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")], terminal_width=250)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())  # the console wraps at its own width
    line = text[text.index("B sustains") :]
    assert "% more than A at p99 <= 50 ms" in line
    assert "A: found," in line and "B: found," in line and "99% confidence per verdict" in line
    assert "A measured http://127.0.0.1:8000 (oip/binary)" in text
