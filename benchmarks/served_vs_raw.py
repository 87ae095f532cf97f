#!/usr/bin/env python3
"""Served vs raw: how much of ONNX Runtime's in-process throughput survives HTTP + batching, and what a
request costs in latency.

In one run, for each model:
  raw      in-process ONNX Runtime (loadgen.baseline.bench), 1 instance, the server's thread count; best batch size.
  served   `python -m server` on loopback, binary tensors (OIP binary extension), batch-1 requests from an
           aiohttp client keeping `--concurrency` requests in flight (saturating); the server's dynamic batcher
           forms the batches.
  overhead one closed-loop client at batch 1: served p50 − raw batch-1 p50 (ms).

Targets: ResNet-50 served/raw >= 0.97, MobileNetV2 >= 0.85, batch-1 overhead <= 1.0 ms.
Also prints the per-request cost of JSON vs binary vs JPEG input at batch 1 (one client).

Usage: python benchmarks/served_vs_raw.py [--models resnet50,mobilenet_v2] [--duration 10]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen.engine.payloads import fetch_model_info, synthetic_images  # noqa: E402
from loadgen.baseline.serverproc import ServerProcess  # noqa: E402
from loadgen.engine.servertiming import parse_server_timing  # noqa: E402
from loadgen.baseline.bench import bench_point  # noqa: E402
from server.cpus import available_cpus  # noqa: E402
from server.protocol import encode_request  # noqa: E402
from server.repository import ensure_built, load_repository  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "models"
TARGET_RATIO = {"resnet50": 0.97, "mobilenet_v2": 0.85}


def oip_body(name: str, arr: np.ndarray, output: str, binary: bool) -> tuple[bytes, dict]:
    """An OIP v2 request (binary tensor extension or JSON) for one FP32 input, asking for `output`."""
    body, header_length = encode_request(
        [(name, "FP32", arr)], binary=binary,
        outputs=[{"name": output, "parameters": {"binary_data": True}} if binary else {"name": output}],
    )
    if header_length is None:
        return body, {"Content-Type": "application/json"}
    return body, {"Inference-Header-Content-Length": str(header_length), "Content-Type": "application/octet-stream"}


async def drive(url: str, body: bytes, headers: dict, concurrency: int, duration_s: float, warmup_s: float) -> dict:
    """Keep `concurrency` requests in flight; steady-state throughput = completions inside the window / window.

    (Counting requests *started* in the window and waiting for them to finish would add a drain tail in which
    fewer than `concurrency` requests are in flight, understating a server that batches.)"""
    import aiohttp

    lat: list[float] = []
    server_overhead: list[float] = []  # Server-Timing total − compute, ms
    errors = 0
    t0 = time.perf_counter()
    t_measure, t_end = t0 + warmup_s, t0 + warmup_s + duration_s
    conn = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker() -> None:
            nonlocal errors
            while True:
                s = time.perf_counter()
                if s >= t_end:
                    return
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
                    timing = r.headers.get("Server-Timing", "")
                e = time.perf_counter()
                if t_measure <= e < t_end:
                    if ok:
                        lat.append(e - s)
                        st = parse_server_timing(timing)
                        if st.get("total") is not None and st.get("compute") is not None:
                            server_overhead.append(st.get("total") - st.get("compute"))
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    arr = np.asarray(lat) * 1000 if lat else np.asarray([float("nan")])
    return {"rps": len(lat) / duration_s, "p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "errors": errors, "n": len(lat),
            "server_overhead_p50_ms": float(np.percentile(server_overhead, 50)) if server_overhead else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=0, help="in-flight requests for saturation (default 2 x max_batch_size)")
    ap.add_argument("--raw-batches", default="1,8,16")
    args = ap.parse_args()

    cpus = available_cpus()
    print(f"served_vs_raw: {cpus} usable CPUs, duration {args.duration}s per point")
    rows = []
    for model in args.models.split(","):
        cfg = load_repository(MODELS, [model])[model]
        ensure_built(cfg)
        threads = cfg.threads_per_instance()
        raws = {}
        for b in [int(x) for x in args.raw_batches.split(",") if int(x) <= cfg.max_batch_size]:
            raws[b] = bench_point(cfg.model_path, b, 1, threads, args.duration, args.warmup)
        raw_best = max(r["throughput_items_per_s"] for r in raws.values())
        raw_b1_p50 = raws[1]["latency_ms"]["p50"]
        with ServerProcess(MODELS, model_names=[model]) as srv:
            url = srv.url
            meta = fetch_model_info(url, model)["metadata"]
            inp, out = meta["inputs"][0], meta["outputs"][0]
            shape = [1] + [d if d > 0 else 1 for d in inp["shape"][1:]]
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            infer = f"{url}/v2/models/{model}/infer"
            body, headers = oip_body(inp["name"], x, out["name"], binary=True)
            conc = args.concurrency or 2 * cfg.max_batch_size
            sat = asyncio.run(drive(infer, body, headers, conc, args.duration, args.warmup))
            one = asyncio.run(drive(infer, body, headers, 1, args.duration, args.warmup))
            jb, jh = oip_body(inp["name"], x, out["name"], binary=False)
            js = asyncio.run(drive(infer, jb, jh, 1, min(args.duration, 5), 1))
        ratio = sat["rps"] / raw_best
        overhead = one["p50_ms"] - raw_b1_p50
        rows.append((model, raw_best, sat, ratio, raw_b1_p50, one, overhead, js))
        print(f"\n{model}: raw best {raw_best:.1f} items/s "
              + ", ".join(f"b{b}={r['throughput_items_per_s']:.1f}" for b, r in raws.items())
              + f" | served {sat['rps']:.1f} req/s (concurrency {conc}, p99 {sat['p99_ms']:.1f} ms, errors {sat['errors']})")
        print(f"  served/raw throughput ratio: {ratio:.3f} (target >= {TARGET_RATIO.get(model, 0.85)})  "
              f"{'OK' if ratio >= TARGET_RATIO.get(model, 0.85) else 'MISSED'}")
        print(f"  batch-1 p50: raw {raw_b1_p50:.2f} ms, served binary {one['p50_ms']:.2f} ms → overhead {overhead:+.2f} ms "
              f"(target <= 1.0) {'OK' if overhead <= 1.0 else 'MISSED'}; inside the server (total − compute) "
              f"{one['server_overhead_p50_ms']:.2f} ms")
        print(f"  batch-1 p50 served JSON {js['p50_ms']:.2f} ms (JSON − binary = {js['p50_ms'] - one['p50_ms']:+.2f} ms/request)")

    # Encoded-image input cost, on the image pipeline of mobilenet_v2 (decode + preprocess on the server).
    if "mobilenet_v2" in args.models.split(","):
        with ServerProcess(MODELS, model_names=["mobilenet_v2_jpeg"]) as srv:
            jb, jh = synthetic_images(1, seed=0, sizes=[(480, 480)])[0], {"Content-Type": "image/jpeg"}
            img = asyncio.run(drive(f"{srv.url}/v2/models/mobilenet_v2_jpeg/infer", jb, jh, 1, min(args.duration, 5), 1))
        mb = next(r for r in rows if r[0] == "mobilenet_v2")
        print(f"\nmobilenet_v2 input cost per request at batch 1 (p50): binary {mb[5]['p50_ms']:.2f} ms, "
              f"JSON {mb[7]['p50_ms']:.2f} ms, JPEG 480x480 {img['p50_ms']:.2f} ms ({len(jb)} bytes)")
    missed = [r[0] for r in rows if r[3] < TARGET_RATIO.get(r[0], 0.85) or r[6] > 1.0]
    print("\nsummary: " + ("all targets met" if not missed else f"targets missed for {', '.join(missed)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
