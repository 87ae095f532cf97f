"""compare: deltas between two runs / two sweeps / two peaks."""

from __future__ import annotations

import pytest
from rich.console import Console

from loadgen.report.compare import compare_rows, print_compare
from loadgen.results.io import load_doc, write_json
from tests.curves.fakes import fake_result, write_fake_sweep


def _rows_by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_two_results(tmp_path):
    write_json(tmp_path / "a.json", fake_result(100))
    write_json(tmp_path / "b.json", fake_result(300, overload=True))
    a, b = load_doc(tmp_path / "a.json"), load_doc(tmp_path / "b.json")
    rows = _rows_by_metric(compare_rows(a, b))
    p99 = rows["p99 ms"]
    assert p99["delta"] == pytest.approx(p99["b"] - p99["a"])
    assert p99["delta_pct"] == pytest.approx(100 * (p99["b"] - p99["a"]) / p99["a"])
    assert p99["verdict"] == "worse"  # latency went up
    assert rows["achieved req/s"]["verdict"] == "better"
    assert rows["verdict"]["a"] == "VALID" and rows["verdict"]["b"] == "INVALID"

    console = Console(record=True, width=160)
    print_compare(a, b, console)
    text = console.export_text()
    for col in ("metric", "A", "B", "Δ", "Δ%", "p99 ms", "achieved req/s"):
        assert col in text
    assert "+" in text and "%" in text


def test_two_sweeps_matched_by_offered_rate(tmp_path):
    a = load_doc(write_fake_sweep(tmp_path / "a", rates=(50, 100, 200)).parent)
    b = load_doc(write_fake_sweep(tmp_path / "b", rates=(50, 100, 300)).parent)
    rows = _rows_by_metric(compare_rows(a, b))
    assert "peak under SLO req/s" in rows
    assert "@50 req/s: p99 ms" in rows and "@100 req/s: p99 ms" in rows
    assert "@200 req/s: p99 ms" not in rows  # no counterpart in B


def test_incompatible_kinds(tmp_path):
    write_json(tmp_path / "a.json", fake_result(100))
    sweep = load_doc(write_fake_sweep(tmp_path / "s").parent)
    with pytest.raises(ValueError, match="cannot compare"):
        compare_rows(load_doc(tmp_path / "a.json"), sweep)
