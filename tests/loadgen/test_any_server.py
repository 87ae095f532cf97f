"""A server behind a gateway, as real deployments are: https with a private CA, a bearer token, an ingress that
routes on the Host header, everything under a path prefix, a model version. `inferload run` must reach it with
--target/--header/--bearer-token-file/--ca-file/--model-version, keep credentials out of every output, and refuse
before any load (exit 2, a message that names the fix) when the credentials or the certificate are wrong.

The stand-in (tests/loadgen/standin_server.py) enforces each option: a request it would not route is answered
404/401 and counted (`refused`), so a VALID run with no refusals proves every call carried them.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.loadgen.conftest import ROOT

TOKEN = "s3cr3t-t0ken-value"
HOST = "mobilenet.default.example.com"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a server certificate for 127.0.0.1 it signed (made here, valid one day)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=inferload test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    (d / "token").write_text(TOKEN + "\n")
    (d / "wrong-token").write_text("not-the-token\n")
    return d


@pytest.fixture
def gateway(standin, pki: Path):
    # 50 ms per answer, like a model behind a gateway: a VALID verdict then tolerates the few ms of send lateness a
    # busy 2-core CI box causes (with ~1 ms answers, two sends 3 ms late among 80 decide p99: lag_material)
    return standin(
        "--prefix", "/gw/serving", "--token", TOKEN, "--require-host", HOST, "--version", "3",
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), "--service-ms", "50",
    )  # fmt: skip


def _stats(srv) -> dict:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{srv.port}/gw/serving/stats", context=ctx, timeout=5) as r:
        return json.loads(r.read())


def _run(tmp_path: Path, *args: str, valid: bool = False) -> tuple[subprocess.CompletedProcess, Path]:
    """`inferload run` at 40 req/s for 2 s. `valid=True`: a VALID verdict is part of what the test checks (exit 3
    otherwise); else `--allow-invalid`, as 80 requests' p99 is their maximum and one late send beside another test
    can make a ~1 ms-latency run INVALID (lag_material), which says nothing about headers, TLS or prefixes."""
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k != "INFERLOAD_BEARER_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", *args, "--model", "m", "--rate", "40",
         "--duration", "2", "--warmup", "0.3", "--no-progress", "--out", str(out),
         *(() if valid else ("--allow-invalid",))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    return p, out


@pytest.mark.timing  # a VALID verdict judges measured lateness: this one runs in the timing pass (tests/conftest.py)
def test_run_through_tls_token_host_and_prefix_is_valid_and_keeps_secrets_out(tmp_path, gateway, pki):
    p, out = _run(
        tmp_path,
        "--target", f"https://127.0.0.1:{gateway.port}/gw/serving/",
        "--header", f"Host: {HOST}",
        "--bearer-token-file", str(pki / "token"),
        "--ca-file", str(pki / "ca.pem"),
        "--model-version", "3",
        "--payload", "json",
        valid=True,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["valid"], doc["invalid_reasons"]
    assert doc["completed"] > 0 and doc["errors"] == {}
    stats = _stats(gateway)
    assert stats["refused"] == 0  # every call (metadata, config, infer) carried prefix, Host and token
    assert stats["infers"] >= doc["completed"]
    assert doc["scenario"]["headers"] == [f"Host: {HOST}"]  # not a secret: kept
    assert doc["scenario"]["model_version"] == "3"
    for text in (out.read_text(), p.stdout, p.stderr):
        assert TOKEN not in text


def test_a_token_given_as_a_header_is_redacted_everywhere(tmp_path, gateway, pki):
    p, out = _run(
        tmp_path,
        "--target", f"https://127.0.0.1:{gateway.port}/gw/serving",
        "-H", f"Host: {HOST}", "-H", f"Authorization: Bearer {TOKEN}",
        "--ca-file", str(pki / "ca.pem"),
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    text = out.read_text()
    assert TOKEN not in text and TOKEN not in p.stdout and TOKEN not in p.stderr
    assert "Authorization: <redacted>" in json.loads(text)["scenario"]["headers"]
    assert json.loads(text)["completed"] > 0


def test_wrong_token_exits_2_with_the_fix_and_sends_no_load(tmp_path, gateway, pki):
    p, out = _run(
        tmp_path,
        "--target", f"https://127.0.0.1:{gateway.port}/gw/serving",
        "--header", f"Host: {HOST}",
        "--bearer-token-file", str(pki / "wrong-token"),
        "--ca-file", str(pki / "ca.pem"),
    )  # fmt: skip
    assert p.returncode == 2
    said = p.stdout + p.stderr
    assert "refused the credentials" in said and "--bearer-token-file" in said
    assert "Traceback" not in said
    assert not out.exists()
    stats = _stats(gateway)
    assert stats["infers"] == 0  # no inference request reached the server
    assert stats["requests"] <= 2  # the metadata call that was refused (and nothing after it)


def test_unknown_ca_is_named_and_insecure_opts_out(tmp_path, gateway, pki):
    args = ["--target", f"https://127.0.0.1:{gateway.port}/gw/serving", "-H", f"Host: {HOST}",
            "--bearer-token-file", str(pki / "token")]  # fmt: skip
    p, _ = _run(tmp_path, *args)
    assert p.returncode == 2
    said = p.stdout + p.stderr
    assert "TLS" in said and "--ca-file" in said and "Traceback" not in said
    assert _stats(gateway)["infers"] == 0
    p, out = _run(tmp_path, *args, "--insecure")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert json.loads(out.read_text())["completed"] > 0


def test_a_prefix_is_kept_for_every_call_over_plain_http(tmp_path, standin):
    srv = standin("--prefix", "/v1/gateway")
    p, out = _run(tmp_path, "--target", f"{srv.url}/v1/gateway", "--payload", "binary")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert json.loads(out.read_text())["errors"] == {}
    with urllib.request.urlopen(f"{srv.url}/v1/gateway/stats", timeout=5) as r:
        assert json.loads(r.read())["refused"] == 0
