"""Whole-body reading for admitted infer requests (server/httpproto.py), on a real uvicorn on 127.0.0.1 with a
recording ASGI app: what the app receives, and that refusals without reading keep the connection usable."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httptools")

from server.httpproto import build_protocol  # noqa: E402

BIG = bytes(range(256)) * 2400  # 614,400 bytes: many network reads


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[str, str, int, bool]], bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        msgs, data = [], b""
        if not scope["path"].endswith("/refuse/infer"):  # a refusal never reads the body
            while True:
                m = await receive()
                body = m.get("body", b"")
                msgs.append((m["type"], type(body).__name__, len(body), bool(m.get("more_body"))))
                data += bytes(body)
                if m["type"] != "http.request" or not m.get("more_body"):
                    break
        self.seen.append((scope["path"], msgs, data))
        await send(
            {"type": "http.response.start", "status": 200 if msgs else 503, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def served():
    app = Recorder()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            http=build_protocol(16384, ("head_limit", "whole_body")),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield app, port
    finally:
        server.should_exit = True
        thread.join(10)


def post(conn, path, body, headers=None):
    headers = headers or {}
    conn.request("POST", path, body=body, headers=headers, encode_chunked="Transfer-Encoding" in headers)
    r = conn.getresponse()
    return r.status, r.read()


def test_infer_body_arrives_whole_in_one_message(served):
    app, port = served
    c = http.client.HTTPConnection("127.0.0.1", port)
    assert post(c, "/v2/models/m/infer", BIG) == (200, b"ok")
    assert post(c, "/v2/models/m/versions/3/infer", BIG) == (200, b"ok")
    for path, msgs, data in app.seen:
        assert msgs == [("http.request", "bytearray", len(BIG), False)], path
        assert data == BIG
    c.close()


def test_other_routes_and_chunked_bodies_keep_uvicorns_path(served):
    app, port = served
    c = http.client.HTTPConnection("127.0.0.1", port)
    assert post(c, "/elsewhere", BIG)[0] == 200
    assert post(c, "/v2/models/m/infer", iter([BIG[:1000], BIG[1000:]]), {"Transfer-Encoding": "chunked"})[0] == 200
    for _, msgs, data in app.seen:
        assert data == BIG and all(kind == "bytes" for _, kind, _, _ in msgs)
    c.close()


def test_refused_without_reading_then_next_request_on_the_same_connection(served):
    app, port = served
    c = http.client.HTTPConnection("127.0.0.1", port)
    assert post(c, "/v2/models/refuse/infer", BIG) == (503, b"ok")
    assert post(c, "/v2/models/m/infer", BIG) == (200, b"ok")
    assert [p for p, _, _ in app.seen] == ["/v2/models/refuse/infer", "/v2/models/m/infer"]
    assert app.seen[1][2] == BIG
    c.close()


def test_client_gone_mid_body_is_a_disconnect(served):
    app, port = served
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 614400\r\n\r\n" + BIG[:100_000])
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while not app.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.seen and app.seen[0][1] == [("http.disconnect", "bytes", 0, False)]
