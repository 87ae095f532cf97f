"""gRPC clients for benchmarks/served_vs_raw.py: the counterparts of its REST clients, equally light.

`GrpcLean`: one channel, blocking unary ModelInfer calls with the request serialized once (bytes in, bytes out), the
server's stage timings read from the `server-timing` trailer. `drive_grpc`: grpc.aio, `concurrency` calls in flight,
throughput from the completion times (served_vs_raw.burst_rate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

INFER = "/inference.GRPCInferenceService/ModelInfer"


def grpc_body(model: str, name: str, arr: np.ndarray, output: str) -> bytes:
    req = service_pb2.ModelInferRequest(model_name=model)
    req.inputs.add(name=name, datatype="FP32", shape=list(arr.shape))
    req.outputs.add(name=output)
    req.raw_input_contents.append(np.ascontiguousarray(arr).tobytes())
    return req.SerializeToString()


class GrpcLean:
    def __init__(self, target: str, body: bytes) -> None:
        self.target, self.body = target, body
        self.channel: grpc.Channel | None = None
        self.call: Callable | None = None

    def connect(self) -> None:
        self.close()
        self.channel = grpc.insecure_channel(self.target)
        self.call = self.channel.unary_unary(INFER).with_call

    def one(self) -> tuple[float, str]:
        assert self.call is not None
        s = time.perf_counter()
        _, call = self.call(self.body, timeout=60)
        e = time.perf_counter()
        for key, value in call.trailing_metadata() or ():
            if key == "server-timing":
                return e - s, value
        return e - s, ""

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


async def drive_grpc(
    target: str, body: bytes, concurrency: int, duration_s: float, warmup_s: float, rate: Callable
) -> dict:
    """Keep `concurrency` calls in flight on one channel; throughput = `rate` (burst_rate) of the completions inside
    the window."""
    done: list[float] = []
    errors = answered = 0
    t0 = time.perf_counter()
    t_measure, t_end = t0 + warmup_s, t0 + warmup_s + duration_s
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(INFER)

        async def worker() -> None:
            nonlocal errors, answered
            while time.perf_counter() < t_end:
                try:
                    await call(body, timeout=60)
                    ok = True
                except grpc.aio.AioRpcError:
                    ok = False
                answered += 1
                e = time.perf_counter()
                if t_measure <= e < t_end:
                    if ok:
                        done.append(e)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    r = rate(done)
    return {"rps": r if r is not None else len(done) / duration_s, "errors": errors, "answered": answered}


def compare_protocols(r: dict) -> bool:
    """Print REST and gRPC side by side (same server, same run); True when gRPC is at least as good as REST on every
    figure (lower overhead and CPU, higher throughput and peak). Ratios are gRPC/REST."""
    rest, grpc_ = r["protocols"]["rest"], r["protocols"]["grpc"]
    rows = [
        ("batch-1 overhead b2b (ms)", rest["served_b2b"] - rest["raw_b2b"], grpc_["served_b2b"] - grpc_["raw_b2b"], -1),
        (
            "batch-1 overhead after idle (ms)",
            rest["served_idle"] - rest["raw_idle"],
            grpc_["served_idle"] - grpc_["raw_idle"],
            -1,
        ),
        ("server CPU/req beside compute (ms)", rest["own_cpu_ms"], grpc_["own_cpu_ms"], -1),
        ("event-loop CPU/answer saturated (ms)", rest["sat_main_ms"], grpc_["sat_main_ms"], -1),
        ("saturated throughput (req/s)", rest["served_rps"], grpc_["served_rps"], +1),
    ]
    peaks = r.get("peaks") or {}
    if peaks:
        rows.append(
            (
                "open-loop peak at the p99 bound (req/s)",
                peaks.get("rest", {}).get("peak_rps"),
                peaks.get("grpc", {}).get("peak_rps"),
                +1,
            )
        )
    print(f"\n  REST vs gRPC, {r['model']} (same server, same run)")
    print(f"  {'figure':<40} {'REST':>9} {'gRPC':>9} {'gRPC/REST':>10}  verdict")
    ok_all = True
    for name, a, b, better in rows:
        if a is None or b is None:
            print(f"  {name:<40} {a!s:>9} {b!s:>9} {'-':>10}  n/a")
            continue
        ok = b >= a if better > 0 else b <= a + 0.02  # ms figures: within 0.02 ms counts as equal
        ok_all &= ok
        ratio = f"{b / a:.3f}" if a else "-"
        print(f"  {name:<40} {a:9.3f} {b:9.3f} {ratio:>10}  {'gRPC >= REST' if ok else 'gRPC worse'}")
    if peaks:
        st = ", ".join(f"{p}: {v.get('status')}" for p, v in peaks.items())
        print(f"  (peak search statuses: {st})")
    return ok_all
