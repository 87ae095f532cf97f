"""Generator capacity of one worker process, and of two on separate cores (issue #22; a runnable script, not a test).

    .venv/bin/python benchmarks/fleet_scaling.py [--start 2000] [--step 1.15] [--duration 4] [--json out.json]

A trivial endpoint (nginx answering every POST with a constant JSON body, if `nginx` is installed: `apt-get install
nginx-light`; else the stand-in OIP server of the tests with no service time) takes the load, so the generator is
what saturates. For k = 1 and 2, `inferload sweep --expect-workers k --rates LADDER` (the master, which sends no
load) drives k `inferload worker` processes, worker i pinned to CPU i (k = 1: CPU 1), open loop with constant
arrivals; a fleet's capacity is the highest rate of the ladder at which every worker kept its CPU under 90% and carried
out its schedule on time (no `generator_cpu`, no `schedule_short`, at most 1% of its requests sent more than 2 ms
late), before the first rate where one did not. (Validity's `lag_material` is not the criterion: against a
sub-millisecond endpoint even a 2-ms lag is material, which says nothing of the generator's capacity against a real
server's tens of milliseconds.) Prints both capacities, each worker's share and
CPU, and their ratio (target: >= 1.8). The endpoint and the master float over both cores, so the ratio includes what
they take from the workers; docs/fleet.md turns the per-worker figure into fleet sizing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadgen.util.net import free_port  # noqa: E402

MAX_LATE_SHARE = 0.01
"""A worker keeps up when at most this share of its requests leave more than 2 ms after their scheduled instant."""

NGINX_CONF = """
worker_processes 1;
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{{"outputs": [{{"name": "y", "data": [1]}}]}}'; }}
  }}
}}
"""


class Endpoint:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if nginx:
            (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=self.port))
            self.proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"])
            self.kind = "nginx (constant JSON answer)"
            self.args = [
                "--model",
                "m",
                "--protocol",
                "http-json",
                "--path",
                "/infer",
                "--body-template",
                str(tmp / "body.json"),
            ]
            (tmp / "body.json").write_text('{"inputs": [{"name": "x", "data": ["{{id}}"]}]}')
        else:
            script = ROOT / "tests" / "loadgen" / "standin_server.py"
            self.proc = subprocess.Popen(
                [sys.executable, str(script), "--port", str(self.port), "--max-lifetime-s", "3600"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdout is not None
            self.proc.stdout.readline()
            self.kind = "stand-in OIP server (no service time)"
            self.args = ["--model", "m"]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def measure(ep: Endpoint, k: int, rates: list[float], duration: float, tmp: Path, max_late: float) -> dict:
    """An open-loop sweep over `rates` with k workers (one fleet for every point): the highest rate whose run is VALID,
    below the first one INVALID for the generator's reasons, is the fleet's capacity."""
    port = free_port()
    out = tmp / f"sweep-{k}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    master = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "sweep", "--target", ep.url, *ep.args, "--rates",
         ",".join(f"{r:.0f}" for r in rates), "--arrival", "constant", "--duration", str(duration), "--warmup", "1",
         "--expect-workers", str(k), "--master-bind", f"127.0.0.1:{port}", "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    cpus = [1] if k == 1 else list(range(k))
    workers = [
        subprocess.Popen(
            ["taskset", "-c", str(c), sys.executable, "-m", "loadgen.cli", "worker", "--master", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for c in cpus
    ]
    try:
        master.wait(timeout=len(rates) * (duration + 30) + 120)
    finally:
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
    doc = json.loads((out / "sweep.json").read_text())
    points, capacity = [], None
    for row in doc["points"]:
        r = json.loads((out / row["file"]).read_text())
        per = r["workers"]["per_worker"]
        codes = [x["code"] for x in r["invalid_reasons"]]
        points.append(
            {
                "rate_rps": row["offered_rps"],
                "valid": r["valid"],
                "reasons": codes,
                "worker_cpu_max": [w["cpu_percent"]["max"] for w in per],
                "worker_cpu_mean": [w["cpu_percent"]["mean"] for w in per],
                "worker_rps": [round((w["completed"] + w["failed"]) / r["duration_s"], 1) for w in per],
                "lag_p99_ms": [w["schedule_lag_ms"]["p99"] for w in per],
                "late_share": [w["delayed_fraction"] for w in per],
            }
        )
        late = max(w["delayed_fraction"] for w in per) > max_late
        if {"generator_cpu", "schedule_short"} & set(codes) or late:
            points[-1]["reasons"] = codes + (["late_sends"] if late else [])
            break
        capacity = points[-1]
    return {"workers": k, "capacity": capacity, "points": points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=4.0, help="measured seconds per rate")
    ap.add_argument("--start", type=float, default=2000.0, help="first rate (req/s)")
    ap.add_argument("--step", type=float, default=1.15, help="rate ladder factor")
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument(
        "--max-late-share",
        type=float,
        default=MAX_LATE_SHARE,
        help="a worker keeps up while at most this share of its sends are > 2 ms late (1 = judge by CPU and schedule only)",
    )
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two CPUs")
    rates = [a.start * a.step**i for i in range(a.points)]
    with tempfile.TemporaryDirectory(prefix="fleet-scaling-") as t:
        tmp = Path(t)
        ep = Endpoint(tmp)
        try:
            one = measure(ep, 1, rates, a.duration, tmp, a.max_late_share)
            two = measure(ep, 2, rates, a.duration, tmp, a.max_late_share)
        finally:
            ep.stop()
    print(f"endpoint: {ep.kind}; open loop, constant arrivals, {a.duration:g} s per rate, ladder x{a.step:g}")
    for m in (one, two):
        c = m["capacity"]
        last = m["points"][-1]
        print(
            f"{m['workers']} worker(s): capacity {c['rate_rps']:.0f} req/s (per worker "
            f"{', '.join(f'{x:.0f}' for x in c['worker_rps'])} req/s at CPU max "
            f"{', '.join(f'{x:.0f}%' for x in c['worker_cpu_max'])}, lag p99 "
            f"{', '.join(f'{x:.2f}' for x in c['lag_p99_ms'])} ms); next {last['rate_rps']:.0f} req/s: "
            + ("(ladder ended)" if last is c else f"INVALID ({', '.join(last['reasons'])})")
            if c
            else f"{m['workers']} worker(s): no VALID rate on the ladder: {m['points']}"
        )
    for m in (one, two):
        c = m["capacity"]
        if c:
            eff = [r / (u / 100) for r, u in zip(c["worker_rps"], c["worker_cpu_mean"], strict=True) if u]
            m["rps_per_cpu_second"] = [round(x) for x in eff]
            print(f"{m['workers']} worker(s) at capacity: {', '.join(f'{x:.0f}' for x in eff)} req/s per CPU-second")
    if one["capacity"] and two["capacity"]:
        ratio = two["capacity"]["rate_rps"] / one["capacity"]["rate_rps"]
        print(f"2 workers / 1 worker: {ratio:.2f}x (target >= 1.8; ladder step {a.step:g} bounds its resolution)")
        if a.json:
            a.json.write_text(
                json.dumps({"endpoint": ep.kind, "one": one, "two": two, "ratio": round(ratio, 3)}, indent=2)
            )


if __name__ == "__main__":
    main()
