#!/usr/bin/env python3
"""ORT threading per instance, measured on the server: which `[instances]` setting to use on this machine.

For each configuration a `python -m server` is started with that override (nothing pinned), and in one run:
  throughput  batch-1 binary requests, 2 x max_batch_size in flight (aiohttp): req/s the server sustains.
  b2b p50     one closed-loop client at batch 1, next request as soon as the answer arrives.
  idle p50    one request after each idle gap (`--idle-gap-ms`, default 50).
  CPU/req     CPU of every server thread (/proc/<pid>/task/*/schedstat) per request: back to back, at saturation,
              and the CPU the server burns per second while idle (spinning shows here).

Configurations (on N usable CPUs): one wide instance (1 x N threads) with spinning off and on; one instance per
core (N x 1 thread); one instance with one thread (the cheapest CPU per request). Segments alternate across the
configurations over `--rounds` rounds, so drift on a shared machine spreads evenly.

Usage: python benchmarks/ort_threading.py [--models mobilenet_v2] [--duration 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from served_vs_raw import Served, oip_body, p50, thread_cpu_s

from loadgen.baseline.serverproc import ServerProcess
from loadgen.engine.payloads import fetch_model_info
from server.cpus import available_cpus
from server.repository import ensure_built, load_repository

MODELS = Path(__file__).resolve().parents[1] / "models"


def configurations(cpus: int) -> list[tuple[str, dict]]:
    out = [
        (f"1 x {cpus} threads, no spin", {"count": 1, "intra_op_threads": cpus, "allow_spinning": False}),
        (f"1 x {cpus} threads, spin", {"count": 1, "intra_op_threads": cpus, "allow_spinning": True}),
    ]
    if cpus > 1:
        out.append((f"{cpus} x 1 thread", {"count": cpus, "intra_op_threads": 1, "allow_spinning": False}))
        out.append(("1 x 1 thread", {"count": 1, "intra_op_threads": 1, "allow_spinning": False}))
    return out


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers we started (finally blocks)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenet_v2")
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per measurement and configuration")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle-gap-ms", type=float, default=50.0)
    ap.add_argument("--idle-calls", type=int, default=40)
    args = ap.parse_args()
    cpus = available_cpus()
    print(f"ort_threading: {cpus} usable CPUs, {args.duration:g} s per measurement in {args.rounds} rounds")
    for model in args.models.split(","):
        cfg = load_repository(MODELS, [model])[model]
        ensure_built(cfg)
        confs = configurations(cpus)
        servers: list[ServerProcess] = []
        clients: list[Served] = []
        stats = [{"sat": [], "idle_cpu": []} for _ in confs]
        try:
            for _, inst in confs:
                srv = ServerProcess(MODELS, model_names=[model], model_overrides={model: {"instances": inst}}).start()
                servers.append(srv)
            meta = fetch_model_info(servers[0].url, model)["metadata"]
            inp, out = meta["inputs"][0], meta["outputs"][0]
            shape = [1] + [d if d > 0 else 1 for d in inp["shape"][1:]]
            body, headers = oip_body(
                inp["name"], np.random.default_rng(0).standard_normal(shape).astype(np.float32), out["name"]
            )
            clients = [Served(srv, model, body, headers) for srv in servers]
            seg = args.duration / args.rounds
            for _ in range(args.rounds):
                for i, c in enumerate(clients):
                    c.back_to_back(seg)
                    c.after_idle(args.idle_calls // args.rounds, args.idle_gap_ms / 1e3)
                    pid = c.srv.proc.pid
                    a0, _ = thread_cpu_s(pid)
                    w0 = time.perf_counter()
                    time.sleep(1.0)  # idle: what does the server burn while nobody asks?
                    a1, _ = thread_cpu_s(pid)
                    stats[i]["idle_cpu"].append((a1 - a0) / (time.perf_counter() - w0))
                    c0, _ = thread_cpu_s(pid)
                    n0 = time.perf_counter()
                    c.saturate(2 * cfg.max_batch_size, seg, 1.0)
                    c1, _ = thread_cpu_s(pid)
                    rps = c.sat_rps[-1]
                    stats[i]["sat"].append((rps, (c1 - c0) / max(1.0, rps * (time.perf_counter() - n0))))
            for c in clients:
                c.close()
        finally:
            for srv in servers:
                srv.stop()
        print(f"\n{model}")
        print(
            f"  {'configuration':26s} {'req/s':>7s} {'b2b p50':>8s} {'idle p50':>9s} {'CPU/req b2b':>12s} "
            f"{'CPU/req sat':>12s} {'idle CPU':>9s}"
        )
        for (name, _), c, s in zip(confs, clients, stats):
            rps = float(np.mean([r for r, _ in s["sat"]]))
            # CPU/req at saturation counts the warm-up second too (CPU over it / requests estimated at the same rate)
            sat_cpu = float(np.mean([x for _, x in s["sat"]])) * 1e3
            print(
                f"  {name:26s} {rps:7.1f} {p50(c.b2b):7.2f}ms {p50(c.idle):8.2f}ms {c.cpu_s / c.n * 1e3:10.2f}ms "
                f"{sat_cpu:10.2f}ms {float(np.mean(s['idle_cpu'])) * 100:8.1f}%"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
