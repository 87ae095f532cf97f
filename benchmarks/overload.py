"""Overload targets of the serving path (a runnable script, not a test): MobileNetV2, max batch 8, max_queue_size 16,
the server niced beside the generator on this machine, `inferload overload` at 1x, 1.5x, 2x, 3x of capacity.

    .venv/bin/python benchmarks/overload.py [--duration 10] [--model mobilenet_v2] [--separate-cores]

--separate-cores: the server and its one ORT thread on CPU 0 (intra_op_threads=1, not niced), the generator on CPU 1,
so the figures are the server's and not those of a box the generator shares (capacity is measured the same way).

Prints per step goodput / capacity, the server's p99 time to a 503, queue depth and admitted requests against their
caps and RSS growth, then the targets at 3x: RSS growth <= 64 MB, refusal p99 <= 5 ms, goodput >= 0.85 x capacity,
queue never above its cap. All figures come from one run (ratios against the capacity measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers we started (finally blocks)
    from loadgen.baseline.serverproc import ServerProcess

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--nice", type=int, default=19)
    p.add_argument("--separate-cores", action="store_true", help="server on CPU 0 (1 ORT thread), generator on CPU 1")
    a = p.parse_args()
    overrides: dict = {"max_batch_size": 8, "batching": {"max_queue_size": 16, "max_queue_delay_ms": 0}}
    everywhere = os.sched_getaffinity(0)
    server_cpus, generator_cpus, nice = everywhere, everywhere, a.nice
    if a.separate_cores:
        if not {0, 1} <= everywhere:
            print("--separate-cores needs CPUs 0 and 1", file=sys.stderr)
            return 2
        server_cpus, generator_cpus, nice = {0}, {1}, 0
        overrides["instances"] = {"intra_op_threads": 1}
    out = Path(tempfile.mkdtemp(prefix="overload-"))
    os.sched_setaffinity(0, server_cpus)  # inherited by the server process and all its threads
    try:
        srv = ServerProcess(
            ROOT / "models", model_names=[a.model], overrides=overrides, nice=nice, log_path=out / "server.log"
        ).start()
    finally:
        os.sched_setaffinity(0, everywhere)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen.cli",
                "overload",
                "--target",
                srv.url,
                "--model",
                a.model,
                "--duration",
                f"{a.duration:g}",
                "--warmup",
                "2",
                "--slo-p99-ms",
                "100",
                "--out",
                str(out),
            ],
            check=True,
            cwd=ROOT,
            preexec_fn=lambda: os.sched_setaffinity(0, generator_cpus),
        )
    finally:
        srv.stop()
    doc = json.loads((out / "overload.json").read_text())
    worst = doc["steps"][-1]
    checks = [
        ("RSS growth at 3x <= 64 MB", max(s.get("rss_growth_mb") or 0 for s in doc["steps"][1:]), 64, "<="),
        ("refusal p99 (server) <= 5 ms", (worst["refusal_server_ms"] or {}).get("p99"), 5, "<="),
        ("goodput at 3x >= 0.85 x capacity", worst["goodput_share"], 0.85, ">="),
        (
            "queue depth never above its cap",
            max(s.get("queue_depth_max") or 0 for s in doc["steps"]),
            worst.get("queue_cap"),
            "<=",
        ),
    ]
    where = "server on CPU 0, generator on CPU 1" if a.separate_cores else f"server niced {nice}, CPUs shared"
    print(f"\ncapacity {doc['capacity_rps']:.1f} req/s ({where}); results in {out}")
    for name, value, target, op in checks:
        ok = value is not None and target is not None and (value <= target if op == "<=" else value >= target)
        print(f"  {name:40s} {value!s:>10}  {'OK' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
