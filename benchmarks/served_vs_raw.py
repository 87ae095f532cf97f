#!/usr/bin/env python3
"""Served vs raw: how much of ONNX Runtime's in-process speed survives HTTP + batching, per model, in one run.

For each model, raw and served are measured side by side in the same run, in alternating short segments
(`--rounds`), so drift on a shared machine hits both alike:

  throughput  raw: in-process ONNX Runtime, 1 instance, the server's thread count, best of batch 1/8/16 (items/s).
              served: `python -m server` on loopback, batch-1 binary-tensor requests (OIP binary extension) from an
              aiohttp client keeping 2 x max_batch_size requests in flight; the dynamic batcher forms the batches.
              Rate from the completion times (`burst_rate`: from the end of the first batch's answers to the last
              answer), over windows of at least 12 batches: a fixed-window count is off by up to a batch per window.
  batch-1     one closed-loop client (`LeanClient`: a raw socket, one keep-alive connection, little CPU of its own),
              in two regimes, each compared with raw in the same regime: back-to-back (next request as soon as the
              answer arrives) and after an idle gap (`--idle-gap-ms`, default 50: idle CPUs and parked ORT threads wake
              slowly; raw and served calls alternate one by one, `--idle-calls` each). overhead = served p50 - raw p50.
              Also shown: raw woken from idle by another core (the wake-up a server pays and a direct call does not),
              and per request the round trip minus its own Server-Timing compute (immune to the drift of compute time
              between segments, which for ResNet-50 is larger than the overhead itself).
  server CPU  CPU time of every server thread (/proc/<pid>/task/*/schedstat) over the back-to-back segment / requests,
              and the same minus raw's CPU per inference (process CPU over the raw back-to-back segment): the
              server's own cost per request beside ONNX Runtime. The event-loop thread's share is shown too. And
              saturated (during the throughput windows): the event-loop thread's CPU per answer, which is where the
              server's per-request work runs (HTTP, decode, validation, encode, metrics); ONNX Runtime and the
              batcher's per-batch work run on the instance threads. The subtraction-based figures move by +-1 ms
              when compute time drifts between segments; the event-loop figure does not depend on compute.

--separate-cores: the server process and its ORT threads on CPU 0 with intra_op_threads=1, the client on CPU 1;
raw measured with 1 thread on CPU 0. Without it, nothing is pinned and both use the machine's default threads.

Targets (printed as PASS/MISS, never asserted in tests): served/raw >= 0.85 MobileNetV2, >= 0.97 ResNet-50 (shared);
>= 0.90 / >= 0.98 with --separate-cores; batch-1 p50 overhead <= 1.0 ms in both regimes; server CPU per request
beside compute <= 0.5 ms, checked back to back (all threads minus raw) and saturated (event-loop thread).

Usage: python benchmarks/served_vs_raw.py [--models resnet50,mobilenet_v2] [--duration 12] [--separate-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen.baseline.serverproc import ServerProcess
from loadgen.engine.payloads import fetch_model_info
from loadgen.engine.servertiming import parse_server_timing
from server.cpus import available_cpus
from server.protocol import encode_request
from server.repository import ensure_built, load_repository
from server.runtime import OnnxInstance, random_inputs

MODELS = Path(__file__).resolve().parents[1] / "models"
TARGET_RATIO = {False: {"resnet50": 0.97, "mobilenet_v2": 0.85}, True: {"resnet50": 0.98, "mobilenet_v2": 0.90}}
TARGET_OVERHEAD_MS = 1.0
TARGET_CPU_MS = 0.5


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def thread_cpu_s(pid: int) -> tuple[float, float]:
    """(all threads, main thread) CPU seconds of process `pid`, from the scheduler's exact run times."""
    total = main = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += ns / 1e9
        if int(tid) == pid:
            main = ns / 1e9
    return total, main


def p50(xs: list[float]) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, 50)) if xs else float("nan")


# ---------------------------------------------------------------------------------------------------- raw


class Raw:
    def __init__(self, path: Path, threads: int, batches: list[int]) -> None:
        self.inst = OnnxInstance(path, threads)
        self.inputs = {b: random_inputs(self.inst.inputs, b, seed=b) for b in batches}
        for x in self.inputs.values():
            self.inst.run(x)
        self.items: dict[int, list[float]] = {b: [0, 0.0] for b in batches}
        self.b2b: list[float] = []
        self.idle: list[float] = []
        self.cpu_s = 0.0
        self.cpu_n = 0

    def throughput(self, duration_s: float) -> None:
        for b, x in self.inputs.items():
            end = time.perf_counter() + duration_s / len(self.inputs)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() < end:
                self.inst.run(x)
                n += b
            self.items[b][0] += n
            self.items[b][1] += time.perf_counter() - t0

    def back_to_back(self, duration_s: float) -> None:
        x = self.inputs[1]
        end = time.perf_counter() + duration_s
        c0 = time.process_time()
        n = 0
        while time.perf_counter() < end:
            s = time.perf_counter()
            self.inst.run(x)
            self.b2b.append(time.perf_counter() - s)
            n += 1
        self.cpu_s += time.process_time() - c0
        self.cpu_n += n

    def after_idle(self, calls: int, gap_s: float) -> None:
        x = self.inputs[1]
        for _ in range(calls):
            time.sleep(gap_s)
            s = time.perf_counter()
            self.inst.run(x)
            self.idle.append(time.perf_counter() - s)

    def start_woken(self, cpus: set[int]) -> None:
        """A thread on `cpus` that runs one batch-1 inference each time a byte arrives on a pipe and answers on
        another: raw ONNX Runtime woken from idle by an event from another core, as a server is by a request (a
        direct call after `sleep` is timed only once its thread is already awake)."""
        self.req_r, self.req_w = os.pipe()
        self.resp_r, self.resp_w = os.pipe()
        x = self.inputs[1]

        def serve() -> None:
            os.sched_setaffinity(0, cpus)
            while os.read(self.req_r, 1):
                self.inst.run(x)
                os.write(self.resp_w, b".")

        threading.Thread(target=serve, daemon=True, name="raw-woken").start()
        self.woken: list[float] = []

    def after_idle_woken(self, gap_s: float) -> None:
        time.sleep(gap_s)
        s = time.perf_counter()
        os.write(self.req_w, b".")
        os.read(self.resp_r, 1)
        self.woken.append(time.perf_counter() - s)

    def best(self) -> tuple[float, dict[int, float]]:
        rates = {b: n / t for b, (n, t) in self.items.items() if t > 0}
        return max(rates.values()), rates


# ---------------------------------------------------------------------------------------------------- served


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client for the batch-1 measurements. The request (head and body) is encoded
    once and sent with one `sendall`; the response is read into a preallocated buffer and framed by its
    Content-Length. Like perf_analyzer's C++ client it spends little CPU of its own, so the overhead measured is
    the server's and the loopback transfer's, not the client library's: http.client spent ~0.65 ms of CPU per
    600 KB request here (building the request, a copy of the body, parsing headers with the email package)."""

    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict) -> None:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.addr = (host, port)
        self.request = head.encode("latin-1") + body
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.sock: socket.socket | None = None

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection(self.addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one(self) -> tuple[float, str]:
        """One request: (round trip in seconds, its Server-Timing header)."""
        sock, buf, view = self.sock, self.buf, self.view
        assert sock is not None
        s = time.perf_counter()
        sock.sendall(self.request)
        n = 0
        while (end := buf.find(b"\r\n\r\n", 0, n)) < 0:
            k = sock.recv_into(view[n:])
            if not k:
                raise ConnectionError("server closed the connection")
            n += k
        total = None
        timing = ""
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                total = end + 4 + int(value)
            elif name == "server-timing":
                timing = value.strip()
        assert total is not None and total <= len(buf)
        while n < total:
            k = sock.recv_into(view[n:total])
            if not k:
                raise ConnectionError("server closed the connection")
            n += k
        e = time.perf_counter()
        status = int(lines[0].split()[1])
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {bytes(buf[end + 4 : total])[:200]!r}")
        return e - s, timing

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Served:
    """The served side over one protocol: REST (OIP binary extension, LeanClient, aiohttp) or gRPC (ModelInfer with
    raw_input_contents, benchmarks/_grpc_clients.py), same measurements."""

    def __init__(self, srv: ServerProcess, model: str, body: bytes, headers: dict, protocol: str = "rest") -> None:
        self.srv, self.path, self.body, self.headers = srv, f"/v2/models/{model}/infer", body, headers
        self.protocol = protocol
        if protocol == "grpc":
            from _grpc_clients import GrpcLean

            self.client: Any = GrpcLean(srv.grpc_target, body)
        else:
            self.client = LeanClient("127.0.0.1", srv.port, self.path, body, headers)
        self.b2b: list[float] = []
        self.idle: list[float] = []
        self.b2b_beside: list[float] = []  # per request: round trip - its own Server-Timing compute
        self.idle_beside: list[float] = []
        self.cpu_s = self.main_s = self.compute_s = self.client_s = 0.0
        self.n = 0
        self.sat_rps: list[float] = []
        self.sat_cpu_s = self.sat_main_s = 0.0  # all threads / event-loop thread CPU while saturated, `sat_n` answers
        self.sat_n = 0
        self.sat_errors = 0
        self.fresh(20)

    def fresh(self, warmup: int = 3) -> None:
        """A new keep-alive connection (the server closes idle ones after 5 s), warmed by a few requests."""
        self.client.connect()
        for _ in range(warmup):
            self.one()

    def one(self) -> tuple[float, str]:
        return self.client.one()

    def back_to_back(self, duration_s: float) -> None:
        self.fresh()
        pid = self.srv.proc.pid
        c0, m0 = thread_cpu_s(pid)
        k0 = time.process_time()
        end = time.perf_counter() + duration_s
        n, compute = 0, 0.0
        while time.perf_counter() < end:
            dt, st = self.one()
            self.b2b.append(dt)
            c = parse_server_timing(st).durations_ms.get("compute") or 0.0
            compute += c
            self.b2b_beside.append(dt - c / 1e3)
            n += 1
        c1, m1 = thread_cpu_s(pid)
        self.client_s += time.process_time() - k0
        self.cpu_s += c1 - c0
        self.main_s += m1 - m0
        self.compute_s += compute / 1e3
        self.n += n

    def after_idle(self, calls: int, gap_s: float) -> None:
        for _ in range(calls):
            time.sleep(gap_s)
            dt, st = self.one()
            self.idle.append(dt)
            self.idle_beside.append(dt - (parse_server_timing(st).durations_ms.get("compute") or 0.0) / 1e3)

    def saturate(self, concurrency: int, duration_s: float, warmup_s: float) -> None:
        c0, m0 = thread_cpu_s(self.srv.proc.pid)
        if self.protocol == "grpc":
            from _grpc_clients import drive_grpc

            r = asyncio.run(drive_grpc(self.srv.grpc_target, self.body, concurrency, duration_s, warmup_s, burst_rate))
        else:
            r = asyncio.run(
                drive(f"{self.srv.url}{self.path}", self.body, self.headers, concurrency, duration_s, warmup_s)
            )
        c1, m1 = thread_cpu_s(self.srv.proc.pid)
        self.sat_rps.append(r["rps"])
        self.sat_errors += r["errors"]
        self.sat_cpu_s += c1 - c0
        self.sat_main_s += m1 - m0
        self.sat_n += r["answered"]

    def close(self) -> None:
        self.client.close()


def burst_rate(times: list[float], gap_s: float = 0.002) -> float | None:
    """Completions per second from completion times, exact for a batching server whose answers come in bursts (one
    per batch): from the end of the first burst to the last completion, counting every completion after that first
    burst. Counting completions in a fixed window instead is off by up to one batch per window (ResNet-50: 16
    answers every 1.25 s). None when there are fewer than two bursts."""
    ts = sorted(times)
    for i in range(len(ts) - 1):
        if ts[i + 1] - ts[i] > gap_s:
            span = ts[-1] - ts[i]
            return (len(ts) - 1 - i) / span if span > 0 else None
    return None


async def drive(url: str, body: bytes, headers: dict, concurrency: int, duration_s: float, warmup_s: float) -> dict:
    """Keep `concurrency` requests in flight; throughput = `burst_rate` of the completions inside the window."""
    import aiohttp

    done: list[float] = []
    errors = answered = 0
    t0 = time.perf_counter()
    t_measure, t_end = t0 + warmup_s, t0 + warmup_s + duration_s
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as session:

        async def worker() -> None:
            nonlocal errors, answered
            while time.perf_counter() < t_end:
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
                answered += 1
                e = time.perf_counter()
                if t_measure <= e < t_end:
                    if ok:
                        done.append(e)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = burst_rate(done)
    return {"rps": rate if rate is not None else len(done) / duration_s, "errors": errors, "answered": answered}


def oip_body(name: str, arr: np.ndarray, output: str) -> tuple[bytes, dict]:
    body, header_length = encode_request(
        [(name, "FP32", arr)], binary=True, outputs=[{"name": output, "parameters": {"binary_data": True}}]
    )
    return body, {"Inference-Header-Content-Length": str(header_length), "Content-Type": "application/octet-stream"}


# ---------------------------------------------------------------------------------------------------- main


def run_model(model: str, args, separate: bool, all_cpus: set[int]) -> dict:
    cfg = load_repository(MODELS, [model])[model]
    ensure_built(cfg)
    server_cpus, client_cpus = ({0}, {1}) if separate else (all_cpus, all_cpus)
    threads = 1 if separate else cfg.threads_per_instance()
    batches = [b for b in (1, 8, 16) if b <= cfg.max_batch_size]
    seg = args.duration / args.rounds
    os.sched_setaffinity(0, server_cpus)  # the raw session and the server inherit CPU 0 (separate cores)
    raw = Raw(cfg.model_path, threads, batches)
    raw.start_woken(server_cpus)
    overrides = {"instances": {"intra_op_threads": threads}} if separate else None
    srv = ServerProcess(MODELS, model_names=[model], overrides=overrides, grpc=True).start()
    protocols = ["rest", "grpc"] if args.grpc else ["rest"]
    try:
        os.sched_setaffinity(0, client_cpus)
        meta = fetch_model_info(srv.url, model)["metadata"]
        inp, out = meta["inputs"][0], meta["outputs"][0]
        shape = [1] + [d if d > 0 else 1 for d in inp["shape"][1:]]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        body, headers = oip_body(inp["name"], x, out["name"])
        served = {"rest": Served(srv, model, body, headers)}
        if args.grpc:
            from _grpc_clients import grpc_body

            served["grpc"] = Served(srv, model, grpc_body(model, inp["name"], x, out["name"]), {}, "grpc")
        conc = 2 * cfg.max_batch_size
        for _ in range(args.rounds):  # alternate raw and served (each protocol), segment by segment
            os.sched_setaffinity(0, server_cpus)
            raw.back_to_back(seg)
            os.sched_setaffinity(0, client_cpus)
            for p in protocols:
                served[p].back_to_back(seg)
                served[p].fresh()
            for _ in range(args.idle_calls // args.rounds):  # call by call, so drift hits raw and served alike
                os.sched_setaffinity(0, server_cpus)
                raw.after_idle(1, args.idle_gap_ms / 1e3)
                os.sched_setaffinity(0, client_cpus)
                for p in protocols:
                    served[p].after_idle(1, args.idle_gap_ms / 1e3)
                raw.after_idle_woken(args.idle_gap_ms / 1e3)
            os.sched_setaffinity(0, server_cpus)
            raw.throughput(seg)
            os.sched_setaffinity(0, client_cpus)
            batch_s = cfg.max_batch_size / raw.best()[0]  # one full batch at raw speed
            for p in protocols:  # >= 12 batches per window
                served[p].saturate(conc, max(seg, 12 * batch_s), max(1.0, 2 * batch_s))
        for sv in served.values():
            sv.close()
        peaks = open_loop_peaks(srv, model, args) if args.peak_slo_ms else {}
    finally:
        srv.stop()
        os.sched_setaffinity(0, all_cpus)
    r = figures(model, threads, raw, served["rest"], conc, separate)
    r["protocols"] = {p: figures(model, threads, raw, served[p], conc, separate) for p in protocols}
    r["peaks"] = peaks
    return r


def open_loop_peaks(srv: ServerProcess, model: str, args) -> dict[str, dict]:
    """`inferload peak` at p99 <= --peak-slo-ms over each protocol, one after the other on the same server."""
    import json
    import subprocess
    import tempfile

    out: dict[str, dict] = {}
    for p in ["rest", "grpc"] if args.grpc else ["rest"]:
        target = f"grpc://{srv.grpc_target}" if p == "grpc" else srv.url
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "loadgen.cli", "peak", "--protocol", "grpc" if p == "grpc" else "oip",
                   "--target", target, "--model", model, "--slo-p99-ms", f"{args.peak_slo_ms:g}",
                   "--server-metrics", f"{srv.url}/metrics", "--out", tmp, "--max-probes", str(args.peak_probes)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
            try:
                doc = json.loads((Path(tmp) / "peak.json").read_text())
                out[p] = {"peak_rps": doc.get("peak_rps"), "status": doc.get("status")}
            except (OSError, ValueError):
                out[p] = {"peak_rps": None, "status": f"failed: {proc.stderr[-300:]}"}
    return out


def figures(model: str, threads: int, raw: Raw, served: Served, conc: int, separate: bool) -> dict:
    raw_best, raw_rates = raw.best()
    sat = float(np.mean(served.sat_rps))
    raw_cpu_ms = raw.cpu_s / raw.cpu_n * 1e3
    cpu_ms = served.cpu_s / served.n * 1e3
    return {
        "model": model,
        "threads": threads,
        "raw_best": raw_best,
        "raw_rates": raw_rates,
        "served_rps": sat,
        "ratio": sat / raw_best,
        "sat_errors": served.sat_errors,
        "concurrency": conc,
        "raw_b2b": p50(raw.b2b),
        "served_b2b": p50(served.b2b),
        "n_b2b": (len(raw.b2b), len(served.b2b)),
        "raw_idle": p50(raw.idle),
        "raw_woken": p50(raw.woken),
        "sat_main_ms": served.sat_main_s / max(1, served.sat_n) * 1e3,
        "sat_cpu_ms": served.sat_cpu_s / max(1, served.sat_n) * 1e3,
        # one ORT thread on one core: raw's CPU per item = its wall time per item at its best batch size
        "sat_own_ms": served.sat_cpu_s / max(1, served.sat_n) * 1e3 - 1e3 / raw_best if separate else None,
        "beside_b2b": p50(served.b2b_beside),
        "beside_idle": p50(served.idle_beside),
        "served_idle": p50(served.idle),
        "n_idle": len(served.idle),
        "cpu_ms": cpu_ms,
        "raw_cpu_ms": raw_cpu_ms,
        "own_cpu_ms": cpu_ms - raw_cpu_ms,
        "main_ms": served.main_s / served.n * 1e3,
        "compute_ms": served.compute_s / served.n * 1e3,
        "client_ms": served.client_s / served.n * 1e3,
    }


def report(r: dict, separate: bool, idle_gap_ms: float) -> list[bool]:
    target = TARGET_RATIO[separate].get(r["model"], TARGET_RATIO[separate]["mobilenet_v2"])
    ob, oi = r["served_b2b"] - r["raw_b2b"], r["served_idle"] - r["raw_idle"]
    checks = [
        r["ratio"] >= target,
        ob <= TARGET_OVERHEAD_MS,
        oi <= TARGET_OVERHEAD_MS,
        r["own_cpu_ms"] <= TARGET_CPU_MS,
    ]
    checks.append(r["sat_main_ms"] <= TARGET_CPU_MS)
    rates = ", ".join(f"b{b} {v:.1f}" for b, v in r["raw_rates"].items())
    print(f"\n{r['model']} ({r['threads']} ORT thread{'s' if r['threads'] > 1 else ''})")
    print(
        f"  throughput       raw best {r['raw_best']:.1f} items/s ({rates}) | served {r['served_rps']:.1f} req/s "
        f"(batch-1 requests, {r['concurrency']} in flight, errors {r['sat_errors']})"
    )
    print(f"                   served/raw {r['ratio']:.3f}  target >= {target}  {verdict(checks[0])}")
    print(
        f"  batch-1 b2b      raw p50 {r['raw_b2b']:.2f} ms | served p50 {r['served_b2b']:.2f} ms  overhead {ob:+.2f} ms  "
        f"target <= {TARGET_OVERHEAD_MS}  {verdict(checks[1])}   (n {r['n_b2b'][0]}/{r['n_b2b'][1]})"
    )
    print(
        f"  after {idle_gap_ms:g} ms idle raw p50 {r['raw_idle']:.2f} ms | served p50 {r['served_idle']:.2f} ms  "
        f"overhead {oi:+.2f} ms  target <= {TARGET_OVERHEAD_MS}  {verdict(checks[2])}   (n {r['n_idle']} each)"
    )
    print(
        f"                   raw woken by another core p50 {r['raw_woken']:.2f} ms (the wake-up a server pays and a "
        f"direct call does not) | served - woken {r['served_idle'] - r['raw_woken']:+.2f} ms"
    )
    print(
        f"  beside compute   per request, round trip - its own Server-Timing compute, p50: back to back "
        f"{r['beside_b2b']:.2f} ms, after idle {r['beside_idle']:.2f} ms (immune to compute drift between segments)"
    )
    print(
        f"  server CPU/req   {r['cpu_ms']:.2f} ms (all threads, b2b batch 1) - raw {r['raw_cpu_ms']:.2f} ms per inference "
        f"= {r['own_cpu_ms']:.2f} ms beside compute  target <= {TARGET_CPU_MS}  {verdict(checks[3])}; "
        f"event-loop thread {r['main_ms']:.2f} ms (saturated: {r['sat_main_ms']:.2f} ms); "
        f"Server-Timing compute {r['compute_ms']:.2f} ms; "
        f"client CPU/req {r['client_ms']:.2f} ms"
    )
    own = "" if r["sat_own_ms"] is None else f" - raw {1e3 / r['raw_best']:.2f} ms per item = {r['sat_own_ms']:.2f} ms"
    print(
        f"  saturated CPU    event-loop thread (HTTP, decode, encode, metrics) {r['sat_main_ms']:.2f} ms per answer  "
        f"target <= {TARGET_CPU_MS}  {verdict(checks[4])}; all threads {r['sat_cpu_ms']:.2f} ms{own} (the subtraction "
        "moves by +-1 ms with compute drift)"
    )
    return checks


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers we started (finally blocks)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--duration", type=float, default=12.0, help="seconds per measurement kind, split over the rounds")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/served segments per measurement")
    ap.add_argument("--idle-gap-ms", type=float, default=50.0)
    ap.add_argument("--idle-calls", type=int, default=150, help="after-idle calls per side, paired raw/served")
    ap.add_argument(
        "--separate-cores",
        action="store_true",
        help="server + 1 ORT thread on CPU 0, client on CPU 1; raw with 1 thread on CPU 0",
    )
    ap.add_argument("--no-grpc", dest="grpc", action="store_false", help="REST only (default: REST and gRPC)")
    ap.add_argument(
        "--peak-slo-ms",
        type=float,
        default=50.0,
        help="also `inferload peak` at this p99 bound (ms) over each protocol; 0: skip",
    )
    ap.add_argument("--peak-probes", type=int, default=12, help="--max-probes of each peak search")
    args = ap.parse_args()
    all_cpus = os.sched_getaffinity(0)
    if args.separate_cores and not {0, 1} <= all_cpus:
        print("--separate-cores needs CPUs 0 and 1 in this process's affinity", file=sys.stderr)
        return 2
    mode = (
        "separate cores: server and its ORT thread on CPU 0 (intra_op_threads=1), client on CPU 1, raw 1 thread "
        "on CPU 0"
        if args.separate_cores
        else "shared cores: nothing pinned, default threads"
    )
    print(
        f"served_vs_raw: {available_cpus()} usable CPUs; {mode}; {args.duration:g} s per measurement in "
        f"{args.rounds} alternating rounds"
    )
    results = [run_model(m, args, args.separate_cores, all_cpus) for m in args.models.split(",")]
    missed = []
    for r in results:
        checks = report(r, args.separate_cores, args.idle_gap_ms)
        if not all(checks):
            missed.append(r["model"])
        if "grpc" in r["protocols"]:
            from _grpc_clients import compare_protocols

            if not compare_protocols(r):
                missed.append(f"{r['model']} (gRPC vs REST)")
    print("\nsummary: " + ("all targets met" if not missed else f"targets missed for {', '.join(missed)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
