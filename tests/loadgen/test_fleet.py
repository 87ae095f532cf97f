"""Workers that join from anywhere (`inferload worker --master HOST:PORT`) driven by `inferload run|peak
--expect-workers N`, on loopback: the scenario and its files travel from the master, the merged counts are the sum of
the workers', a worker killed mid-run makes the run INVALID (worker_lost) and a search still ends with a status, and
a missing worker is named when the wait times out. Every process is a subprocess the test stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadgen.util.net import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", *args],
            cwd=kw.pop("cwd", ROOT),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,
        )
        self.procs.append(p)
        return p

    def worker(self, port: int, *extra: str) -> subprocess.Popen:
        return self.start("worker", "--master", f"127.0.0.1:{port}", *extra)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)


@pytest.fixture
def procs() -> Iterator[Procs]:
    ps = Procs()
    yield ps
    ps.stop()


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def _finish(p: subprocess.Popen, timeout_s: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout_s)
    return p.returncode, out, err


MODEL_INPUTS = json.dumps([{"name": "ids", "datatype": "INT64", "shape": [-1, 3]}])


def test_remote_workers_get_the_scenario_and_its_files_and_the_counts_add_up(standin, procs, tmp_path):
    srv = standin("--service-ms", "1", "--record-inputs", "--model-inputs", MODEL_INPUTS)
    data = tmp_path / "mine.json"  # only the master has this file: the workers must get it from the master
    data.write_text(json.dumps({"data": [{"ids": [11, 12, 13]}, {"ids": [21, 22, 23]}]}))
    port = free_port()
    out = tmp_path / "r.json"
    master = procs.start(
        "run", "--target", srv.url, "--model", "m", "--rate", "200", "--arrival", "constant", "--duration", "3",
        "--warmup", "1", "--input-data", str(data), "--expect-workers", "2", "--master-bind", f"127.0.0.1:{port}",
        "--worker-timeout", "60", "--out", str(out), "--no-progress", "--allow-invalid",
    )  # fmt: skip
    w1, w2 = procs.worker(port), procs.worker(port)
    rc, stdout, err = _finish(master)
    assert rc == 0, stdout[-2000:] + err[-2000:]
    r = json.loads(out.read_text())
    # a constant 200/s split in two streams (k + 2i)/200 s: together exactly 600 in the 3-s window
    assert r["completed"] == 600 and r["failed"] == 0 and r["dropped"] == 0
    w = r["workers"]
    assert w["count"] == 2 and w["lost"] == [] and w["limited_by"] is None
    rows = w["per_worker"]
    assert sorted(x["stream"] for x in rows) == [0, 1]
    assert {x["name"].rpartition(":")[2] for x in rows} == {str(w1.pid), str(w2.pid)}
    assert sum(x["completed"] for x in rows) == r["completed"]
    assert all(x["completed"] == 300 for x in rows)  # each followed its own half
    with urllib.request.urlopen(srv.url + "/stats/inputs", timeout=5) as got:
        recs = json.loads(got.read())
    assert recs and {tuple(x["inputs"]["ids"]["data"]) for x in recs} == {(11, 12, 13), (21, 22, 23)}
    for p in (w1, w2):  # the master quit: its workers leave with it
        p.wait(timeout=15)
        assert p.returncode == 0


def test_expect_workers_times_out_naming_who_is_missing(standin, procs, tmp_path):
    srv = standin()  # the master reads the model's metadata first: a bad target fails before any wait
    port = free_port()
    master = procs.start(
        "run", "--target", srv.url, "--model", "m", "--rate", "10", "--duration", "1",
        "--expect-workers", "2", "--master-bind", f"127.0.0.1:{port}", "--worker-timeout", "20", "--no-progress",
    )  # fmt: skip
    w = procs.worker(port)
    rc, stdout, err = _finish(master, 60)
    text = " ".join((stdout + err).split())
    assert rc == 3, text[-2000:]
    assert f"for 2 workers (0 local, 2 expected from elsewhere) on 127.0.0.1:{port}" in text
    assert f"1 connected ({os.uname().nodename}:{w.pid}), 1 missing" in text
    assert f"inferload worker --master <address of this machine>:{port}" in text


def test_a_worker_with_no_master_gives_up_with_exit_3(procs):
    w = procs.worker(free_port(), "--connect-timeout", "1")
    rc, _, err = _finish(w, 60)
    assert rc == 3 and "no master answered" in err


def test_a_worker_killed_mid_run_makes_it_invalid_and_is_named(standin, procs, tmp_path):
    srv = standin("--service-ms", "1")
    port = free_port()
    out = tmp_path / "r.json"
    t0 = time.monotonic()
    master = procs.start(
        "run", "--target", srv.url, "--model", "m", "--rate", "100", "--duration", "15", "--warmup", "1",
        "--expect-workers", "2", "--master-bind", f"127.0.0.1:{port}", "--out", str(out), "--no-progress",
        "--allow-invalid",
    )  # fmt: skip
    w1, w2 = procs.worker(port), procs.worker(port)
    _wait(lambda: _stats(srv.url)["count"] >= 100, 60, "the load to flow")
    w2.send_signal(signal.SIGKILL)
    rc, stdout, err = _finish(master)
    elapsed = time.monotonic() - t0
    assert rc == 0, stdout[-2000:] + err[-2000:]
    r = json.loads(out.read_text())
    assert not r["valid"] and r["invalid_reasons"][0]["code"] == "worker_lost"
    lost = f"{os.uname().nodename}:{w2.pid}"
    assert r["workers"]["lost"] == [lost] and r["workers"]["limited_by"] == lost
    assert lost in r["invalid_reasons"][0]["message"]
    survivor = next(x for x in r["workers"]["per_worker"] if x["name"] != lost)
    assert survivor["completed"] > 0 and survivor["problems"] == []
    # the loss ended the run early: the survivor was told to stop, the master did not sit out the 16-s schedule
    # plus its 30-s timeout (the kill came ~1-2 s in; Locust's heartbeat notices within ~4 s)
    assert elapsed < 16 + 30, elapsed
    w1.wait(timeout=15)


def test_a_search_that_loses_a_worker_still_ends_with_a_status(standin, procs, tmp_path):
    srv = standin("--service-ms", "1")
    port = free_port()
    out = tmp_path / "peak"
    master = procs.start(
        "peak", "--target", srv.url, "--model", "m", "--slo-ms", "50", "--start-rate", "60", "--max-rate", "120",
        "--duration", "2", "--warmup", "0.5", "--max-probes", "4", "--confirm", "1", "--expect-workers", "2",
        "--master-bind", f"127.0.0.1:{port}", "--out", str(out), "--allow-invalid",
    )  # fmt: skip
    procs.worker(port)
    victim = procs.worker(port)
    _wait(lambda: _stats(srv.url)["count"] >= 60, 60, "the first probe's load")
    victim.send_signal(signal.SIGKILL)
    rc, stdout, err = _finish(master, 240)
    doc = json.loads((out / "peak.json").read_text())
    assert rc in (0, 1), stdout[-2000:] + err[-2000:]
    assert doc["status"] in ("found", "capped", "probe_limit", "never_passed", "generator_limited")
    attempts = [a for p in doc["probes"] for a in p["info"].get("attempts", [])]
    codes = [r["code"] for a in attempts for r in a["invalid_reasons"]]
    assert "worker_lost" in codes, attempts
    # after the loss the search measured again with the worker left, and went on
    first_lost = next(
        i for i, a in enumerate(attempts) if any(r["code"] == "worker_lost" for r in a["invalid_reasons"])
    )
    assert len(attempts) > first_lost + 1
    later = json.loads((out / attempts[-1]["file"]).read_text())
    assert later["workers"]["count"] == 1
