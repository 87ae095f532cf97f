"""The HTML report from synthetic results: each section in its place with the figures of its input documents
(points, probes, configurations, percentiles, reasons with their codes), inline PNGs, no external references."""

from __future__ import annotations

import base64
import json
import re

import pytest

from loadgen.report.html import render_html, write_html
from loadgen.results.io import ReportInputError, load_all, load_doc, write_json
from tests.curves.fakes import fake_bench, fake_result, write_fake_matrix
from tests.curves.htmlpage import num, parse, sections

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
    doc = json.loads(fake_sweep.read_text())
    page = render_html(load_all([fake_sweep.parent]))
    assert_self_contained(page)
    [sec] = sections(parse(page))  # one input, no peak answer: no overview
    assert sec.kind == "sweep" and "5 of 6 points VALID" in sec.title
    assert sec.headings() == [
        "Latency vs throughput",
        "Points",
        "Latency percentile distribution",
        "Latency decomposition",
        "Realised batch sizes vs offered load",
        "Timelines",
        "Configuration",
    ]
    assert sec.headings("h4") == ["Scenario", "Machine", "Server"]
    cards = sec.cards()
    assert num(cards["points"]) == len(doc["points"]) == 6
    assert num(cards["SLO p99"]) == doc["slo_p99_ms"] and cards["SLO p99"].endswith("ms")
    assert num(cards["peak under SLO"]) == doc["peak"]["rate_rps"] and cards["peak under SLO"].endswith("req/s")
    assert num(cards["p99 at peak"]) == pytest.approx(doc["peak"]["latency_ms"], rel=1e-3)
    assert num(cards["raw in-process limit"]) == doc["raw_limit"]["rps"]
    pts = sec.table("#")  # the points table: one row per point, its figures from the point files
    assert [num(x) for x in pts.column("offered req/s")] == [p["offered_rps"] for p in doc["points"]]
    for col, key in (("achieved req/s", "achieved_rps"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms")):
        assert [num(x) for x in pts.column(col)] == pytest.approx([p[key] for p in doc["points"]], rel=2e-3), col
    assert pts.column("verdict") == ["VALID" if p["valid"] else "INVALID" for p in doc["points"]]
    [bad] = [p for p in doc["points"] if not p["valid"]]
    [why] = sec.callout("INVALID points, because:")  # every invalid reason of the invalid point is shown
    assert why.startswith(f"#{bad['index']} (390 req/s): ")
    for r in bad["invalid_reasons"]:
        assert r["message"] in why
    assert "requests dropped client-side at the in-flight cap" in why and "did not carry out its schedule" in why
    timelines = [d.find("summary").text() for d in sec.node.find_all("details")]
    assert timelines == [
        f"Timeline: point {i} · {p['offered_rps']:g} req/s {'VALID' if p['valid'] else 'INVALID'}"
        for i, p in enumerate(doc["points"])
    ]
    assert sec.alts() == [
        "latency-throughput curve",
        "latency percentile distribution",
        "latency decomposition",
        "realised batch sizes vs offered load",
    ] + [f"timeline point {i}" for i in range(6)]
    assert sec.kv("Machine")["cpu_model"] == "Fake CPU @ 2.0GHz"
    assert sec.kv("Scenario")["model"] == "tiny_classifier" and sec.kv("Server")["server.name"] == "inferload"
    imgs = _images(page)
    assert len(imgs) == 4 + 6  # curve, percentiles, decomposition, batches + one timeline per point
    assert all(i.startswith(b"\x89PNG\r\n\x1a\n") and len(i) > 5000 for i in imgs)


def test_single_result_report(tmp_path):
    write_json(tmp_path / "run.json", fake_result(300, overload=True, errors=2))
    r = json.loads((tmp_path / "run.json").read_text())
    out = write_html(load_all([tmp_path / "run.json"]), tmp_path / "r.html")
    page = out.read_text()
    assert_self_contained(page)
    [sec] = sections(parse(page))
    assert sec.kind == "run" and sec.title.endswith("INVALID")
    cards = sec.cards()
    assert num(cards["target"]) == r["target_rate_rps"] == 300
    for label, value in (
        ("achieved", r["achieved_rate_rps"]),
        ("p50", r["latency_ms"]["p50"]),
        ("p99", r["latency_ms"]["p99"]),
        ("p99.9", r["latency_ms"]["p999"]),
        ("max", r["latency_ms"]["max"]),
    ):
        assert num(cards[label]) == pytest.approx(value, rel=2e-3), label
    assert num(cards["completed"]) == r["completed"] and num(cards["failed"]) == r["failed"] == 2
    ucb = sec.table("")
    assert ucb.headers == ["", "p50", "p90", "p95", "p99", "p999"]
    assert [num(x) for x in ucb.rows[0][1:]] == pytest.approx([r["latency_ms"][k] for k in ucb.headers[1:]], rel=2e-3)
    assert num(ucb.rows[1][4]) == pytest.approx(r["latency_ucb_ms"]["p99"], rel=2e-3) and ucb.rows[1][5] == "–"
    invalid = sec.callout("INVALID because:")  # every reason, with its code
    assert (
        [x.rsplit(" ", 1)[1] for x in invalid]
        == [x["code"] for x in r["invalid_reasons"]]
        == ["schedule_short", "client_drops"]
    )
    assert all(x["message"] in line for x, line in zip(r["invalid_reasons"], invalid))
    assert "errors by status: 503: 2" in sec.callout("Notes")
    slo = [c.text() for c in sec.callouts() if c.text().startswith("SLO p99")]
    assert slo and slo[0].startswith(f"SLO p99 ≤ 50 ms: {r['slo']['verdict'].upper()}")
    assert sec.alts() == [
        "latency percentile distribution",
        "timeline",
        "latency decomposition",
        "realised batch sizes",
    ]
    assert len(_images(page)) == 4


def test_mixed_inputs_peak_matrix_bench(tmp_path, fake_sweep, monkeypatch):
    from typer.testing import CliRunner

    from loadgen.cli import app
    from loadgen.commands import _curves
    from tests.curves.fakes import fake_run

    monkeypatch.setattr(_curves, "runner", lambda progress=True: fake_run)
    r = CliRunner().invoke(
        app, ["peak", "--model", "m", "--slo-p99-ms", "50", "--start-rate", "50", "--out", str(tmp_path / "pk")]
    )
    assert r.exit_code == 0, r.output
    m = write_fake_matrix(tmp_path / "mx")
    write_json(tmp_path / "bench.json", fake_bench())
    docs = load_all([fake_sweep, tmp_path / "pk", m, tmp_path / "bench.json"])
    assert [d.kind for d in docs] == ["sweep", "peak", "matrix", "bench"]
    sweep, peak, matrix = (json.loads(p.read_text()) for p in (fake_sweep, tmp_path / "pk" / "peak.json", m))
    page = render_html(docs)
    assert_self_contained(page)
    overview, s_sweep, s_peak, s_matrix, s_bench = sections(parse(page))
    assert [s.kind for s in (s_sweep, s_peak, s_matrix, s_bench)] == ["sweep", "peak", "matrix", "bench"]

    assert overview.title == "Overview" and overview.alts() == ["latency-throughput overlay"]
    ov = overview.table("kind")
    assert [row[0] for row in ov.rows] == ["sweep", "peak", "matrix", "bench"]
    assert num(ov.rows[0][2]) == sweep["peak"]["rate_rps"] and num(ov.rows[0][3]) == len(sweep["points"])
    assert num(ov.rows[1][2]) == peak["peak_rps"] and num(ov.rows[1][3]) == len(peak["probes"])
    answer = [c.text() for c in overview.callouts() if "answer" in c.classes]
    assert len(answer) == 1 and answer[0].startswith(f"m sustains {peak['peak_rps']:g} req/s at p99 ≤ 50 ms")

    assert peak["status"] == "found" and s_peak.title.endswith("FOUND")
    assert num(s_peak.cards()["peak under SLO"]) == peak["peak_rps"]
    assert num(s_peak.cards()["probes"]) == len(peak["probes"])
    probes = s_peak.table("#")
    assert [num(x) for x in probes.column("rate req/s")] == [p["rate_rps"] for p in peak["probes"]]
    outcomes = [p.get("outcome") or ("pass" if p.get("passed") else "fail") for p in peak["probes"]]
    assert probes.column("SLO") == [o.replace("_", " ").upper() for o in outcomes] and "pass" in outcomes
    assert "Probes" in s_peak.headings()

    cfg = s_matrix.table("config")
    assert cfg.column("config") == [c["label"] for c in matrix["configs"]]
    best = {row[0] for row, cls in zip(cfg.rows, cfg.row_classes) if cls == "best"}
    assert best == set(matrix["best"].values())
    assert s_matrix.cards()["best throughput"] == matrix["best"]["throughput"]
    assert s_matrix.alts() == ["matrix throughput"] and "In-process baseline (no HTTP)" in s_matrix.headings()

    for sec in (s_matrix, s_bench):  # the baseline rows, as in bench.json
        b = sec.table("batch")
        assert [(num(x[0]), num(x[3])) for x in b.rows] == [(1, 450.0), (8, 520.0)]
    assert num(s_bench.cards()["raw limit"]) == 520
    assert all(i.startswith(b"\x89PNG") for i in _images(page))


def test_missing_point_files_are_reported(fake_sweep):
    (fake_sweep.parent / "point-001.json").unlink()
    doc = load_doc(fake_sweep.parent)
    assert doc.missing == ["point-001.json"]
    [sec] = sections(parse(render_html([doc])))
    assert "point files not found (summary rows used): point-001.json" in sec.callout("Notes")
    assert len(sec.table("#").rows) == 6  # the missing point still has its summary row


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
