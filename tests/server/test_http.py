"""Integration: every endpoint of a real `python -m server` on 127.0.0.1, and every error path, on every HTTP front
(`server` runs each: the fast path on, off, failed self-check, plain httptools; tests/server/fronts.py)."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import numpy as np
import orjson
import pytest
from PIL import Image

from server.protocol import decode_response, encode_request
from tests.server.conftest import server_metric
from tests.server.fronts import FAILED_LAYER, SERVED, STATE

X = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)


def jpeg(w=50, h=40, rgb=(200, 30, 30), fmt="JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), rgb).save(buf, fmt)
    return buf.getvalue()


def infer(client, model, inputs, *, binary=False, path=None, **kw):
    body, hl = encode_request(inputs, binary=binary, **kw)
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if hl is not None:
        headers["Inference-Header-Content-Length"] = str(hl)
    return client.post(path or f"/v2/models/{model}/infer", content=body, headers=headers)


def outputs(r):
    hl = r.headers.get("inference-header-content-length")
    return decode_response(r.content, int(hl) if hl else None)


def timing(r) -> dict[str, str]:
    out = {}
    for part in r.headers["server-timing"].split(","):
        name, _, value = part.strip().partition(";")
        out[name] = value.split("=", 1)[1].strip('"')
    return out


def test_infer_takes_the_path_of_its_front_and_the_log_says_why(server, client):
    """The path an infer request takes is counted (inferload_http_path_requests_total{path, reason}); a front whose
    self-check failed says so in exactly one warning line naming what failed."""
    path, reason = SERVED[server.front]

    def count(path: str, reason: str) -> float:
        return server_metric(server.url, "inferload_http_path_requests_total", path=path, reason=reason)

    assert server_metric(server.url, "inferload_http_fast_path", state=STATE[server.front]) == 1
    before = count(path, reason)
    assert infer(client, "tiny_classifier", [("input", "FP32", X)], binary=True).status_code == 200
    assert count(path, reason) == before + 1
    queried = ("asgi", "query") if server.front == "auto" else (path, reason)  # a query string: the ASGI path
    before = count(*queried)
    r = infer(client, None, [("input", "FP32", X)], binary=True, path="/v2/models/tiny_classifier/infer?x=1")
    assert r.status_code == 200
    assert count(*queried) == before + 1
    warnings = [line for line in server.log(tail=1 << 20).splitlines() if " WARNING server: " in line]
    if server.front in FAILED_LAYER:
        assert len(warnings) == 1, warnings
        assert "self-check failed" in warnings[0] and f"{FAILED_LAYER[server.front]}: " in warnings[0], warnings
    else:
        assert warnings == []


def test_server_metadata_and_health(client):
    meta = client.get("/v2").json()
    assert meta["name"] == "inferload" and "binary_tensor_data" in meta["extensions"]
    assert "classification" in meta["extensions"] and "model_configuration" in meta["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("prefix", ["/v2/models/tiny_classifier", "/v2/models/tiny_classifier/versions/1"])
def test_model_metadata_ready_config(client, prefix):
    meta = client.get(prefix).json()
    assert meta["name"] == "tiny_classifier" and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get(f"{prefix}/ready").status_code == 200
    cfg = client.get(f"{prefix}/config").json()
    assert cfg["name"] == "tiny_classifier" and cfg["platform"] == "onnxruntime_onnx" and cfg["max_batch_size"] == 8
    assert cfg["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [3, 32, 32]}]
    assert cfg["output"] == [{"name": "logits", "data_type": "TYPE_FP32", "dims": [10]}]
    assert cfg["dynamic_batching"]["max_queue_delay_microseconds"] == 0


def test_image_model_exposes_one_bytes_input(client):
    meta = client.get("/v2/models/tiny_classifier_jpeg").json()
    assert meta["inputs"] == [{"name": "IMAGE", "datatype": "BYTES", "shape": [-1]}]
    cfg = client.get("/v2/models/tiny_classifier_jpeg/config").json()
    assert cfg["input"][0]["data_type"] == "TYPE_STRING"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/nope/config",
        "/v2/models/tiny_classifier/versions/9",
        "/v2/nothing",
    ],
)
def test_404s_have_error_body(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json()


def test_json_and_binary_infer_agree(client):
    rj = infer(client, "tiny_classifier", [("input", "FP32", X)])
    rb = infer(client, "tiny_classifier", [("input", "FP32", X)], binary=True, parameters={"binary_data_output": True})
    rv = infer(client, None, [("input", "FP32", X)], path="/v2/models/tiny_classifier/versions/1/infer")
    assert rj.status_code == rb.status_code == rv.status_code == 200, rj.text
    assert rj.headers["content-type"] == "application/json"
    assert rb.headers["content-type"] == "application/octet-stream" and "inference-header-content-length" in rb.headers
    a, b, c = outputs(rj)["logits"], outputs(rb)["logits"], outputs(rv)["logits"]
    assert a.shape == (2, 10)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    t = timing(rj)
    assert set(t) >= {"preprocess", "queue", "compute", "batch", "total"} and int(t["batch"]) >= 2
    assert float(t["total"]) >= float(t["compute"])


def test_request_id_and_output_selection(client):
    r = infer(
        client,
        "tiny_detector",
        [("input", "FP32", np.zeros((1, 3, 64, 64), np.float32))],
        request_id="req-7",
        outputs=[{"name": "num_detections"}],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-7" and [o["name"] for o in body["outputs"]] == ["num_detections"]


def test_classification_extension(client):
    r = infer(
        client,
        "tiny_classifier",
        [("input", "FP32", X)],
        outputs=[{"name": "logits", "parameters": {"classification": 3}}],
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [2, 3]
    logits = outputs(infer(client, "tiny_classifier", [("input", "FP32", X)]))["logits"]
    for row, strings in zip(logits, np.array(out["data"]).reshape(2, 3)):
        assert [int(s.split(":")[1]) for s in strings] == list(np.argsort(-row)[:3])
        assert float(strings[0].split(":")[0]) == pytest.approx(row.max(), abs=1e-5)


@pytest.mark.parametrize("fmt,ctype", [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_raw_image_post_returns_top5(client, fmt, ctype):
    r = client.post("/v2/models/tiny_classifier_jpeg/infer", content=jpeg(fmt=fmt), headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [1, 5] and len(out["data"]) == 5
    assert "preprocess" in timing(r)
    r = client.post(
        "/v2/models/tiny_classifier_jpeg/infer?top_k=2", content=jpeg(fmt=fmt), headers={"Content-Type": ctype}
    )
    assert r.json()["outputs"][0]["shape"] == [1, 2]


def test_bytes_image_input_via_oip(client):
    imgs = np.array([jpeg(), jpeg(rgb=(0, 0, 255), fmt="PNG")], dtype=object)
    r = infer(client, "tiny_classifier_jpeg", [("IMAGE", "BYTES", imgs)], binary=True)
    assert r.status_code == 200, r.text
    assert outputs(r)["logits"].shape == (2, 10)


@pytest.mark.parametrize(
    "model,inputs,fragment",
    [
        ("tiny_classifier", [("input", "FP64", X.astype(np.float64))], "does not match the model's FP32"),
        ("tiny_classifier", [("pixels", "FP32", X)], "has no input 'pixels'"),
        ("tiny_classifier", [("input", "FP32", X[:, :, :16])], "does not match the model's"),
        ("tiny_classifier", [("input", "FP32", np.zeros((9, 3, 32, 32), np.float32))], "outside 1..max_batch_size"),
        ("tiny_classifier", [("input", "FP32", np.zeros((0, 3, 32, 32), np.float32))], "outside 1..max_batch_size"),
        ("tiny_classifier_jpeg", [("IMAGE", "BYTES", np.array([b"not an image"], dtype=object))], "JPEG and PNG"),
        ("tiny_classifier_jpeg", [("IMAGE", "BYTES", np.array([b"\xff\xd8\xffjunk"], dtype=object))], "cannot decode"),
    ],
)
def test_invalid_requests(client, model, inputs, fragment):
    r = infer(client, model, inputs, binary=True)
    assert r.status_code in (400, 415), r.text
    assert fragment in r.json()["error"]
    assert "total" in timing(r)


def test_unknown_output_and_missing_input(client):
    r = infer(client, "tiny_classifier", [("input", "FP32", X)], outputs=[{"name": "nope"}])
    assert r.status_code == 400 and "no output 'nope'" in r.json()["error"]
    r = client.post(
        "/v2/models/tiny_classifier/infer",
        content=b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}',
    )
    assert r.status_code == 400


def test_malformed_binary_header_is_400(client):
    body, hl = encode_request([("input", "FP32", X)], binary=True)
    r = client.post(
        "/v2/models/tiny_classifier/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(len(body) + 10)},
    )
    assert r.status_code == 400 and "outside the body" in r.json()["error"]
    r = client.post(
        "/v2/models/tiny_classifier/infer", content=body, headers={"Inference-Header-Content-Length": "abc"}
    )
    assert r.status_code == 400


def test_unknown_model_infer_is_404(client):
    r = infer(client, "nope", [("input", "FP32", X)])
    assert r.status_code == 404 and r.json() == {"error": "unknown model 'nope'"}


def test_unsupported_content_types_are_415(client):
    r = client.post(
        "/v2/models/tiny_classifier/infer",
        content=b"a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415 and "error" in r.json()
    r = client.post("/v2/models/tiny_classifier/infer", content=jpeg(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415 and "takes tensors" in r.json()["error"]
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "GIF")
    r = client.post(
        "/v2/models/tiny_classifier_jpeg/infer", content=buf.getvalue(), headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 415


def test_body_limit_is_413(client):
    r = client.post(
        "/v2/models/tiny_classifier/infer",
        content=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_expired_deadline_is_504(client):
    r = infer(client, "tiny_classifier", [("input", "FP32", X)], parameters={"timeout": 1})
    assert r.status_code == 504 and "deadline" in r.json()["error"]
    r = infer(client, "tiny_classifier", [("input", "FP32", X)], parameters={"timeout": -5})
    assert r.status_code == 400


def _json_body(inputs: list[dict], **extra) -> bytes:
    import json  # the stdlib writes NaN/Infinity/-Infinity for non-finite floats, as Triton's clients do

    return json.dumps({"inputs": inputs, **extra}).encode()


def test_nan_and_infinity_literals_reach_the_model(client):
    """Triton's perf_analyzer --input-tensor-format json sends random FP32 bit patterns as JSON: NaN/Infinity too."""
    x = X.copy()
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]  # item 0 non-finite, item 1 finite
    body = _json_body(
        [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": [float(v) for v in x.reshape(-1)]}]
    )
    assert b"NaN" in body and b"-Infinity" in body
    r = client.post("/v2/models/tiny_classifier/infer", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]  # httpx's json() is the stdlib's: it reads the NaN literals back
    assert out["shape"] == [2, 10]
    got = outputs(r)["logits"]
    assert not np.isfinite(got[0]).all()  # the NaN reached the model and propagated
    assert b"NaN" in r.content  # written as Triton writes it (RapidJSON kWriteNanAndInfFlag), not as null
    ref = outputs(
        infer(client, "tiny_classifier", [("input", "FP32", x)], binary=True, parameters={"binary_data_output": True})
    )["logits"]
    np.testing.assert_array_equal(got, ref)  # same values (and NaN positions) as the binary path
    np.testing.assert_array_equal(
        got[1], outputs(infer(client, "tiny_classifier", [("input", "FP32", X)]))["logits"][1]
    )


def test_nan_for_an_integer_input_is_400(client):
    body = _json_body([{"name": "input", "shape": [2], "datatype": "INT64", "data": [1, float("nan")]}])
    r = client.post("/v2/models/tiny_classifier/infer", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "INT64 data must be integers" in r.json()["error"]


@pytest.mark.parametrize("body", [b"{oops", b'{"inputs": [NaN', b'{"inputs": [{"data": [+Infinity]}]}', b"\xff NaN"])
def test_malformed_json_is_400_with_error(client, body):
    r = client.post("/v2/models/tiny_classifier/infer", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_non_finite_timeout_parameter_is_400(client):
    for literal in (b"NaN", b"Infinity"):
        body = (
            b'{"parameters": {"timeout": %s}, "inputs": [{"name": "input", "shape": [1, 3, 32, 32], '
            b'"datatype": "FP32", "data": [%s]}]}' % (literal, b",".join([b"0"] * 3072))
        )
        r = client.post("/v2/models/tiny_classifier/infer", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "timeout" in r.json()["error"]


async def _burst(url: str, bodies: list[tuple[str, bytes]]) -> list[tuple[int, dict, bytes]]:
    async with aiohttp.ClientSession() as s:

        async def one(model, body):
            async with s.post(
                f"{url}/v2/models/{model}/infer", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                return r.status, dict(r.headers), await r.read()

        return await asyncio.gather(*(one(m, b) for m, b in bodies))


def test_queue_full_is_503_with_retry_after(server):
    body, _ = encode_request([("input", "FP32", X[:1])], binary=False)
    results = asyncio.run(_burst(server.url, [("tiny_queue1", body)] * 12))
    statuses = [s for s, _, _ in results]
    assert 503 in statuses and 200 in statuses, statuses
    assert set(statuses) <= {200, 503}
    for status, headers, data in results:
        if status == 503:
            err = orjson.loads(data)["error"]
            assert int(headers["Retry-After"]) >= 1 and ("queue is full" in err or "at its limit" in err), err


def test_bad_requests_never_fail_their_batch_mates(server):
    good, _ = encode_request([("input", "FP32", X[:1])], binary=False)
    bad_type, _ = encode_request([("input", "FP64", X[:1].astype(np.float64))], binary=False)
    bad_shape, _ = encode_request([("input", "FP32", X[:1, :, :8])], binary=False)
    mix = [("tiny_classifier", b) for b in [good, bad_type, good, bad_shape, good, b"{oops", good] * 4]
    results = asyncio.run(_burst(server.url, mix))
    for (_model, body), (status, _, data) in zip(mix, results):
        assert status == (200 if body is good else 400), data


def test_no_gevent_in_this_process():
    import sys

    assert "gevent" not in sys.modules and "locust" not in sys.modules


def test_top_k_query_forms(client):
    img, h = jpeg(), {"Content-Type": "image/jpeg"}
    r = client.post("/v2/models/tiny_classifier_jpeg/infer?top_k=1&top_k=3", content=img, headers=h)
    assert r.json()["outputs"][0]["shape"] == [1, 3]  # the last value wins (as Starlette's query params)
    for bad in ("top_k=", "top_k=x", "top_k=0", "top_k=1001"):
        r = client.post(f"/v2/models/tiny_classifier_jpeg/infer?{bad}", content=img, headers=h)
        assert r.status_code == 400 and "top_k" in r.json()["error"], bad
    r = client.post("/v2/models/tiny_classifier_jpeg/infer?other=1", content=img, headers=h)
    assert r.json()["outputs"][0]["shape"] == [1, 5]


def test_versioned_infer_and_chunked_body(client):
    body, hl = encode_request([("input", "FP32", X)], binary=True)
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(hl)}
    r = client.post("/v2/models/tiny_classifier/versions/1/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    want = outputs(r)
    r = client.post("/v2/models/tiny_classifier/versions/9/infer", content=body, headers=headers)
    assert r.status_code == 404 and "version" in r.json()["error"]

    def chunks():  # no Content-Length: Transfer-Encoding: chunked
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = client.post("/v2/models/tiny_classifier/infer", content=chunks(), headers=headers)
    assert r.status_code == 200, r.text
    assert all(np.array_equal(outputs(r)[k], v) for k, v in want.items())


def test_infer_lookalike_paths_are_not_infer(client):
    body, hl = encode_request([("input", "FP32", X)])
    assert client.post("/v2/models/tiny_classifier/infer/", content=body).status_code in (404, 405, 307)
    r = client.get("/v2/models/tiny_classifier/infer")
    assert (r.status_code, r.headers["allow"], r.json()) == (405, "POST", {"error": "Method Not Allowed"})


def _expect_request(port: int, path: str, body: bytes) -> tuple[bytes, bool]:
    """One request with `Expect: 100-continue` on a raw socket, its body sent after `100 Continue`: (what the server
    sent, whether it closed the connection). A connection the server keeps open is shown open by answering a GET."""
    import re
    import socket

    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        got = s.recv(65536)
        continued = got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        if continued:
            s.sendall(body)
        while True:  # until the final response is complete (Content-Length framing)
            final = got[25:] if continued else got
            m = re.search(rb"content-length: *(\d+)\r\n(?:.*\r\n)*?\r\n", final, re.I)
            if m and len(final) >= m.end() + int(m.group(1)):
                break
            chunk = s.recv(65536)
            if not chunk:
                return got, True
            got += chunk
        if b"connection: close" in got.lower():
            return got, s.recv(1) == b""
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        return got, not s.recv(65536).startswith(b"HTTP/1.1 200")


def test_expect_100_continue(server):
    body, _ = encode_request([("input", "FP32", X[:1])], binary=False)
    got, closed = _expect_request(server.port, "/v2/models/tiny_classifier/infer", body)
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), got[:200]
    assert not closed  # keep-alive as usual: the connection answers a GET
    # refused before the body was asked for: the client never sends it, so the server closes the connection
    got, closed = _expect_request(server.port, "/v2/models/nope/infer", body)
    assert got.startswith(b"HTTP/1.1 404") and b"connection: close" in got.lower(), got[:300]
    assert closed
