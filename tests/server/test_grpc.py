"""The OIP gRPC service against real clients: tritonclient.grpc (sync and asyncio, unmodified) and raw grpc calls,
on a real `python -m server` with gRPC on a free loopback port. Each status code of the service comes from a real
call, and after every hostile input the server still answers and holds nothing (admitted requests back to 0).

tritonclient.grpc imports grpc only (no gevent), so it runs in this process."""

from __future__ import annotations

import asyncio
import signal
import socket

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tg
import tritonclient.grpc.aio as tga
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from tests.server.conftest import QUEUE1_CONFIG, make_repository, server_metric, start_server, stop_server
from tests.waiting import wait_until

X = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
INFER = "/inference.GRPCInferenceService/ModelInfer"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpc")
    repo = make_repository(root, {"tiny_queue1": QUEUE1_CONFIG})
    sp = start_server(repo, root / "server.log", "--max-body-bytes", str(MiB), grpc=True)
    yield sp
    stop_server(sp)


@pytest.fixture(scope="module")
def tc(srv):
    with tg.InferenceServerClient(srv.grpc_target) as c:
        yield c


def _input(x: np.ndarray = X, name: str = "input", datatype: str = "FP32") -> tg.InferInput:
    i = tg.InferInput(name, list(x.shape), datatype)
    i.set_data_from_numpy(x)
    return i


def _code(exc: InferenceServerException) -> str:
    return str(exc.status())


def _counted(srv, outcome: str, model: str = "tiny_classifier") -> float:
    return server_metric(srv.url, "inferload_requests_total", model=model, outcome=outcome, protocol="grpc") or 0.0


def _nothing_held(srv) -> None:
    for model in ("tiny_classifier", "tiny_queue1"):
        wait_until(
            lambda m=model: server_metric(srv.url, "inferload_inflight_requests", model=m) == 0,
            timeout_s=10,
            what=f"{model}: no request admitted any more",
        )


def test_health_metadata_and_config(tc):
    assert tc.is_server_live() and tc.is_server_ready() and tc.is_model_ready("tiny_classifier")
    server = tc.get_server_metadata()
    assert server.name == "inferload" and "model_configuration" in server.extensions
    md = tc.get_model_metadata("tiny_classifier")
    assert md.name == "tiny_classifier" and md.versions == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("input", "FP32", [-1, 3, 32, 32])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("logits", "FP32", [-1, 10])]
    cfg = tc.get_model_config("tiny_classifier").config
    assert cfg.max_batch_size == 8 and list(cfg.input[0].dims) == [3, 32, 32]
    assert cfg.input[0].data_type == 11  # TYPE_FP32
    assert cfg.dynamic_batching is not None


def test_infer_matches_rest(srv, tc):
    """The same tensor over gRPC and over REST gives the same logits; the request id comes back."""
    import httpx

    from server.protocol import decode_response, encode_request

    before = _counted(srv, "success")
    r = tc.infer("tiny_classifier", [_input()], request_id="42")
    assert r.get_response().id == "42" and r.get_response().model_name == "tiny_classifier"
    grpc_logits = r.as_numpy("logits")
    body, hl = encode_request([("input", "FP32", X)], binary=True)
    rest = httpx.post(
        f"{srv.url}/v2/models/tiny_classifier/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(hl), "Content-Type": "application/octet-stream"},
    )
    assert rest.status_code == 200
    rest_logits = decode_response(rest.content, int(rest.headers.get("inference-header-content-length", 0)) or None)
    assert grpc_logits.shape == (2, 10)
    np.testing.assert_allclose(grpc_logits, rest_logits["logits"], rtol=1e-6)
    assert _counted(srv, "success") == before + 1


def test_typed_contents_classification_and_statistics(srv, tc):
    """contents.fp32_contents (not raw) in; Triton's classification out; ModelStatistics counts what ran."""
    req = service_pb2.ModelInferRequest(model_name="tiny_classifier", id="typed")
    t = req.inputs.add(name="input", datatype="FP32", shape=[1, 3, 32, 32])
    t.contents.fp32_contents.extend(X[:1].reshape(-1).tolist())
    out = req.outputs.add(name="logits")
    out.parameters["classification"].int64_param = 3
    with grpc.insecure_channel(srv.grpc_target) as ch:
        call = ch.unary_unary(
            INFER,
            request_serializer=service_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=service_pb2.ModelInferResponse.FromString,
        )
        resp, info = call.with_call(req, timeout=10)
    assert resp.id == "typed" and list(resp.outputs[0].shape) == [1, 3] and resp.outputs[0].datatype == "BYTES"
    first = resp.raw_output_contents[0]
    n = int.from_bytes(first[:4], "little")
    score, index = first[4 : 4 + n].decode().split(":")[:2]
    assert 0 <= int(index) < 10 and float(score) > 0
    timing = dict(info.trailing_metadata())["server-timing"]
    assert "queue;dur=" in timing and "compute;dur=" in timing and 'batch;desc="1"' in timing
    stats = tc.get_inference_statistics("tiny_classifier").model_stats[0]
    assert stats.inference_stats.success.count >= 1 and stats.execution_count >= 1
    assert stats.inference_stats.compute_infer.count == stats.inference_stats.compute_input.count


def test_aio_client(srv):
    async def go() -> np.ndarray:
        async with tga.InferenceServerClient(srv.grpc_target) as c:
            assert await c.is_server_ready()
            inp = tga.InferInput("input", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            results = await asyncio.gather(*(c.infer("tiny_classifier", [inp]) for _ in range(4)))
            return np.stack([r.as_numpy("logits") for r in results])

    out = asyncio.run(go())
    assert out.shape == (4, 2, 10) and np.allclose(out[0], out[3])


@pytest.mark.parametrize(
    "case",
    ["unknown_model", "wrong_dtype", "raw_size", "missing_data", "int8_range", "garbage_message"],
)
def test_invalid_requests(srv, tc, case):
    before = _counted(srv, "invalid")
    req = service_pb2.ModelInferRequest(model_name="tiny_classifier")
    t = req.inputs.add(name="input", datatype="FP32", shape=[1, 3, 32, 32])
    raw = X[:1].tobytes()
    want = grpc.StatusCode.INVALID_ARGUMENT
    if case == "unknown_model":
        req.model_name, want = "no_such_model", grpc.StatusCode.NOT_FOUND
    elif case == "wrong_dtype":
        t.datatype, raw = "FP64", X[:1].astype(np.float64).tobytes()
    elif case == "raw_size":
        raw = raw[:-4]
    elif case == "missing_data":
        raw = None
    elif case == "int8_range":
        t.datatype, raw = "INT8", None
        t.contents.int_contents.extend([300] * (3 * 32 * 32))
    if raw is not None:
        req.raw_input_contents.append(raw)
    payload = b"\xff\xff\xff" if case == "garbage_message" else req.SerializeToString()
    with grpc.insecure_channel(srv.grpc_target) as ch:
        call = ch.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            call(payload, timeout=10)
    assert e.value.code() == want, e.value.details()
    if case not in ("unknown_model", "garbage_message"):  # those name no model the server has
        assert _counted(srv, "invalid") == before + 1
    assert tc.infer("tiny_classifier", [_input()]).as_numpy("logits").shape == (2, 10)  # nothing else disturbed


def test_oversized_message_refused_before_any_work(srv, tc):
    big = np.zeros((8, 3, 32, 32), np.float32)  # 98 KB: fine
    assert tc.infer("tiny_classifier", [_input(big)]).as_numpy("logits").shape == (8, 10)
    before = _counted(srv, "success") + _counted(srv, "invalid")
    huge = tg.InferInput("input", [1, 3, 512, 512], "FP32")  # 3 MB > --max-body-bytes 1 MiB
    huge.set_data_from_numpy(np.zeros((1, 3, 512, 512), np.float32))
    with pytest.raises(InferenceServerException) as e:
        tc.infer("tiny_classifier", [huge])
    assert _code(e.value) == "StatusCode.RESOURCE_EXHAUSTED"
    assert _counted(srv, "success") + _counted(srv, "invalid") == before  # never reached the service
    assert tc.infer("tiny_classifier", [_input()]).as_numpy("logits").shape == (2, 10)


def test_queue_full_is_resource_exhausted_with_pushback(srv):
    """tiny_queue1 holds its one queued request 300 ms for batch-mates: a second call meets a full queue."""
    with grpc.insecure_channel(srv.grpc_target) as ch:
        call = ch.unary_unary(
            INFER,
            request_serializer=service_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=service_pb2.ModelInferResponse.FromString,
        )
        req = service_pb2.ModelInferRequest(model_name="tiny_queue1")
        req.inputs.add(name="input", datatype="FP32", shape=[1, 3, 32, 32])
        req.raw_input_contents.append(X[:1].tobytes())
        first = call.future(req, timeout=10)
        wait_until(
            lambda: server_metric(srv.url, "inferload_queue_depth", model="tiny_queue1") == 1,
            timeout_s=5,
            interval_s=0.01,
            what="the first request queued",
        )
        with pytest.raises(grpc.RpcError) as e:
            call.with_call(req, timeout=10)
        assert first.result().outputs[0].name == "logits"
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(e.value.trailing_metadata())["grpc-retry-pushback-ms"] == "1000"
    assert _counted(srv, "rejected", "tiny_queue1") >= 1
    _nothing_held(srv)


def test_deadlines(srv, tc):
    """A gRPC deadline shorter than the 300 ms batching wait, and a `timeout` parameter (µs) already spent."""
    before = _counted(srv, "timeout", "tiny_queue1")
    with pytest.raises(InferenceServerException) as e:
        tc.infer("tiny_queue1", [_input(X[:1])], client_timeout=0.1)
    assert _code(e.value) == "StatusCode.DEADLINE_EXCEEDED"
    with pytest.raises(InferenceServerException) as e:
        tc.infer("tiny_queue1", [_input(X[:1])], timeout=1)  # 1 µs
    assert _code(e.value) == "StatusCode.DEADLINE_EXCEEDED"
    wait_until(
        lambda: _counted(srv, "timeout", "tiny_queue1") >= before + 1,
        timeout_s=5,
        what="the server counted its own DEADLINE_EXCEEDED (outcome timeout, protocol grpc)",
    )
    _nothing_held(srv)


def test_cancelled_call_is_dropped_from_the_queue(srv):
    before = _counted(srv, "cancelled", "tiny_queue1")
    dropped = server_metric(srv.url, "inferload_queue_dropped_total", model="tiny_queue1", reason="cancelled") or 0
    with grpc.insecure_channel(srv.grpc_target) as ch:
        call = ch.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        req = service_pb2.ModelInferRequest(model_name="tiny_queue1")
        req.inputs.add(name="input", datatype="FP32", shape=[1, 3, 32, 32])
        req.raw_input_contents.append(X[:1].tobytes())
        fut = call.future(req.SerializeToString(), timeout=10)
        wait_until(
            lambda: server_metric(srv.url, "inferload_queue_depth", model="tiny_queue1") == 1,
            timeout_s=5,
            interval_s=0.01,
            what="the request queued",
        )
        assert fut.cancel()
    wait_until(lambda: _counted(srv, "cancelled", "tiny_queue1") > before, timeout_s=5, what="counted cancelled")
    wait_until(
        lambda: (
            (server_metric(srv.url, "inferload_queue_dropped_total", model="tiny_queue1", reason="cancelled") or 0)
            > dropped
        ),
        timeout_s=5,
        what="the batcher dropped it before compute",
    )
    _nothing_held(srv)


def test_garbage_bytes_on_the_port(srv, tc):
    host, port = srv.grpc_target.rsplit(":", 1)
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(range(256)) * 8):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(4096)
            except (TimeoutError, ConnectionError):
                pass
    assert tc.is_server_ready()
    assert tc.infer("tiny_classifier", [_input()]).as_numpy("logits").shape == (2, 10)


def test_grpc_health_check(srv):
    """grpc.health.v1.Health/Check, as Kubernetes' gRPC probe calls it."""
    from server.oip_grpc import message

    req_t, resp_t = message("grpc.health.v1.HealthCheckRequest"), message("grpc.health.v1.HealthCheckResponse")
    with grpc.insecure_channel(srv.grpc_target) as ch:
        check = ch.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=req_t.SerializeToString,
            response_deserializer=resp_t.FromString,
        )
        assert check(req_t(), timeout=5).status == resp_t.SERVING


def test_bearer_token_and_drain(tmp_path):
    """UNAUTHENTICATED without the token; then SIGTERM with a shutdown delay: readiness false and new calls
    UNAVAILABLE while the listener is still open."""
    repo = make_repository(tmp_path)
    sp = start_server(
        repo, tmp_path / "server.log", "--shutdown-delay", "20", env={"INFERLOAD_AUTH_TOKEN": "s3cret"}, grpc=True
    )
    try:
        with tg.InferenceServerClient(sp.grpc_target) as c:
            with pytest.raises(InferenceServerException) as e:
                c.infer("tiny_classifier", [_input()])
            assert _code(e.value) == "StatusCode.UNAUTHENTICATED"
            ok = c.infer("tiny_classifier", [_input()], headers={"authorization": "Bearer s3cret"})
            assert ok.as_numpy("logits").shape == (2, 10)
            assert (
                server_metric(
                    sp.url, "inferload_requests_total", model="tiny_classifier", outcome="invalid", protocol="grpc"
                )
                == 1
            )
            sp.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: not c.is_server_ready(), timeout_s=10, what="ServerReady false after SIGTERM")
            with pytest.raises(InferenceServerException) as e:
                c.infer("tiny_classifier", [_input()], headers={"authorization": "Bearer s3cret"})
            assert _code(e.value) == "StatusCode.UNAVAILABLE"
    finally:
        stop_server(sp)


def test_stream_infer_answers_each_request_and_keeps_going_after_a_bad_one(srv):
    """ModelStreamInfer (tritonclient's start_stream, perf_analyzer --streaming): one answer per request, in any
    order, a bad request answered with an error on the stream while the others are served."""
    import queue

    results: queue.Queue = queue.Queue()
    with tg.InferenceServerClient(srv.grpc_target) as c:
        c.start_stream(callback=lambda result, error: results.put((result, error)))
        for k in range(4):
            c.async_stream_infer("tiny_classifier", [_input()], request_id=f"s{k}")
        c.async_stream_infer("tiny_classifier", [_input(X.astype(np.float64), datatype="FP64")], request_id="bad")
        got = [results.get(timeout=10) for _ in range(5)]
        c.stop_stream()
    ok = sorted(r.get_response().id for r, e in got if e is None)
    errors = [str(e) for r, e in got if e is not None]
    assert ok == ["s0", "s1", "s2", "s3"]
    assert len(errors) == 1 and "INVALID_ARGUMENT" in errors[0] and "FP64" in errors[0]
    _nothing_held(srv)
