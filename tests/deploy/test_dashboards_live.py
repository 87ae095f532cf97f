"""Every dashboard query returns data from a real Prometheus scraping a real server and a real load generator.

Setup (module scope, ~30 s): `python -m server` on a temp copy of the tiny test models, /usr/bin/prometheus on
127.0.0.1 with scrape_interval 1s and the same job names as deploy/prometheus.yml, and `inferload run
--metrics-port` (open loop, ~12 s) against the server. During the run the test also posts a few JPEGs to
tiny_classifier_jpeg (preprocess path) and one invalid request (a non-success outcome). Then each panel query,
with Grafana's variables substituted as an all-selected dashboard would ($model → .*, $__rate_interval → 5s),
is run with query_range over the load window; it must return at least one finite sample.

Only failure-by-kind series can be empty in a clean run (the load generator's errors_total{status} has no child
until an error happens): for those the family must at least be exposed by the target (HELP/TYPE on /metrics).
Load generation runs in its own process: importing locust here would monkey-patch this test process.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadgen.baseline.serverproc import ServerProcess
from loadgen.util.net import free_port
from tests.waiting import wait_until

from ._util import METRIC_RE, ROOT, family_of, load_dashboards, panel_targets, substitute

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
# Labelled by kind of failure: no series until that failure happens.
EVENT_ONLY = {"inferload_loadgen_errors_total"}
LOAD_S, WARMUP_S, RATE = 10, 2, 40


def _wait(url: str, timeout_s: float, proc: subprocess.Popen, what: str) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before {url} answered")
        return httpx.get(url, timeout=1.0).status_code == 200

    wait_until(
        answers, timeout_s=timeout_s, interval_s=0.2, ignore=(httpx.HTTPError,), what=f"{what}: {url} answering 200"
    )


def _scraped_since(prom: str, t: float) -> dict[str, float]:
    """job -> timestamp of Prometheus's latest scrape of it (`up` is written on every scrape, failed ones too)."""
    r = httpx.get(f"{prom}/api/v1/query", params={"query": 'timestamp(up{job=~"inferload-.*"})'}, timeout=5)
    body = r.json()
    assert r.status_code == 200 and body.get("status") == "success", body
    return {s["metric"].get("job", "?"): float(s["value"][1]) for s in body["data"]["result"]}


def _stop(proc: subprocess.Popen | None, timeout_s: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 36), (120, 30, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _inferload_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "inferload"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from loadgen.cli import main; main()"]


def _missing_parts() -> str | None:
    if PROMETHEUS is None:
        return "prometheus binary not installed (Debian package 'prometheus': apt-get install prometheus)"
    for mod in ("server/app.py", "server/__main__.py", "loadgen/engine/runner.py"):
        if not (ROOT / mod).exists():
            return f"{mod} does not exist yet (server/load generator under construction)"
    return None


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    reason = _missing_parts()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("live")
    models = tmp / "models"
    for name in ("tiny_classifier", "tiny_classifier_jpeg"):
        shutil.copytree(ROOT / "models" / name, models / name)
    metrics_port, prom_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOAD_")}
    env.update(PYTHONUNBUFFERED="1", INFERLOAD_LOG_LEVEL="warning")
    procs: dict[str, subprocess.Popen] = {}
    logs = {n: tmp / f"{n}.log" for n in ("server", "prometheus", "loadgen")}
    server = ServerProcess(models, log_path=logs["server"], clean_env=True, ready_timeout_s=120)
    server_port = server.port
    try:
        server.start()
        prom_cfg = tmp / "prometheus.yml"
        prom_cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: inferload-server\n    static_configs: [{{targets: ['127.0.0.1:{server_port}']}}]\n"
            f"  - job_name: inferload-loadgen\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        procs["prometheus"] = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            cwd=tmp,
            stdout=logs["prometheus"].open("wb"),
            stderr=subprocess.STDOUT,
        )
        prom = f"http://127.0.0.1:{prom_port}"
        base = f"http://127.0.0.1:{server_port}"
        _wait(f"{prom}/-/ready", 30, procs["prometheus"], "prometheus")

        t_start = time.time()
        procs["loadgen"] = subprocess.Popen(
            [
                *_inferload_cmd(),
                "run",
                "--target",
                base,
                "--model",
                "tiny_classifier",
                "--mode",
                "open",
                "--rate",
                str(RATE),
                "--duration",
                str(LOAD_S),
                "--warmup",
                str(WARMUP_S),
                "--payload",
                "binary",
                "--out",
                str(tmp / "run.json"),
                "--metrics-port",
                str(metrics_port),
            ],
            cwd=tmp,
            env=env,
            stdout=logs["loadgen"].open("wb"),
            stderr=subprocess.STDOUT,
        )

        # Side traffic while the load runs: JPEGs (preprocess path) and one invalid request (non-success outcome).
        jpeg = _jpeg()
        exposed: set[str] = set()
        side_errors: list[str] = []
        with httpx.Client(timeout=5.0) as client:
            deadline = time.monotonic() + WARMUP_S + LOAD_S
            sent_invalid = False
            while time.monotonic() < deadline and procs["loadgen"].poll() is None:
                try:
                    r = client.post(
                        f"{base}/v2/models/tiny_classifier_jpeg/infer",
                        content=jpeg,
                        headers={"Content-Type": "image/jpeg"},
                    )
                    if r.status_code != 200:
                        side_errors.append(f"jpeg → {r.status_code} {r.text[:200]}")
                    if not sent_invalid and time.monotonic() > deadline - LOAD_S / 2:
                        client.post(
                            f"{base}/v2/models/tiny_classifier/infer",
                            json={"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [0]}]},
                        )
                        sent_invalid = True
                except httpx.HTTPError as e:
                    side_errors.append(repr(e))
                if not exposed:  # the generator's exporter starts a moment after the process
                    try:
                        m = client.get(f"http://127.0.0.1:{metrics_port}/metrics")
                        if m.status_code == 200:
                            exposed = {ln.split()[2] for ln in m.text.splitlines() if ln.startswith("# TYPE ")}
                    except httpx.HTTPError:
                        pass
                time.sleep(0.3)  # part of the scenario: side traffic paced at ~3 req/s, not a wait for a state
        rc = procs["loadgen"].wait(90)
        t_end = time.time()
        # the last scrapes have landed: Prometheus scraped both jobs after the run ended (the load generator's
        # scrape then fails, up=0, which still means every scrape while it lived is stored)
        jobs = ("inferload-server", "inferload-loadgen")
        wait_until(
            lambda: all(_scraped_since(prom, t_end).get(j, 0.0) >= t_end for j in jobs),
            timeout_s=30,
            interval_s=0.2,
            ignore=(httpx.HTTPError,),
            what=f"a Prometheus scrape of {jobs} after the run ended",
            describe=lambda: f"latest scrapes: {_scraped_since(prom, t_end)}, run ended at {t_end:.3f}",
        )
        yield {
            "prom": prom,
            "start": t_start,
            "end": t_end,
            "loadgen_rc": rc,
            "exposed": exposed,
            "side_errors": side_errors,
            "logs": logs,
            "tmp": tmp,
        }
    finally:
        _stop(procs.get("loadgen"))
        server.stop()
        _stop(procs.get("prometheus"))


def _query_range(prom: str, expr: str, start: float, end: float) -> list[dict]:
    r = httpx.get(
        f"{prom}/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": "1s"}, timeout=10
    )
    body = r.json()
    assert r.status_code == 200 and body.get("status") == "success", f"query failed: {expr}\n{body}"
    return body["data"]["result"]


def _has_finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(v)) for series in result for _, v in series["values"])


def test_setup_worked(live):
    assert live["exposed"], "could not read the load generator's /metrics during the run\n" + _tail(
        live["logs"]["loadgen"]
    )
    assert not live["side_errors"][:1], (
        f"side traffic failed: {live['side_errors'][:3]}\n{_tail(live['logs']['server'])}"
    )
    up = _query_range(live["prom"], 'up{job="inferload-server"}', live["start"], live["end"])
    assert up and any(v == "1" for s in up for _, v in s["values"]), "Prometheus never scraped the server"


def _cases():
    for fname, board in load_dashboards().items():
        for panel, target in panel_targets(board):
            yield pytest.param(
                fname,
                panel["title"],
                target["expr"],
                id=f"{fname.removesuffix('.json')}:{panel['title']}:{target['refId']}",
            )


@pytest.mark.parametrize(("board", "title", "expr"), list(_cases()))
def test_panel_query_returns_data(live, board, title, expr):
    query = substitute(expr)
    result = _query_range(live["prom"], query, live["start"], live["end"])
    if _has_finite(result):
        return
    families = {family_of(m) for m in METRIC_RE.findall(query)}
    if families and families <= EVENT_ONLY:
        # exposition names counters without the _total suffix in "# TYPE" lines
        exposed = {f.removesuffix("_total") for f in families} <= {e.removesuffix("_total") for e in live["exposed"]}
        assert exposed, f"{board}: {title!r}: {families} not exposed by the load generator"
        print(f"no events for {sorted(families)} in this run (family exposed): {query}")
        return
    pytest.fail(
        f"{board}: panel {title!r} returned no data\n  query: {query}\n  result: {str(result)[:500]}\n"
        f"  loadgen rc={live['loadgen_rc']} log tail:\n{_tail(live['logs']['loadgen'], 1500)}"
    )
