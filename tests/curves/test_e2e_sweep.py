"""End to end: a real server (`python -m server`, tiny_classifier, loopback) and a real 2-point `inferload sweep`
in its own process (locust/gevent never enters the test process), then the HTML report from its output.

Kept short: 2 points × (0.5 s warm-up + 2 s measured). With so few samples the runs are expected to be INVALID
("too few samples for p99"); the test checks the plumbing, not the verdicts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_two_point_sweep_against_a_real_server(tmp_path):
    from loadgen.baseline.serverproc import ServerProcess

    out = tmp_path / "sweep"
    with ServerProcess(
        ROOT / "models", model_names=["tiny_classifier"], log_path=tmp_path / "server.log", ready_timeout_s=120
    ) as srv:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen.cli",
                "sweep",
                "--target",
                srv.url,
                "--model",
                "tiny_classifier",
                "--rates",
                "10,20",
                "--duration",
                "2",
                "--warmup",
                "0.5",
                "--slo-p99-ms",
                "500",
                "--out",
                str(out),
                "--html",
                str(tmp_path / "report.html"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = orjson.loads((out / "sweep.json").read_bytes())
    assert doc["kind"] == "sweep" and [p["offered_rps"] for p in doc["points"]] == [10, 20]
    for p in doc["points"]:
        res = orjson.loads((out / p["file"]).read_bytes())
        assert res["completed"] > 0 and res["failed"] == 0
        assert 0 < res["latency_ms"]["p50"] < 500
        assert p["achieved_rps"] > 0
        assert p["valid"] or res["invalid_reasons"]  # an INVALID point always says why
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 6 and "Latency vs throughput" in page
