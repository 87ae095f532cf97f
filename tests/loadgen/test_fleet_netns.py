"""Load from many machines, proven off loopback: the server, the master and two workers each in a network namespace
this test makes (veth pairs on a bridge in a namespace of its own, 10.77.0.0/24, with `tc netem` delay on the
server's link where the kernel has netem), and `inferload peak --expect-workers 2` completes with both workers contributing to every probe and
the merged counts equal to the sum of the workers'. Only the test's own namespaces' addresses are used; everything it
starts and makes, it stops and deletes. Skips with the reason where namespaces cannot be made (not root, no `ip`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "loadgen" / "standin_server.py"
SUBNET = "10.77.0"
HOSTS = {"srv": 1, "m": 2, "w1": 3, "w2": 4}
MASTER_PORT = 5557
NETEM_DELAY_MS = 2


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


class Net:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns = {h: f"il{tag}-{h}" for h in [*HOSTS, "br"]}
        self.made: list[str] = []
        self.netem = False

    def make(self) -> None:
        br = self.ns["br"]
        for name in self.ns.values():
            _ip("netns", "add", name)
            self.made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", br, "link", "add", "br0", "type", "bridge")
        _ip("-n", br, "link", "set", "br0", "up")
        for host, last in HOSTS.items():
            _ip("-n", br, "link", "add", f"b-{host}", "type", "veth", "peer", "name", "eth0", "netns", self.ns[host])
            _ip("-n", br, "link", "set", f"b-{host}", "master", "br0", "up")
            _ip("-n", self.ns[host], "addr", "add", f"{SUBNET}.{last}/24", "dev", "eth0")
            _ip("-n", self.ns[host], "link", "set", "eth0", "up")
        if shutil.which("tc"):  # a little network distance between the generators and the server, where the kernel has
            # sch_netem (not every VM's kernel does: then the test runs without it)
            self.netem = subprocess.run(
                ["ip", "netns", "exec", self.ns["srv"], "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay",
                 f"{NETEM_DELAY_MS}ms"],
                check=False, capture_output=True, timeout=20,
            ).returncode == 0  # fmt: skip

    def exec(self, host: str, *cmd: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns[host], *cmd],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            text=True,
            **kw,
        )

    def delete(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@pytest.fixture
def net():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2's `ip`")
    n = Net()
    try:
        n.make()
    except (subprocess.CalledProcessError, OSError) as e:
        n.delete()
        msg = getattr(e, "stderr", "") or str(e)
        pytest.skip(f"cannot make network namespaces here: {msg.strip()}")
    yield n
    n.delete()


def test_a_peak_search_across_namespaces_uses_both_workers_and_adds_their_counts(net, tmp_path):
    srv_ip, m_ip = f"{SUBNET}.{HOSTS['srv']}", f"{SUBNET}.{HOSTS['m']}"
    procs: list[subprocess.Popen] = []
    try:
        srv = net.exec(
            "srv", sys.executable, str(STANDIN), "--host", srv_ip, "--port", "0", "--service-ms", "1",
            "--max-lifetime-s", "240", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(srv)
        line = srv.stdout.readline() if srv.stdout else ""
        assert line.startswith("PORT "), line
        target = f"http://{srv_ip}:{int(line.split()[1])}"
        out = tmp_path / "peak"
        master = net.exec(
            "m", sys.executable, "-m", "loadgen.cli", "peak", "--target", target, "--model", "m", "--slo-ms", "50",
            "--start-rate", "50", "--max-rate", "100", "--duration", "2", "--warmup", "0.5", "--max-probes", "3",
            "--confirm", "1", "--expect-workers", "2", "--master-bind", f"{m_ip}:{MASTER_PORT}", "--worker-timeout",
            "60", "--out", str(out), "--allow-invalid", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        procs.append(master)
        workers = [
            net.exec(
                w,
                sys.executable,
                "-m",
                "loadgen.cli",
                "worker",
                "--master",
                f"{m_ip}:{MASTER_PORT}",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for w in ("w1", "w2")
        ]
        procs += workers
        stdout, stderr = master.communicate(timeout=240)
        assert master.returncode in (0, 1), stdout[-2000:] + stderr[-2000:]
        doc = json.loads((out / "peak.json").read_text())
        assert doc["status"] in ("found", "capped", "probe_limit"), doc["status"]
        files = [a["file"] for p in doc["probes"] for a in p["info"]["attempts"]]
        assert files
        for f in files:
            r = json.loads((out / f).read_text())
            w = r["workers"]
            assert w["count"] == 2 and w["lost"] == [], (f, w)
            rows = w["per_worker"]
            assert all(x["completed"] > 0 for x in rows), (f, rows)  # both contributed
            assert sum(x["completed"] for x in rows) == r["completed"]
            assert sum(x["failed"] for x in rows) == r["failed"]
            assert sum(x["sent"] for x in rows) == r["phases"]["measure"]["sent"]
            assert sorted(x["stream"] for x in rows) == [0, 1]
            # the netem delay is on the path: no request came back faster than it
            if net.netem:
                assert r["latency_ms"]["min"] >= NETEM_DELAY_MS, r["latency_ms"]
        for p in workers:  # the master quit: the workers leave with it
            p.wait(timeout=20)
            assert p.returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
