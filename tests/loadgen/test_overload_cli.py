"""`inferload overload` as a user runs it: a fresh process, the capacity given (so no probe imports the load
engine first), a /metrics watcher thread started before the first step. Regression: importing locust while
that thread ran deadlocked on the import lock and the command hung forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.loadgen.conftest import ROOT


def test_overload_with_given_capacity_finishes(standin, tmp_path):
    s = standin("--service-ms", "2")
    out = tmp_path / "ov"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "overload",
            "--target",
            s.url,
            "--model",
            "m",
            "--steps",
            "1",
            "--capacity",
            "40",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    doc = json.loads((out / "overload.json").read_text())
    assert doc["kind"] == "overload" and len(doc["steps"]) == 1
    assert doc["steps"][0]["multiple"] == 1.0
