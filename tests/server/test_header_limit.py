"""Request head limit (max_header_bytes, default 16 KiB): a larger head gets 431 Request Header Fields Too Large
with {"error": ...} — from the real server over 127.0.0.1 on every HTTP front (`server` runs each: the fast path on,
off, failed self-check, plain httptools, which has no limit of its own), whether the head arrives in one piece or
keeps streaming — and never a connection reset."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import numpy as np
import pytest

from server.app import create_app
from server.dispatch import scan_headers, scope_head_size
from server.protocol import encode_request
from server.settings import ServerSettings, settings_from_options

BODY, _ = encode_request([("input", "FP32", np.zeros((1, 3, 32, 32), np.float32))], binary=False)


def _infer(client, **headers):
    return client.post(
        "/v2/models/tiny_classifier/infer", content=BODY, headers={"Content-Type": "application/json", **headers}
    )


def test_8k_header_is_served(client):
    r = _infer(client, **{"X-Trace": "t" * 8 * 1024})
    assert r.status_code == 200, r.text
    assert client.get("/v2/health/live", headers={"X-Trace": "t" * 15 * 1024}).status_code == 200


def test_100k_header_is_431(server):
    r = httpx.post(
        f"{server.url}/v2/models/tiny_classifier/infer",
        content=BODY,
        headers={"Content-Type": "application/json", "X-Big": "b" * 100 * 1024},
        timeout=20,
    )
    assert r.status_code == 431
    assert "exceeds the server's limit of 16384 bytes" in r.json()["error"]
    assert r.headers["connection"] == "close"
    r = httpx.get(f"{server.url}/v2/health/live", headers={f"X-H{i}": "v" * 1000 for i in range(100)}, timeout=20)
    assert r.status_code == 431  # the sum of many small headers counts


def test_huge_header_is_431(server):
    """10 MB: refused once 16 KiB of head has arrived (plain httptools: once all of it arrived); the client still
    reads the 431."""
    r = httpx.get(f"{server.url}/v2/health/live", headers={"X-Big": "b" * 10_000_000}, timeout=30)
    assert r.status_code == 431 and "error" in r.json()


def test_an_endless_head_is_cut_off_while_arriving(server):
    """A head that never ends: the 431 comes while it still arrives, so the server never buffers it whole."""
    if server.front == "plain":
        pytest.skip("uvicorn's own httptools protocol (head limit failed its self-check) answers once a head arrived")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v2/models/tiny_classifier/infer HTTP/1.1\r\nHost: x\r\n")
        for i in range(40):  # 40 KB of header lines and no end of head
            s.sendall(b"X-H%d: %s\r\n" % (i, b"b" * 1000))
        data = _read_response(s)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert b"exceeds the server's limit of 16384 bytes" in data


def _read_response(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while True:
        chunk = sock.recv(65536)  # a reset would raise ConnectionResetError here
        if not chunk:
            return data
        data += chunk


def test_streamed_head_over_a_raw_socket_gets_431_not_a_reset(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: a normal request first
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        for i in range(100):  # 100 KB of header lines, a little at a time
            s.sendall(b"X-H%d: %s\r\n" % (i, b"b" * 1000))
            time.sleep(0.001)  # part of the scenario: a client trickling its head, not a wait for a state
        s.sendall(b"\r\n")
        data = _read_response(s)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:200]
    assert b"connection: close" in data.lower() and b'"error"' in data


def test_server_still_serves_after_refusals(client):
    assert client.get("/v2/health/ready").status_code == 200
    assert _infer(client).status_code == 200


def test_limit_setting_env_flag_and_the_asgi_app():
    assert ServerSettings().max_header_bytes == 16 * 1024
    assert settings_from_options(max_header_bytes=4096).max_header_bytes == 4096
    with pytest.raises(ValueError):
        ServerSettings(max_header_bytes=10)
    from server.__main__ import parser

    assert parser().parse_args(["--max-header-bytes", "32768"]).max_header_bytes == 32768
    app = create_app(ServerSettings(max_header_bytes=4096, models_dir="/nonexistent"))

    async def get(n: int) -> httpx.Response:  # in process, no protocol of ours, no lifespan: routes without models
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get("/v2/health/live", headers={"X-A": "a" * n})

    assert asyncio.run(get(3000)).status_code == 200
    r = asyncio.run(get(5000))
    assert r.status_code == 431 and "4096" in r.json()["error"]


def test_env_variable(monkeypatch):
    monkeypatch.setenv("INFERLOAD_MAX_HEADER_BYTES", "65536")
    assert ServerSettings().max_header_bytes == 65536


def test_head_size_counts_request_line_and_header_lines():
    scope = {"method": "GET", "raw_path": b"/v2", "query_string": b"a=1", "headers": [(b"host", b"x"), (b"k", b"vv")]}
    wire = b"GET /v2?a=1 HTTP/1.1\r\nhost: x\r\nk: vv\r\n\r\n"
    assert scope_head_size(scope, scan_headers(scope["headers"])) == len(wire)
