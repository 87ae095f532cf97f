"""`inferload run --protocol http-json` end to end: the real CLI in a subprocess (it imports locust: never in this
process) against a stand-in JSON endpoint (tests/loadgen/json_endpoint.py, also a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loadgen.conftest import StandIn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENDPOINT = HERE / "json_endpoint.py"
TEMPLATE = ROOT / "examples" / "templates" / "fastapi.json"


class Endpoint(StandIn):
    def __init__(self, *args: str) -> None:
        super().__init__(*args, script=ENDPOINT)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture
def endpoint() -> Iterator[Callable[..., Endpoint]]:
    started: list[Endpoint] = []

    def start(*args: str) -> Endpoint:
        e = Endpoint(*args)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def run_cli(
    tmp_path: Path, url: str, *args: str, duration: str = "1"
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """`inferload run` (closed loop, 2 users); the result document, None when there is none."""
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
    p = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", "--target", url, "--model", "m", "--protocol", "http-json"]
        + ["--allow-invalid"]
        + ["--path", "/predict", "--body-template", str(TEMPLATE), "--shape", "input:1,3,8,8"]
        + [
            "--mode",
            "closed",
            "--users",
            "2",
            "--duration",
            duration,
            "--warmup",
            "0.2",
            "--no-progress",
            "--out",
            str(out),
        ]
        + list(args),
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p, json.loads(out.read_text()) if out.exists() else None


def test_a_run_against_a_json_endpoint_is_valid(endpoint, tmp_path):
    ep = endpoint("--shape", "1,3,8,8")
    p, r = run_cli(tmp_path, ep.url, "--expect", "/output/0/1=0.9", duration="2")  # 2 s: the shortest valid window
    assert p.returncode == 0 and r is not None, p.stdout[-3000:] + p.stderr[-3000:]
    assert r["valid"], r.get("invalid_reasons")
    assert r["completed"] > 0 and r["errors"] == {}
    server = r["server"]["server"]
    assert (server["protocol"], server["path"], server["first_answer"]["status"]) == ("http-json", "/predict", 200)
    assert r["server"]["model"]["inputs"][0]["shape"] == [1, 3, 8, 8]
    st = ep.stats()
    assert st["bad"] == 0 and st["ok"] >= r["completed"] + 1  # + the preflight request (and the warm-up's)
    assert st["ids"] == st["ok"]  # every request carried its own id


def test_answers_failing_expect_count_as_unexpected_answer(endpoint, tmp_path):
    ep = endpoint("--shape", "1,3,8,8", "--drift-every", "2")  # the first answer passes, then every 2nd lacks /output
    p, r = run_cli(tmp_path, ep.url, "--expect", "/output")
    assert p.returncode == 0 and r is not None, p.stdout[-3000:] + p.stderr[-3000:]
    assert set(r["errors"]) == {"unexpected_answer"} and r["errors"]["unexpected_answer"] > 0
    assert r["completed"] > 0  # the others passed


def test_a_wrong_pointer_or_a_wrong_shape_stops_before_any_load(endpoint, tmp_path):
    ep = endpoint("--shape", "1,3,8,8")
    p, r = run_cli(tmp_path, ep.url, "--expect", "/outputs")
    said = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 2 and r is None, said
    assert "--expect /outputs" in said and "no member 'outputs'" in said
    p, _ = run_cli(tmp_path, ep.url, "--shape", "input:1,3,8,9")  # the endpoint answers 500 to a wrong shape
    said = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 2 and "HTTP 500" in said and "expected a list of 8" in said, said
    assert ep.stats()["requests"] == 2  # one preflight request each, no load


def test_credentials_refused_exit_2_after_one_request(endpoint, tmp_path):
    ep = endpoint("--shape", "1,3,8,8", "--token", "s3cret")
    p, r = run_cli(tmp_path, ep.url)
    said = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 2 and r is None, said
    assert "the server refused the credentials (HTTP 401" in said and "--bearer-token-file" in said
    assert ep.stats()["requests"] <= 1
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    p, r = run_cli(tmp_path, ep.url, "--bearer-token-file", str(token))
    assert p.returncode == 0 and r is not None and r["errors"] == {}, p.stdout[-3000:]
    assert "s3cret" not in json.dumps(r)
