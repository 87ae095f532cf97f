"""The infer fast path (server/fastpath.py): the product's own uvicorn configuration (server.app.uvicorn_config) on
127.0.0.1, run in this process so each test can tell which path served a request (fastpath.STATS) and read the
model's admission count. Each test compares the fast path with the ASGI path it replaces (the same request with a
query string takes the ASGI path), on raw sockets where the wire matters."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading

import numpy as np
import orjson
import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httptools")

from loadgen.util.net import free_port  # noqa: E402
from server import fastpath  # noqa: E402
from server.app import create_app, uvicorn_config  # noqa: E402
from server.protocol import encode_request  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from tests.server.conftest import SLOW_CONFIG, make_repository  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

QUEUE1 = SLOW_CONFIG.replace("max_queue_size = 64", "max_queue_size = 1")
ADMIT1 = SLOW_CONFIG.replace("[batching]\n", "[batching]\nmax_admitted = 1\n")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    repo = make_repository(
        tmp_path_factory.mktemp("fast"), {"tiny_slow": SLOW_CONFIG, "tiny_q1": QUEUE1, "tiny_admit1": ADMIT1}
    )
    port = free_port("127.0.0.1")
    settings = ServerSettings(
        models_dir=repo,
        port=port,
        log_level="warning",
        model_names=["tiny_classifier", "tiny_classifier_jpeg", "tiny_slow", "tiny_q1", "tiny_admit1"],
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout_s=60, what="in-process server started")
    try:
        yield app, port
    finally:
        server.should_exit = True
        thread.join(30)


def request(
    model: str = "tiny_classifier", batch: int = 1, pad: int = 0, query: str = "", **params
) -> tuple[bytes, dict[str, str]]:
    x = np.arange(batch * 3 * 32 * 32, dtype=np.float32).reshape(batch, 3, 32, 32) / 1000.0
    if pad:
        params["pad"] = "x" * pad  # a large JSON header: many network reads
    body, hl = encode_request(
        [("input", "FP32", x)], outputs=[{"name": "logits", "parameters": {"binary_data": True}}], parameters=params
    )
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(hl)}
    return body, headers


def post(port: int, body: bytes, headers: dict[str, str], path: str = "/v2/models/tiny_classifier/infer"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def taken() -> int:
    return fastpath.STATS.taken


def timing_keys(value: str) -> list[str]:
    return [part.split(";")[0].strip() for part in value.split(",")]


def raw_head(path: str, body: bytes, headers: dict[str, str], extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", extra]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(line for line in lines if line) + "\r\n\r\n").encode()


def read_responses(sock: socket.socket, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`n` HTTP/1.1 responses with Content-Length framing, in order."""
    data, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} of {n} responses"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        size = int(hdrs["content-length"])
        while len(data) < size:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        out.append((int(status_line.split()[1]), hdrs, data[:size]))
        data = data[size:]
    return out


def test_fast_path_answers_like_the_asgi_path(live):
    _, port = live
    body, headers = request(batch=2)
    before = taken()
    fast = post(port, body, headers)
    assert taken() == before + 1
    slow = post(port, body, headers, "/v2/models/tiny_classifier/infer?via=asgi")
    assert taken() == before + 1  # a query string takes the ASGI path
    assert fast[0] == slow[0] == 200
    assert fast[2] == slow[2] and len(fast[2]) > 80  # the same JSON header and 2 x 10 binary logits
    for h in ("content-type", "inference-header-content-length"):
        assert fast[1][h] == slow[1][h]
    keys = ["read", "preprocess", "queue", "compute", "batch", "total"]
    assert timing_keys(fast[1]["server-timing"]) == timing_keys(slow[1]["server-timing"]) == keys


def test_a_large_body_read_past_the_parser_is_intact(live):
    """A 600 KB body: the first read carries the head, the rest goes straight into the request's buffer."""
    _, port = live
    body, headers = request(batch=8, pad=500_000)
    before = taken()
    fast = post(port, body, headers)
    slow = post(port, body, headers, "/v2/models/tiny_classifier/infer?via=asgi")
    assert taken() == before + 1
    assert fast[0] == slow[0] == 200 and fast[2] == slow[2]
    with socket.create_connection(("127.0.0.1", port)) as s:  # the same body in uneven pieces
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers))
        for i in range(0, len(body), 70001):
            s.sendall(body[i : i + 70001])
        [(status, _, data)] = read_responses(s, 1)
    assert status == 200 and data == slow[2]
    assert taken() == before + 2


def test_keep_alive_pipelining_and_other_routes_after_a_fast_request(live):
    """Requests behind a fast one on the same connection: pipelined in one write, then a GET (the parser that
    skipped the fast request's body has been replaced), then another fast request."""
    _, port = live
    small, sh = request()
    big, bh = request(batch=4, pad=200_000)
    want_small = post(port, small, sh, "/v2/models/tiny_classifier/infer?via=asgi")[2]
    want_big = post(port, big, bh, "/v2/models/tiny_classifier/infer?via=asgi")[2]
    path = "/v2/models/tiny_classifier/infer"
    before = taken()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw_head(path, big, bh) + big + raw_head(path, small, sh) + small)
        r1, r2 = read_responses(s, 2)
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        [r3] = read_responses(s, 1)
        s.sendall(raw_head(path, big, bh) + big)
        [r4] = read_responses(s, 1)
    assert (r1[0], r1[2]) == (200, want_big)
    assert (r2[0], r2[2]) == (200, want_small)
    assert r3[0] == 200
    assert (r4[0], r4[2]) == (200, want_big)
    assert taken() >= before + 2  # the first and the last (the pipelined one may wait on uvicorn's path)


def test_connection_close_is_honoured(live):
    _, port = live
    body, headers = request()
    before = taken()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers, "Connection: close") + body)
        [(status, hdrs, _)] = read_responses(s, 1)
        s.settimeout(10)
        assert s.recv(1) == b""  # the server closed its side
    assert status == 200 and hdrs["connection"] == "close"
    assert taken() == before + 1


def test_errors_after_admission_match_the_asgi_path(live):
    _, port = live
    body, headers = request()
    bad_json = b"{not json" + body[20:]
    shape = request(batch=1)[0].replace(b"[1,3,32,32]", b"[3,1,32,32]")
    assert shape != request(batch=1)[0]
    for payload in (bad_json, shape):
        before = taken()
        fast = post(port, payload, headers)
        slow = post(port, payload, headers, "/v2/models/tiny_classifier/infer?via=asgi")
        assert taken() == before + 1
        assert fast[0] == slow[0] == 400
        assert fast[2] == slow[2] and orjson.loads(fast[2])["error"]
        assert fast[1]["content-type"] == "application/json"


def test_a_full_queue_refuses_on_the_fast_path_with_retry_after(live):
    """tiny_q1 holds one request for 600 ms: the next concurrent one meets a full queue (503 + Retry-After)."""
    app, port = live
    body, headers = request("tiny_q1")
    path = "/v2/models/tiny_q1/infer"
    batcher = app.state.service.models["tiny_q1"].batcher
    with socket.create_connection(("127.0.0.1", port)) as first:
        first.sendall(raw_head(path, body, headers) + body)
        wait_until(lambda: batcher.queue_depth == 1, timeout_s=10, what="first request queued")
        before = taken()
        status, hdrs, data = post(port, body, headers, path)
        assert taken() == before + 1
        assert status == 503 and "retry-after" in hdrs and b"queue is full" in data
        [(status1, _, _)] = read_responses(first, 1)
    assert status1 == 200


def test_refusals_before_admission_take_the_asgi_path(live):
    _, port = live
    body, headers = request()
    before = taken()
    assert post(port, body, headers, "/v2/models/nope/infer")[0] == 404
    assert post(port, body, dict(headers, **{"Content-Type": "text/plain"}))[0] == 415
    assert post(port, body, headers, "/v2/models/tiny_classifier/versions/9/infer")[0] == 404
    assert post(port, body, dict(headers, **{"Inference-Header-Content-Length": "x"}))[0] == 400
    assert post(port, b"\xff\xd8", {"Content-Type": "image/jpeg"}, "/v2/models/tiny_classifier_jpeg/infer")[0] == 415
    assert post(port, body, headers, "/v2/models/tiny_classifier_jpeg/infer")[0] == 400  # an image model: its path
    assert taken() == before
    assert post(port, body, headers, "/v2/models/tiny_classifier/versions/1/infer")[0] == 200
    assert taken() == before + 1


def test_client_gone_mid_body_gives_its_admission_back(live):
    app, port = live
    lm = app.state.service.models["tiny_classifier"]
    body, headers = request(batch=8, pad=300_000)
    before = taken()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers) + body[:150_000])
        wait_until(lambda: taken() == before + 1 and lm.admission.current == 1, timeout_s=10, what="admitted")
    wait_until(lambda: lm.admission.current == 0, timeout_s=10, what="admission given back")
    assert post(port, *request())[0] == 200  # and the server goes on


def test_client_gone_while_queued_is_dropped_from_the_queue(live):
    """tiny_slow waits 600 ms for batch-mates: a client that leaves meanwhile is dropped, counted as cancelled."""
    app, port = live
    lm = app.state.service.models["tiny_slow"]
    outcome = lm.metrics.outcome["cancelled"]
    cancelled = outcome.value
    body, headers = request("tiny_slow")
    before = taken()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw_head("/v2/models/tiny_slow/infer", body, headers) + body)
        wait_until(lambda: lm.batcher.queue_depth == 1, timeout_s=10, what="queued")
    wait_until(lambda: lm.batcher.queue_depth == 0 and lm.admission.current == 0, timeout_s=10, what="dropped")
    wait_until(lambda: outcome.value == cancelled + 1, timeout_s=10, what="counted as cancelled")
    assert taken() == before + 1


def test_enqueue_future_cancel_withdraws_the_request():
    """The batcher half of the fast path: cancelling `enqueue`'s future drops a queued request (no task)."""
    from server.batching.batcher import DynamicBatcher

    class Never:
        def run(self, inputs):
            raise AssertionError("a withdrawn request must not run")

    async def main() -> tuple[int, int]:
        b = DynamicBatcher("m", [Never()], max_batch_size=4, max_queue_delay_ms=60_000, clock=lambda: 0.0)
        b.start()
        fut = b.enqueue({"x": np.zeros((1, 2), np.float32)})
        depth_queued = b.queue_depth
        fut.cancel()
        await asyncio.sleep(0)  # the future's done-callbacks run on the next loop turn
        depth_after = b.queue_depth
        await b.stop(drain=True, timeout_s=5)
        return depth_queued, depth_after

    assert asyncio.run(main()) == (1, 0)


def test_refused_at_admission_before_its_body_which_is_then_discarded(live):
    """tiny_admit1 admits one request at a time: a second one gets its 503 + Retry-After as soon as its head
    arrives, as the ASGI path words it; its 600 KB body is discarded as it arrives, and the connection goes on."""
    app, port = live
    lm = app.state.service.models["tiny_admit1"]
    path = "/v2/models/tiny_admit1/infer"
    small, sh = request("tiny_admit1")
    big, bh = request("tiny_admit1", batch=8, pad=500_000)
    rejected = lm.metrics.outcome["rejected"].value
    with socket.create_connection(("127.0.0.1", port)) as first, socket.create_connection(("127.0.0.1", port)) as s:
        first.sendall(raw_head(path, small, sh) + small)
        wait_until(lambda: lm.admission.current == 1, timeout_s=10, what="first request admitted")
        before = fastpath.STATS.refused
        s.sendall(raw_head(path, big, bh) + big)
        [(status, hdrs, data)] = read_responses(s, 1)
        assert fastpath.STATS.refused == before + 1
        assert status == 503 and "retry-after" in hdrs and b"at its limit of 1" in data
        asgi = post(port, small, sh, path + "?via=asgi")  # refused on the ASGI path meanwhile: the same answer
        assert (asgi[0], asgi[2]) == (503, data) and asgi[1]["retry-after"] == hdrs["retry-after"]
        [(first_status, _, _)] = read_responses(first, 1)
        assert first_status == 200
        wait_until(lambda: lm.admission.current == 0, timeout_s=10, what="admission free again")
        s.sendall(raw_head(path, small, sh) + small)  # the refused body is behind us: parser in step
        [(status2, _, _)] = read_responses(s, 1)
    assert status2 == 200
    assert lm.metrics.outcome["rejected"].value == rejected + 2
