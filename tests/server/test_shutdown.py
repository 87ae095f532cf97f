"""A separate `python -m server` with a bearer token and a shutdown delay: auth, then SIGTERM drain —
readiness goes 503 at once, new inference gets 503, in-flight requests complete 200, the process exits 0.
A bad config makes the process exit non-zero with the reason."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from server.protocol import encode_request
from tests.server.conftest import ROOT, SLOW_CONFIG, make_repository, server_metric, start_front, stop_server
from tests.waiting import wait_until

TOKEN = "s3cret-token"
BODY, _ = encode_request([("input", "FP32", np.zeros((1, 3, 32, 32), np.float32))], binary=False)


def post(url: str, model: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/v2/models/{model}/infer", content=BODY, headers=headers, timeout=20)


@pytest.mark.parametrize("front", ["auto", "off"])
def test_auth_then_sigterm_drain(tmp_path, front):
    """On both paths: the fast path serves these requests when it is on, the ASGI path when it is off."""
    repo = make_repository(tmp_path, {"tiny_slow": SLOW_CONFIG})
    sp = start_front(
        front,
        repo,
        tmp_path / "server.log",
        "--model",
        "tiny_classifier",
        "--model",
        "tiny_slow",
        "--shutdown-delay",
        "0.3",
        env={"INFERLOAD_AUTH_TOKEN": TOKEN},
    )
    try:
        r = post(sp.url, "tiny_classifier", token=None)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer") and "error" in r.json()
        assert post(sp.url, "tiny_classifier", token="wrong").status_code == 401
        assert post(sp.url, "tiny_classifier").status_code == 200
        assert httpx.get(f"{sp.url}/v2/models/tiny_classifier").status_code == 200  # metadata needs no token
        assert TOKEN not in sp.log()

        with ThreadPoolExecutor(3) as pool:
            inflight = [pool.submit(post, sp.url, "tiny_slow") for _ in range(3)]
            # all three admitted and waiting in the queue (tiny_slow holds them 600 ms for batch-mates)
            wait_until(
                lambda: server_metric(sp.url, "inferload_queue_depth", model="tiny_slow") == 3,
                timeout_s=10,
                interval_s=0.01,
                what="queue depth of tiny_slow == 3 before SIGTERM",
                describe=sp.log,
            )
            sp.proc.send_signal(signal.SIGTERM)
            wait_until(
                lambda: httpx.get(f"{sp.url}/v2/health/ready", timeout=5).status_code == 503,
                timeout_s=5,
                interval_s=0.01,
                what="readiness 503 after SIGTERM",
                describe=sp.log,
            )
            # still inside the drain: the queued requests have not been answered yet
            assert not any(f.done() for f in inflight), "answered before the drain: the test did not test it"
            late = post(sp.url, "tiny_classifier")
            assert late.status_code == 503 and "shutting down" in late.json()["error"]
            statuses = [f.result(timeout=20).status_code for f in inflight]
        assert statuses == [200, 200, 200]
        assert sp.proc.wait(timeout=20) == 0, sp.log()
    finally:
        stop_server(sp)


def test_bad_config_exits_nonzero_with_reason(tmp_path):
    repo = make_repository(tmp_path)
    (repo / "tiny_classifier" / "config.toml").write_text('builtin = "tiny_classifier"\nmax_batch_size = "lots"\n')
    p = subprocess.run(
        [sys.executable, "-m", "server", "--models", str(repo), "--port", "0"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    assert "max_batch_size" in p.stderr and "failed to start" in p.stderr
