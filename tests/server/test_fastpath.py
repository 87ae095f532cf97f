"""The infer fast path (server/fastpath.py) and the ASGI path it stands beside: the product's own uvicorn configuration
(server.app.uvicorn_config, with its start-up self-check) on 127.0.0.1, run in this process so each test can read
which path served a request (the app's `inferload_http_path_requests_total` counter) and the model's admission count.

`live` runs each front: the fast path on ("auto"), off by the setting ("off"), and off because the self-check caught a
uvicorn that reads one more attribute of its cycle ("broken", tests/server/fronts.py). `reference` is a server with
the fast path off: each test compares the answers of `live` with the ASGI path's, on raw sockets where the wire
matters."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httptools")

from loadgen.util.net import free_port  # noqa: E402
from server.app import create_app, uvicorn_config  # noqa: E402
from server.protocol import encode_request  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from tests.server.conftest import SLOW_CONFIG, make_repository  # noqa: E402
from tests.server.fronts import SERVED, STATE, apply  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

QUEUE1 = SLOW_CONFIG.replace("max_queue_size = 64", "max_queue_size = 1")
# admits one request at a time; no batching delay (a request holds its admission while its body is half sent)
ADMIT1 = SLOW_CONFIG.replace("[batching]\n", "[batching]\nmax_admitted = 1\n").replace("= 600.0", "= 0.0")
EXTRA = {"tiny_slow": SLOW_CONFIG, "tiny_q1": QUEUE1, "tiny_admit1": ADMIT1}
FRONTS = ("auto", "off", "broken")


class Live(NamedTuple):
    app: Any
    port: int
    front: str


@contextmanager
def running(repo: Path, front: str) -> Iterator[Live]:
    settings = ServerSettings(
        models_dir=repo,
        port=free_port("127.0.0.1"),
        log_level="warning",
        model_names=["tiny_classifier", "tiny_classifier_jpeg", *EXTRA],
        fast_path="off" if front == "off" else "auto",
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=60, what=f"in-process server ({front}) started")
        assert app.state.fast_path_state == STATE[front]
        yield Live(app, settings.port, front)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repository(tmp_path_factory.mktemp("fast"), EXTRA)


@pytest.fixture(scope="module")
def reference(repo) -> Iterator[Live]:
    """The ASGI path, to compare answers with."""
    with running(repo, "off") as ref:
        yield ref


@pytest.fixture(scope="module", params=FRONTS)
def live(request, repo, reference) -> Iterator[Live]:
    with pytest.MonkeyPatch.context() as mp:
        apply(request.param, mp.setattr)  # "broken": a uvicorn the self-check must catch (for this server's life)
        with running(repo, request.param) as lv:
            yield lv


def served(lv: Live, path: str | None = None, reason: str | None = None) -> int:
    """How many infer requests `lv` served by `path` for `reason` (default: its front's usual path)."""
    if path is None:
        path, reason = SERVED[lv.front]
    assert reason is not None
    return lv.app.state.metrics.http_paths.get(path, reason)


def request(model: str = "tiny_classifier", batch: int = 1, pad: int = 0, **params) -> tuple[bytes, dict[str, str]]:
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


def test_answers_match_the_asgi_path(live, reference):
    body, headers = request(batch=2)
    before = served(live)
    got = post(live.port, body, headers)
    assert served(live) == before + 1
    want = post(reference.port, body, headers)
    assert got[0] == want[0] == 200
    assert got[2] == want[2] and len(got[2]) > 80  # the same JSON header and 2 x 10 binary logits
    for h in ("content-type", "inference-header-content-length"):
        assert got[1][h] == want[1][h]
    keys = ["read", "preprocess", "queue", "compute", "batch", "total"]
    assert timing_keys(got[1]["server-timing"]) == timing_keys(want[1]["server-timing"]) == keys


def test_a_large_body_in_many_reads_is_intact(live, reference):
    """A 600 KB body: on the fast path the first read carries the head, the rest goes straight into the request's
    buffer; on the ASGI path it is read whole into one buffer."""
    body, headers = request(batch=8, pad=500_000)
    before = served(live)
    got = post(live.port, body, headers)
    want = post(reference.port, body, headers)
    assert got[0] == want[0] == 200 and got[2] == want[2]
    with socket.create_connection(("127.0.0.1", live.port)) as s:  # the same body in uneven pieces
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers))
        for i in range(0, len(body), 70001):
            s.sendall(body[i : i + 70001])
        [(status, _, data)] = read_responses(s, 1)
    assert status == 200 and data == want[2]
    assert served(live) == before + 2


def test_keep_alive_pipelining_and_other_routes_after_an_infer_request(live, reference):
    """Requests behind an infer request on the same connection: pipelined in one write, then a GET (on the fast path
    the parser that skipped the body has been replaced), then another infer request."""
    small, sh = request()
    big, bh = request(batch=4, pad=200_000)
    want_small = post(reference.port, small, sh)[2]
    want_big = post(reference.port, big, bh)[2]
    path = "/v2/models/tiny_classifier/infer"
    before, pipelined = served(live), served(live, "asgi", "pipelined")
    with socket.create_connection(("127.0.0.1", live.port)) as s:
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
    if live.front == "auto":  # the pipelined one may have waited behind the first: uvicorn queues it, the ASGI path
        assert served(live) >= before + 2
        assert served(live) - before + served(live, "asgi", "pipelined") - pipelined == 3
    else:
        assert served(live) == before + 3


def test_connection_close_is_honoured(live):
    body, headers = request()
    before = served(live)
    with socket.create_connection(("127.0.0.1", live.port)) as s:
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers, "Connection: close") + body)
        [(status, hdrs, _)] = read_responses(s, 1)
        s.settimeout(10)
        assert s.recv(1) == b""  # the server closed its side
    assert status == 200 and hdrs["connection"] == "close"
    assert served(live) == before + 1


def test_errors_after_admission_match_the_asgi_path(live, reference):
    body, headers = request()
    bad_json = b"{not json" + body[20:]
    shape = request(batch=1)[0].replace(b"[1,3,32,32]", b"[3,1,32,32]")
    assert shape != request(batch=1)[0]
    for payload in (bad_json, shape):
        before = served(live)
        got = post(live.port, payload, headers)
        want = post(reference.port, payload, headers)
        assert served(live) == before + 1
        assert got[0] == want[0] == 400
        assert got[2] == want[2] and orjson.loads(got[2])["error"]
        assert got[1]["content-type"] == "application/json"


def test_a_full_queue_refuses_with_retry_after(live):
    """tiny_q1 holds one request for 600 ms: the next concurrent one meets a full queue (503 + Retry-After)."""
    body, headers = request("tiny_q1")
    path = "/v2/models/tiny_q1/infer"
    batcher = live.app.state.service.models["tiny_q1"].batcher
    with socket.create_connection(("127.0.0.1", live.port)) as first:
        first.sendall(raw_head(path, body, headers) + body)
        wait_until(lambda: batcher.queue_depth == 1, timeout_s=10, what="first request queued")
        before = served(live)
        status, hdrs, data = post(live.port, body, headers, path)
        assert served(live) == before + 1
        assert status == 503 and "retry-after" in hdrs and b"queue is full" in data
        [(status1, _, _)] = read_responses(first, 1)
    assert status1 == 200


def test_refusals_before_admission_and_their_reasons(live):
    """Each takes the ASGI path, which answers it; with the fast path on the reason is the condition it failed."""
    body, headers = request()
    paths = live.app.state.metrics.http_paths
    reasons = ("unknown_model", "content_type", "header_length", "image_model")
    before = {r: paths.get("asgi", r) for r in reasons}
    usual = served(live)
    assert post(live.port, body, headers, "/v2/models/nope/infer")[0] == 404
    assert post(live.port, body, dict(headers, **{"Content-Type": "text/plain"}))[0] == 415
    assert post(live.port, body, headers, "/v2/models/tiny_classifier/versions/9/infer")[0] == 404
    assert post(live.port, body, dict(headers, **{"Inference-Header-Content-Length": "x"}))[0] == 400
    jpeg = "/v2/models/tiny_classifier_jpeg/infer"
    assert post(live.port, b"\xff\xd8", {"Content-Type": "image/jpeg"}, jpeg)[0] == 415
    assert post(live.port, body, headers, jpeg)[0] == 400  # tensors to an image model
    if live.front == "auto":
        got = {r: paths.get("asgi", r) - before[r] for r in reasons}
        assert got == {"unknown_model": 2, "content_type": 2, "header_length": 1, "image_model": 1}
        assert served(live) == usual
    else:
        assert served(live) == usual + 6
    assert post(live.port, body, headers, "/v2/models/tiny_classifier/versions/1/infer")[0] == 200
    assert served(live) == usual + (1 if live.front == "auto" else 7)


def test_client_gone_mid_body_gives_its_admission_back(live):
    lm = live.app.state.service.models["tiny_classifier"]
    body, headers = request(batch=8, pad=300_000)
    before = served(live)
    with socket.create_connection(("127.0.0.1", live.port)) as s:
        s.sendall(raw_head("/v2/models/tiny_classifier/infer", body, headers) + body[:150_000])
        wait_until(lambda: served(live) == before + 1 and lm.admission.current == 1, timeout_s=10, what="admitted")
    wait_until(lambda: lm.admission.current == 0, timeout_s=10, what="admission given back")
    assert post(live.port, *request())[0] == 200  # and the server goes on


def test_client_gone_while_queued_is_dropped_from_the_queue(live):
    """tiny_slow waits 600 ms for batch-mates: a client that leaves meanwhile is dropped, counted as cancelled."""
    lm = live.app.state.service.models["tiny_slow"]
    outcome = lm.metrics.outcome["cancelled"]
    cancelled = outcome.value
    body, headers = request("tiny_slow")
    before = served(live)
    with socket.create_connection(("127.0.0.1", live.port)) as s:
        s.sendall(raw_head("/v2/models/tiny_slow/infer", body, headers) + body)
        wait_until(lambda: lm.batcher.queue_depth == 1, timeout_s=10, what="queued")
    wait_until(lambda: lm.batcher.queue_depth == 0 and lm.admission.current == 0, timeout_s=10, what="dropped")
    wait_until(lambda: outcome.value == cancelled + 1, timeout_s=10, what="counted as cancelled")
    assert served(live) == before + 1


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


@contextmanager
def admission_held(lv: Live, body: bytes, headers: dict[str, str]) -> Iterator[socket.socket]:
    """A request to tiny_admit1 (it admits one at a time) that has sent half its body: admitted, held."""
    lm = lv.app.state.service.models["tiny_admit1"]
    with socket.create_connection(("127.0.0.1", lv.port)) as s:
        s.sendall(raw_head("/v2/models/tiny_admit1/infer", body, headers) + body[: len(body) // 2])
        wait_until(lambda: lm.admission.current == 1, timeout_s=10, what=f"a request admitted ({lv.front})")
        yield s


def test_refused_at_admission_before_its_body_which_is_then_discarded(live, reference):
    """At the admission limit a request gets its 503 + Retry-After as soon as its head arrives, worded as on the ASGI
    path; its 600 KB body is discarded as it arrives, and the connection goes on."""
    lm = live.app.state.service.models["tiny_admit1"]
    path = "/v2/models/tiny_admit1/infer"
    small, sh = request("tiny_admit1")
    big, bh = request("tiny_admit1", batch=8, pad=500_000)
    rejected = lm.metrics.outcome["rejected"].value
    with admission_held(reference, small, sh) as ref_first:
        want = post(reference.port, small, sh, path)
        ref_first.sendall(small[len(small) // 2 :])
        assert read_responses(ref_first, 1)[0][0] == 200
    with admission_held(live, small, sh) as first, socket.create_connection(("127.0.0.1", live.port)) as s:
        refused = served(live, "fast", "refused") if live.front == "auto" else served(live)
        s.sendall(raw_head(path, big, bh) + big)
        [(status, hdrs, data)] = read_responses(s, 1)
        assert (served(live, "fast", "refused") if live.front == "auto" else served(live)) == refused + 1
        assert (status, data) == (want[0], want[2]) == (503, data) and b"at its limit of 1" in data
        assert hdrs["retry-after"] == want[1]["retry-after"]
        first.sendall(small[len(small) // 2 :])
        assert read_responses(first, 1)[0][0] == 200
        wait_until(lambda: lm.admission.current == 0, timeout_s=10, what="admission free again")
        s.sendall(raw_head(path, small, sh) + small)  # the refused body is behind us: the parser is in step
        [(status2, _, _)] = read_responses(s, 1)
    assert status2 == 200
    assert lm.metrics.outcome["rejected"].value == rejected + 1
