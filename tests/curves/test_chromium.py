"""The HTML report in a real browser: headless Chromium loads it without console errors, every plot decodes,
and a screenshot is not blank. Skipped (with the reason) only when Chromium is not installed
(Debian: apt-get install chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from loadgen.report.html import write_html
from loadgen.results.io import load_all, write_json
from tests.curves.fakes import fake_result, write_fake_sweep
from tests.curves.htmlpage import num, parse, sections

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")

# Runs after load: counts images that decoded to real pixels and records it on <body> for --dump-dom.
IMG_PROBE = """<script>window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 100 && i.naturalHeight > 100; });
  document.body.setAttribute("data-img-check", ok.length + "/" + imgs.length);
});</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def _console_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    sweep = write_fake_sweep(tmp / "sweep")
    write_json(tmp / "run.json", fake_result(300, overload=True, errors=2))
    return write_html(load_all([sweep.parent, tmp / "run.json"]), tmp / "report.html")


def test_loads_without_console_errors_and_plots_decode(report: Path, tmp_path: Path):
    page = report.read_text()
    n_imgs = len(re.findall(r"<img ", page))
    assert n_imgs >= 10
    # 1) the page exactly as shipped: no console output at all (it has no scripts; a blocked or failed
    #    resource would be logged here)
    r = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", report.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    # the DOM the browser built holds the input documents' content, section by section
    tmp = report.parent
    sweep = json.loads((tmp / "sweep" / "sweep.json").read_text())
    run = json.loads((tmp / "run.json").read_text())
    secs = sections(parse(r.stdout))
    assert [s.kind or s.title for s in secs] == ["Overview", "sweep", "run"]
    assert [num(x) for x in secs[1].table("#").column("offered req/s")] == [p["offered_rps"] for p in sweep["points"]]
    assert num(secs[2].cards()["p99"]) == pytest.approx(run["latency_ms"]["p99"], rel=2e-3)
    assert [x.rsplit(" ", 1)[1] for x in secs[2].callout("INVALID because:")] == [
        x["code"] for x in run["invalid_reasons"]
    ]
    assert _console_lines(r.stderr) == [], _console_lines(r.stderr)
    # 2) the same page with a probe script: every <img> decoded into a real bitmap
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", IMG_PROBE + "</body>"))
    r = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert _console_lines(r.stderr) == [], _console_lines(r.stderr)
    m = re.search(r'data-img-check="(\d+)/(\d+)"', r.stdout)
    assert m, "probe script did not run"
    assert m.group(1) == m.group(2) == str(n_imgs)


def test_screenshot_is_not_blank(report: Path, tmp_path: Path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,2400", report.as_uri())
    assert shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 2400)
    colours = img.resize((140, 240)).getcolors(maxcolors=100000)
    assert colours is not None and len(colours) > 50  # text, plots, badges — not an empty page


PARETO_PROBE = """<script>window.addEventListener("load", function () {
  var img = document.querySelector("#tune-pareto img");
  document.body.setAttribute("data-pareto", img ? (img.complete ? img.naturalWidth + "x" + img.naturalHeight : "incomplete") : "missing");
});</script>"""


def test_tune_report_pareto_plot_renders(tmp_path: Path):
    from loadgen.search.tune import Constraints, Objective, TuneSpace
    from loadgen.search.tune_run import TuneOptions, TuneRequest, run_tune
    from tests.curves.fakes import _scenario, tune_fetch, tune_run, tune_serve

    out = tmp_path / "tune"
    req = TuneRequest(
        model="tiny_classifier",
        space=TuneSpace((1, 4, 8), (1, 2), (0.0,), 2),
        method="grid",
        objective=Objective.named("balanced"),
        constraints=Constraints(50.0, max_memory_mb=200.0),
        opts=TuneOptions(slo_ms=50.0, max_probes=4, confirm=1),
        out_dir=out,
        checkpoint=out / "ckpt.json",
    )
    doc = run_tune(req, _scenario(), tune_run, tune_serve, fetch=tune_fetch)
    assert doc["pareto"] and any(not c["feasible"] for c in doc["configs"])  # RSS 160 MB at 1 instance, 220 MB at 2
    page = tmp_path / "tune.html"
    write_html(load_all([out]), page)
    html = page.read_text()
    assert html.count('id="tune-pareto"') == 1 and "Pareto frontier" in html
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PARETO_PROBE + IMG_PROBE + "</body>"))
    r = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert _console_lines(r.stderr) == [], _console_lines(r.stderr)
    m = re.search(r'data-pareto="(\d+)x(\d+)"', r.stdout)
    assert m, "pareto image not decoded: " + str(re.findall(r'data-pareto="[^"]*"', r.stdout))
    assert int(m.group(1)) > 600 and int(m.group(2)) > 300
    imgs = re.search(r'data-img-check="(\d+)/(\d+)"', r.stdout)
    assert imgs and imgs.group(1) == imgs.group(2)
