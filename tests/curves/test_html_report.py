"""The HTML report from synthetic results: sections, inline PNGs, no external references."""
from __future__ import annotations

import base64
import re

import pytest

from loadgen.report.html import render_html, write_html
from loadgen.results.io import ReportInputError, load_all, load_doc
from loadgen.results.io import write_json
from tests.curves.fakes import fake_bench, fake_result, write_fake_matrix

IMG_RE = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in IMG_RE.findall(page)]


def assert_self_contained(page: str) -> None:
    # no resource is fetched from anywhere: no scripts, stylesheets, external src/href/url()
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:|//)', page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", page, re.I)
    for src in re.findall(r'src="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,")


def test_sweep_report_has_every_section(fake_sweep, tmp_path):
    page = render_html(load_all([fake_sweep.parent]))
    assert_self_contained(page)
    for text in ("Latency vs throughput", "latency-throughput curve", "latency percentile distribution",
                 "latency decomposition", "realised batch sizes vs offered load", "Timelines", "Points",
                 "Configuration", "Scenario", "Server", "Machine", "tiny_classifier",
                 "raw in-process limit", "peak under SLO"):
        assert text in page, text
    assert 'class="badge valid">VALID' in page and 'class="badge invalid">INVALID' in page
    assert "requests dropped client-side at the in-flight cap" in page  # every invalid reason is shown
    assert "did not carry out its schedule" in page
    imgs = _images(page)
    assert len(imgs) >= 4 + 6  # curve, percentiles, decomposition, batches + one timeline per point
    assert all(i.startswith(b"\x89PNG\r\n\x1a\n") and len(i) > 5000 for i in imgs)


def test_single_result_report(tmp_path):
    write_json(tmp_path / "run.json", fake_result(300, overload=True, errors=2))
    out = write_html(load_all([tmp_path / "run.json"]), tmp_path / "r.html")
    page = out.read_text()
    assert_self_contained(page)
    assert "INVALID because" in page and "dropped client-side" in page and "client_drops" in page
    assert "errors by status: 503: 2" in page
    for alt in ("latency percentile distribution", "timeline", "latency decomposition", "realised batch sizes"):
        assert f'alt="{alt}"' in page
    assert len(_images(page)) == 4


def test_mixed_inputs_peak_matrix_bench(tmp_path, fake_sweep, monkeypatch):
    from typer.testing import CliRunner

    from loadgen.cli import app
    from loadgen.commands import _curves
    from tests.curves.fakes import fake_run

    monkeypatch.setattr(_curves, "runner", lambda progress=True: fake_run)
    r = CliRunner().invoke(app, ["peak", "--model", "m", "--slo-p99-ms", "50", "--start-rate", "50",
                                 "--out", str(tmp_path / "pk")])
    assert r.exit_code == 0, r.output
    m = write_fake_matrix(tmp_path / "mx")
    write_json(tmp_path / "bench.json", fake_bench())
    docs = load_all([fake_sweep, tmp_path / "pk", m, tmp_path / "bench.json"])
    assert [d.kind for d in docs] == ["sweep", "peak", "matrix", "bench"]
    page = render_html(docs)
    assert_self_contained(page)
    for text in ("Overview", "Probes", "PASS", "FAIL", "Configurations", "best throughput",
                 "In-process baseline (no HTTP)", "matrix throughput", "latency-throughput overlay"):
        assert text in page, text
    assert all(i.startswith(b"\x89PNG") for i in _images(page))


def test_missing_point_files_are_reported(fake_sweep):
    (fake_sweep.parent / "point-001.json").unlink()
    doc = load_doc(fake_sweep.parent)
    assert doc.missing == ["point-001.json"]
    assert "point files not found" in render_html([doc])


def test_bad_inputs(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ReportInputError, match="not a recognised"):
        load_doc(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{nope")
    with pytest.raises(ReportInputError, match="not valid JSON"):
        load_doc(tmp_path / "y.json")
    with pytest.raises(ReportInputError, match="no sweep.json"):
        load_doc(tmp_path)


def test_html_escapes_untrusted_strings(tmp_path):
    r = fake_result(100)
    r["valid"] = False
    r["invalid_reasons"] = [{"code": "x<b>", "message": "<script>alert(1)</script>"}]
    r["scenario"]["model"] = '"><img src=x>'
    write_json(tmp_path / "r.json", r)
    page = render_html(load_all([tmp_path / "r.json"]))
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x>" not in page
