"""/metrics: pinned names, series pre-created at 0, counters consistent with the requests sent, no series for
unknown models, promtool-clean exposition, and a client that disconnects while queued is counted as cancelled."""

from __future__ import annotations

import shutil
import socket
import subprocess

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import HTTP_PATH_REASONS
from server.protocol import encode_request
from tests.waiting import wait_until

PINNED_COUNTERS = [
    "inferload_requests",
    "inferload_http_path_requests",
    "inferload_inference_items",
    "inferload_inference_executions",
    "inferload_instance_busy_seconds",
]
PINNED_HISTOGRAMS = [
    "inferload_request_duration_seconds",
    "inferload_queue_duration_seconds",
    "inferload_preprocess_duration_seconds",
    "inferload_compute_duration_seconds",
    "inferload_batch_size",
]
PINNED_GAUGES = [
    "inferload_queue_depth",
    "inferload_inflight_requests",
    "inferload_model_ready",
    "inferload_http_fast_path",
    "inferload_model_execution_provider",
]


def scrape(client) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(m, name, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def families(client) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(client.get("/metrics").text)}


def test_pinned_metrics_exist_for_every_model(client):
    fams = families(client)
    for n in PINNED_COUNTERS:
        assert fams.get(n) == "counter", n
    for n in PINNED_HISTOGRAMS:
        assert fams.get(n) == "histogram", n
    for n in PINNED_GAUGES:
        assert fams.get(n) == "gauge", n
    m = scrape(client)
    for model in ("tiny_classifier", "tiny_classifier_jpeg", "tiny_detector", "tiny_queue1"):
        for outcome in ("success", "rejected", "timeout", "invalid", "error", "cancelled"):
            for protocol in ("http", "grpc"):  # a bounded label: both series exist from the start
                key = (("model", model), ("outcome", outcome), ("protocol", protocol))
                assert ("inferload_requests_total", key) in m
        assert val(m, "inferload_model_ready", model=model) == 1.0
        # one series per model, its provider label from the loaded repository and the session (bounded)
        providers = [dict(lab) for (name, lab), v in m.items() if name == "inferload_model_execution_provider"]
        assert [p["provider"] for p in providers if p["model"] == model] == ["cpu"]
        assert ("inferload_instance_busy_seconds_total", (("instance", "0"), ("model", model))) in m
    for path, reasons in HTTP_PATH_REASONS.items():  # a bounded label set, every series there from the start
        for reason in reasons:
            assert ("inferload_http_path_requests_total", (("path", path), ("reason", reason))) in m
    assert sum(v for (name, _), v in m.items() if name == "inferload_http_fast_path") == 1.0


def test_counters_match_requests(client):
    before = scrape(client)
    good, _ = encode_request([("input", "FP32", np.zeros((2, 3, 64, 64), np.float32))], binary=False)
    bad, _ = encode_request([("input", "FP64", np.zeros((1, 3, 64, 64)))], binary=False)
    for _ in range(3):
        assert client.post("/v2/models/tiny_detector/infer", content=good).status_code == 200
    for _ in range(2):
        assert client.post("/v2/models/tiny_detector/infer", content=bad).status_code == 400
    assert (
        client.post("/v2/models/tiny_detector/infer", content=b"x", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    assert client.post("/v2/models/not_a_model/infer", content=good).status_code == 404
    after = scrape(client)

    def d(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    assert d("inferload_requests_total", model="tiny_detector", outcome="success", protocol="http") == 3
    assert d("inferload_requests_total", model="tiny_detector", outcome="invalid", protocol="http") == 3
    assert d("inferload_request_duration_seconds_count", model="tiny_detector", protocol="http") == 5
    assert d("inferload_compute_duration_seconds_count", model="tiny_detector", protocol="http") == 3
    assert d("inferload_queue_duration_seconds_count", model="tiny_detector", protocol="http") == 3
    assert d("inferload_batch_size_count", model="tiny_detector") == 3
    assert d("inferload_batch_size_sum", model="tiny_detector") == 6
    assert d("inferload_inference_items_total", model="tiny_detector") == 6
    assert d("inferload_inference_executions_total", model="tiny_detector") == 3
    assert d("inferload_instance_busy_seconds_total", model="tiny_detector", instance="0") > 0
    assert d("inferload_http_unknown_model_total") == 1
    assert not any(("model", "not_a_model") in labels for _, labels in after)
    assert val(after, "inferload_inflight_requests", model="tiny_detector") == 0


def test_disconnect_while_queued_is_cancelled(server, client):
    before = scrape(client)

    def now(name: str, **labels: str) -> float:
        return val(scrape(client), name, **labels)

    def grew(name: str, **labels: str) -> bool:
        return now(name, **labels) > val(before, name, **labels)

    body, _ = encode_request([("input", "FP32", np.zeros((1, 3, 32, 32), np.float32))], binary=False)
    head = (
        f"POST /v2/models/tiny_queue1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(head + body)
        # the request is in the batcher's queue (tiny_queue1 holds it 300 ms for batch-mates) before we hang up
        wait_until(
            lambda: now("inferload_queue_depth", model="tiny_queue1") >= 1,
            timeout_s=5,
            interval_s=0.01,
            what="queue depth of tiny_queue1 >= 1 (request queued before the disconnect)",
        )
    wait_until(
        lambda: grew("inferload_requests_total", model="tiny_queue1", outcome="cancelled", protocol="http"),
        timeout_s=5,
        what="the disconnected request counted as outcome=cancelled",
    )
    wait_until(
        lambda: grew("inferload_queue_dropped_total", model="tiny_queue1", reason="cancelled"),
        timeout_s=5,
        what="the batcher dropping the cancelled request (queue_dropped_total{reason=cancelled})",
    )
    assert now("inferload_queue_depth", model="tiny_queue1") == 0
    ok = {"model": "tiny_queue1", "outcome": "success", "protocol": "http"}
    assert now("inferload_requests_total", **ok) == val(before, "inferload_requests_total", **ok)  # never computed


def test_promtool_check_metrics(client):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    text = client.get("/metrics").text
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p.stdout + p.stderr
