"""Admission before ingestion: a slow-body client cannot make the server hold more than the model's admission
limit, and the request beyond it is refused (503 + Retry-After) before its body is read. A real `python -m server`
on 127.0.0.1, one per HTTP front (the fast path on, off); the waits poll the server's own metrics
(a state), never sleep-and-hope."""

from __future__ import annotations

import re
import socket

import httpx
import numpy as np
import pytest

from server.protocol import encode_request
from tests.server.conftest import make_repository, server_metric, start_front, stop_server
from tests.waiting import wait_until

ADMIT2 = """
builtin = "tiny_classifier"
file = "../tiny_classifier/model.onnx"
max_batch_size = 4
[batching]
max_queue_size = 8
max_admitted = 2
[instances]
count = 1
intra_op_threads = 1
"""
BODY, HL = encode_request([("input", "FP32", np.zeros((1, 3, 32, 32), np.float32))], binary=True)


def _head(port: int, content_length: int) -> bytes:
    return (
        f"POST /v2/models/tiny_admit2/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {HL}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    m = re.search(rf'^{name}\{{model="tiny_admit2"\}} (\S+)$', text, re.M)
    assert m, f"{name} not exported"
    return float(m.group(1))


def _read_response(sock: socket.socket, timeout_s: float = 10.0) -> tuple[int, bytes]:
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    n = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
    while len(rest) < n:
        rest += sock.recv(65536)
    return status, head + b"\r\n\r\n" + rest


@pytest.fixture(scope="module", params=["auto", "off"])  # "broken" serves with the protocol "off" serves with
def admit2(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"admit2-{request.param}")
    repo = make_repository(tmp, {"tiny_admit2": ADMIT2})
    sp = start_front(request.param, repo, tmp / "server.log", "--model", "tiny_admit2")
    yield sp
    stop_server(sp)


def _rejected(sp) -> float:
    return (
        server_metric(sp.url, "inferload_requests_total", model="tiny_admit2", outcome="rejected", protocol="http")
        or 0.0
    )


def test_slow_bodies_hold_at_most_the_admission_limit(admit2):
    sp = admit2
    assert _metric(sp.url, "inferload_admission_limit") == 2
    rejected = _rejected(sp)
    slow = []
    try:
        for _ in range(2):  # two clients send their headers and half their body, then stall
            s = socket.create_connection(("127.0.0.1", sp.port))
            s.sendall(_head(sp.port, len(BODY)) + BODY[: len(BODY) // 2])
            slow.append(s)
        wait_until(
            lambda: _metric(sp.url, "inferload_inflight_requests") == 2,
            timeout_s=10,
            what="both slow-body clients admitted (inflight_requests{tiny_admit2} == 2)",
            describe=sp.log,
        )

        # a third client with a complete request: refused at once, with Retry-After, its body never needed
        r = httpx.post(
            f"{sp.url}/v2/models/tiny_admit2/infer",
            content=BODY,
            timeout=10,
            headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(HL)},
        )
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text
        assert "at its limit of 2" in r.json()["error"]
        # a fourth announces 64 MB and sends none of it: the answer comes before any body byte
        with socket.create_connection(("127.0.0.1", sp.port)) as big:
            big.sendall(_head(sp.port, 60 * 1024 * 1024))
            status, _ = _read_response(big)
            assert status == 503
        assert _metric(sp.url, "inferload_inflight_requests") == 2  # never above the limit

        # the stalled clients finish their bodies: both get a real answer
        for s in slow:
            s.sendall(BODY[len(BODY) // 2 :])
        for s in slow:
            status, raw = _read_response(s)
            assert status == 200, raw[:300]
        wait_until(
            lambda: _metric(sp.url, "inferload_inflight_requests") == 0,
            timeout_s=10,
            what="every admitted request released (inflight_requests{tiny_admit2} == 0)",
            describe=sp.log,
        )
        ok = httpx.post(
            f"{sp.url}/v2/models/tiny_admit2/infer",
            content=BODY,
            timeout=10,
            headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(HL)},
        )
        assert ok.status_code == 200
        assert _rejected(sp) == rejected + 2
    finally:
        for s in slow:
            s.close()


def test_a_refused_request_leaves_the_connection_usable(admit2):
    """The 503 comes before the body; the body that follows is discarded and the connection serves the next
    request (keep-alive), so refusing costs the client no reconnect."""
    sp = admit2
    slow = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", sp.port))
            s.sendall(_head(sp.port, len(BODY)) + BODY[:100])
            slow.append(s)
        wait_until(
            lambda: _metric(sp.url, "inferload_inflight_requests") == 2,
            timeout_s=10,
            what="both slow-body clients admitted (inflight_requests{tiny_admit2} == 2)",
            describe=sp.log,
        )
        with socket.create_connection(("127.0.0.1", sp.port)) as c:
            c.sendall(_head(sp.port, len(BODY)) + BODY)
            status, _ = _read_response(c)
            assert status == 503
            for s in slow:
                s.sendall(BODY[100:])
            for s in slow:
                assert _read_response(s)[0] == 200
            wait_until(
                lambda: _metric(sp.url, "inferload_inflight_requests") == 0,
                timeout_s=10,
                what="every admitted request released (inflight_requests{tiny_admit2} == 0)",
                describe=sp.log,
            )
            c.sendall(_head(sp.port, len(BODY)) + BODY)  # same connection
            status, _ = _read_response(c)
            assert status == 200
    finally:
        for s in slow:
            s.close()
