"""A stand-in OIP v2 server for known-answer tests: just enough of the protocol, with controllable
behaviour (fixed service time, a stall, injected errors). Raw asyncio HTTP/1.1 on a `select`-based loop
(microsecond sleep resolution; epoll would round sleeps up to 1 ms). Run as a subprocess:

    python tests/loadgen/standin_server.py --port 0 --service-ms 20   # prints "PORT <n>" when listening

Endpoints: GET /v2, GET /v2/models/{m}, GET /v2/models/{m}/config, POST /v2/models/{m}/infer
(binary extension or JSON; answers a [batch, 10] FP32 output "logits" with a Server-Timing header),
Any-server options (what a real deployment asks of a client): --prefix /p serves everything under /p (other
paths 404, as behind a gateway); --token T answers 401 to requests without `Authorization: Bearer T`;
--require-host H answers 404 to requests whose Host is not H (an ingress routing on Host); --tls-cert/--tls-key
serve https. --model-inputs JSON declares the model's inputs (metadata and config follow); --record-inputs keeps
every inference's decoded inputs for GET /stats/inputs; --validation-mismatch answers logits off by one.
GET /stats also counts `requests` (every request seen), `infers` (inference requests routed) and `refused` (401/404 of the options above).

GET /stats (what the server measured of its own inferences, below), POST /stats/reset.

Servers. By default every connection has its own worker: requests on different connections never wait for
each other (infinitely many servers; a connection's own requests are answered in order). With
--single-server, one global FIFO server serves every inference of every connection, one at a time, each
for --service-ms: Poisson arrivals then make an M/D/1 queue (tests/loadgen/queueing.py computes its truth).
Each connection still answers its own requests in order.

GET /stats: {"count", "service_ms": {...}, "wait_ms": {...}, "sojourn_ms": {...}, "single_server", ...} over
the inferences served since start (or the last POST /stats/reset), each summary {"mean", "min", "p50", "p90",
"p99", "max"}: service = start of service to its end (what this machine realised of --service-ms), wait =
arrival (request fully read) to start of service, sojourn = wait + service (+ a stall, if one hit it).
GET /stats?samples=1 adds the per-request lists "service_samples_ms", "wait_samples_ms" (arrival order of
service), so a test can compute the queueing truth from the service times actually realised here, and
"occupancy_samples_ms": with --single-server, how long each inference held the server (the end of its service,
and of a stall if one hit it, minus the later of its arrival and the previous inference's end: the service plus
the loop's own work between two inferences, which a busy neighbour stretches as it stretches the service);
replayed in order with Poisson arrivals, these are the queue this machine actually ran.
Injected errors are answered at once and are not inferences here (not queued, not in /stats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import selectors
import struct
import sys
import time

perf = time.perf_counter


class State:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.first_infer: float | None = None
        self.count = 0
        self.fast = a.service_ms == 0 and a.stall_s == 0 and not a.single_server
        self.service_s: list[float] = []  # per inference: start of service -> end of service
        self.wait_s: list[float] = []  # per inference: arrival -> start of service
        self.sojourn_s: list[float] = []  # per inference: arrival -> done (wait + service + stall)
        # per inference, --single-server: how long the server was held by it (its end, stall included, minus the
        # later of its arrival and the previous inference's end: the service plus the loop's work between them)
        self.occupancy_s: list[float] = []
        self.last_done = 0.0
        self.fifo: asyncio.Queue | None = None  # --single-server: the one global queue ...
        self.fifo_task: asyncio.Task | None = None  # ... and its server (a reference keeps the task alive)
        self.requests = 0
        self.refused = 0
        self.inputs: list[dict] = []  # --record-inputs

    def record(self, arrived: float, started: float, computed: float, done: float) -> None:
        self.service_s.append(computed - started)
        self.wait_s.append(started - arrived)
        self.sojourn_s.append(done - arrived)
        self.occupancy_s.append(done - max(arrived, self.last_done))  # the one server is held through a stall
        self.last_done = done

    def reset_stats(self) -> None:
        self.service_s, self.wait_s, self.sojourn_s, self.occupancy_s = [], [], [], []

    def stats(self, samples: bool) -> dict:
        out: dict = {
            "count": len(self.service_s),
            "single_server": bool(self.a.single_server),
            "service_ms_configured": self.a.service_ms,
            "precise": bool(self.a.precise),
            "spin_ms": self.a.spin_ms,
            "service_ms": summary_ms(self.service_s),
            "occupancy_ms": summary_ms(self.occupancy_s),
            "wait_ms": summary_ms(self.wait_s),
            "sojourn_ms": summary_ms(self.sojourn_s),
            "requests": self.requests,
            "infers": self.count,
            "refused": self.refused,
        }
        if samples:
            out["service_samples_ms"] = [round(x * 1e3, 6) for x in self.service_s]
            out["wait_samples_ms"] = [round(x * 1e3, 6) for x in self.wait_s]
            out["occupancy_samples_ms"] = [round(x * 1e3, 6) for x in self.occupancy_s]
        return out


def summary_ms(xs: list[float]) -> dict:
    """mean, min, p50, p90, p99, max in ms (nearest-rank percentiles); all None when empty."""
    keys = ("mean", "min", "p50", "p90", "p99", "max")
    if not xs:
        return dict.fromkeys(keys)
    v = sorted(xs)
    n = len(v)

    def pct(q: float) -> float:  # nearest rank: the ceil(q n)-th smallest
        return v[min(n - 1, max(0, math.ceil(q * n - 1e-9) - 1))]

    vals = (sum(v) / n, v[0], pct(0.50), pct(0.90), pct(0.99), v[-1])
    return {k: round(x * 1e3, 6) for k, x in zip(keys, vals)}


def metadata(a: argparse.Namespace) -> dict:
    if a.model_inputs:
        inputs = json.loads(a.model_inputs)
    elif a.bytes_input:
        inputs = [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    else:
        inputs = [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 8, 8]}]
    return {
        "name": a.model,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
    }


def config(a: argparse.Namespace) -> dict:
    if a.model_inputs:
        inp = [
            {
                "name": i["name"],
                "data_type": "TYPE_STRING" if i["datatype"] == "BYTES" else "TYPE_" + i["datatype"],
                "dims": i["shape"][1:] if a.max_batch_size > 0 else i["shape"],
            }
            for i in json.loads(a.model_inputs)
        ]
    elif a.bytes_input:
        inp = [{"name": "image", "data_type": "TYPE_STRING", "dims": [1]}]
    else:
        inp = [{"name": "input", "data_type": "TYPE_FP32", "dims": [3, 8, 8]}]
    return {
        "name": a.model,
        "platform": "onnxruntime_onnx",
        "max_batch_size": a.max_batch_size,
        "input": inp,
        "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [10]}],
        "dynamic_batching": {"max_queue_delay_microseconds": 0, "preferred_batch_size": []},
    }


def response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    reason = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "X")
    h = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    for k, v in (headers or {}).items():
        h.append(f"{k}: {v}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


class Proto(asyncio.Protocol):
    def __init__(self, st: State) -> None:
        self.st = st
        self.buf = bytearray()
        self.pending: tuple | None = None  # a parsed head whose body is still arriving
        self.scanned = 0  # bytes of buf already searched for the end of a head
        self.queue: asyncio.Queue = asyncio.Queue()
        self.worker: asyncio.Task | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        if not self.st.fast:
            self.worker = asyncio.get_event_loop().create_task(self.serve())

    def connection_lost(self, exc):  # type: ignore[override]
        if self.worker:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.pending is None:  # waiting for a head: search only where it can end (not all of a big body)
                end = self.buf.find(b"\r\n\r\n", max(0, self.scanned - 3))
                if end < 0:
                    self.scanned = len(self.buf)
                    return
                head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
                method, path, _ = head[0].split(" ", 2)
                hdrs = {}
                for line in head[1:]:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                self.pending = (method, path, hdrs, end + 4, int(hdrs.get("content-length", "0")))
            method, path, hdrs, start, n = self.pending
            if len(self.buf) < start + n:
                return
            body = bytes(self.buf[start : start + n])
            del self.buf[: start + n]
            self.pending, self.scanned = None, 0
            if self.st.fast:
                if self.transport is not None:
                    self.transport.write(handle_now(self.st, perf(), method, path, hdrs, body))
            else:
                self.queue.put_nowait((perf(), method, path, hdrs, body))

    async def serve(self) -> None:
        while True:
            arrived, method, path, hdrs, body = await self.queue.get()
            out = await handle(self.st, arrived, method, path, hdrs, body)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(out)


async def psleep(a: argparse.Namespace, until: float) -> None:
    d = until - perf()
    if d <= 0:
        return
    if a.precise:
        spin = a.spin_ms / 1000.0
        if d > spin:
            await asyncio.sleep(d - spin)
        while perf() < until:
            pass
    else:
        await asyncio.sleep(d)


def route(st: State, arrived: float, method: str, path: str, hdrs: dict, body: bytes) -> bytes | tuple:
    """Everything but the waiting: a full response, or (request header, batch) for an inference."""
    a = st.a
    js = {"Content-Type": "application/json"}
    st.requests += 1
    if a.prefix:
        if not path.startswith(a.prefix + "/"):
            st.refused += 1
            return response(404, b'{"error": "no route (outside the gateway prefix)"}', js)
        path = path[len(a.prefix) :]
    if not path.startswith("/stats"):
        if a.require_host and hdrs.get("host") != a.require_host:
            st.refused += 1
            return response(404, json.dumps({"error": f"no route for host {hdrs.get('host')!r}"}).encode(), js)
        if a.token and hdrs.get("authorization") != f"Bearer {a.token}":
            st.refused += 1
            return response(401, b'{"error": "missing or wrong bearer token"}', {**js, "WWW-Authenticate": "Bearer"})
    if a.version:
        path = path.replace(f"/v2/models/{a.model}/versions/{a.version}", f"/v2/models/{a.model}")
    if method == "GET" and path == "/stats/inputs":
        return response(200, json.dumps(st.inputs).encode(), js)
    if method == "GET" and path == "/v2":
        return response(
            200, json.dumps({"name": "standin", "version": "0", "extensions": ["binary_tensor_data"]}).encode(), js
        )
    if method == "GET" and path == f"/v2/models/{a.model}":
        return response(200, json.dumps(metadata(a)).encode(), js)
    if method == "GET" and path == f"/v2/models/{a.model}/config":
        return response(200, json.dumps(config(a)).encode(), js)
    if method == "GET" and path in ("/v2/health/ready", "/v2/health/live"):
        return response(200, b"", js)
    if method == "GET" and path.split("?", 1)[0] == "/stats":
        query = path.partition("?")[2]
        return response(200, json.dumps(st.stats(samples="samples=1" in query.split("&"))).encode(), js)
    if method == "POST" and path == "/stats/reset":
        st.reset_stats()
        return response(200, b"{}", js)
    if not (method == "POST" and path == f"/v2/models/{a.model}/infer"):
        return response(404, b'{"error": "not found"}', js)
    if st.first_infer is None:
        st.first_infer = arrived
    st.count += 1
    if a.error_every and st.count % a.error_every == 0:
        return response(a.error_status, b'{"error": "injected"}', js)
    hl = hdrs.get("inference-header-content-length")
    try:
        if a.skim_json and not hl and not a.record_inputs:
            header = skim(body)
        else:
            header = json.loads(body[: int(hl)] if hl else body)
        batch = int(header["inputs"][0]["shape"][0]) if header["inputs"][0]["shape"] else 1
        if a.record_inputs:
            st.inputs.append({"id": header.get("id"), "inputs": decode_inputs(header, body[int(hl) :] if hl else b"")})
    except Exception as e:
        return response(400, json.dumps({"error": f"bad request: {e}"}).encode(), js)
    return header, batch


_ID = re.compile(rb'"id"\s*:\s*"([^"]*)"')
_SHAPE = re.compile(rb'"shape"\s*:\s*\[\s*(\d+)')


def skim(body: bytes) -> dict:
    """--skim-json: the id and the first input's batch dimension of a JSON request without parsing its data (a
    2 MB tensor costs ~20 ms of json.loads, which would load the machine a generator benchmark runs on)."""
    head = body[:4096]
    rid, shape = _ID.search(head), _SHAPE.search(head)
    if shape is None or not body.rstrip().endswith(b"}"):
        raise ValueError("no input shape in the first 4 KB, or a truncated body")
    return {"id": rid.group(1).decode() if rid else "", "inputs": [{"shape": [int(shape.group(1))]}]}


_FMT = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b", "INT16": "h"}
_FMT.update({"INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"})


def decode_inputs(header: dict, raw: bytes) -> dict:
    """{name: {"datatype", "shape", "data": flat list}} of a request (JSON data or binary extension; BYTES elements
    as latin-1 strings)."""
    out = {}
    off = 0
    for inp in header["inputs"]:
        dt, shape = inp["datatype"], inp["shape"]
        size = (inp.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = inp["data"]
            while data and isinstance(data[0], list):
                data = [x for row in data for x in row]
        else:
            chunk = raw[off : off + size]
            off += size
            if dt == "BYTES":
                data, i = [], 0
                while i < len(chunk):
                    (k,) = struct.unpack_from("<I", chunk, i)
                    data.append(chunk[i + 4 : i + 4 + k].decode("latin-1"))
                    i += 4 + k
            else:
                n = size // struct.calcsize(_FMT[dt])
                data = list(struct.unpack(f"<{n}{_FMT[dt]}", chunk))
        out[inp["name"]] = {"datatype": dt, "shape": shape, "data": data}
    return out


def infer_response(st: State, header: dict, batch: int, arrived: float, computed: float, done: float) -> bytes:
    a = st.a
    stall_ms = (done - computed) * 1e3
    total_ms = (done - arrived) * 1e3
    parts = [f"queue;dur={stall_ms:.3f}"]
    if a.bytes_input:
        parts.append("preprocess;dur=0.000")
    parts += [f"compute;dur={(computed - arrived) * 1e3:.3f}", f'batch;desc="{batch}"', f"total;dur={total_ms:.3f}"]
    h = {"Server-Timing": ", ".join(parts)} if not a.no_server_timing else {}
    values = [0.1 * i + (1.0 if a.validation_mismatch else 0.0) for i in range(10)] * batch
    if (header.get("parameters") or {}).get("binary_data_output"):
        raw = struct.pack(f"<{len(values)}f", *values)
        head = json.dumps(
            {
                "model_name": a.model,
                "id": header.get("id", ""),
                "outputs": [
                    {
                        "name": "logits",
                        "datatype": "FP32",
                        "shape": [batch, 10],
                        "parameters": {"binary_data_size": len(raw)},
                    }
                ],
            }
        ).encode()
        h.update({"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"})
        return response(200, head + raw, h)
    h["Content-Type"] = "application/json"
    out = {
        "model_name": a.model,
        "id": header.get("id", ""),
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [batch, 10], "data": values}],
    }
    return response(200, json.dumps(out).encode(), h)


async def infer(st: State, header: dict, batch: int, arrived: float) -> bytes:
    """One inference: service from now (or from arrival, per-connection mode), then a stall if one is due."""
    a = st.a
    # single server: service starts when the server takes the request; per-connection servers keep their
    # historical timing: the service time runs from arrival (no wait by construction)
    started = perf() if a.single_server else arrived
    await psleep(a, started + a.service_ms / 1000.0)
    computed = perf()
    if a.stall_s:
        s0 = st.first_infer + a.stall_after_s
        if s0 <= perf() < s0 + a.stall_s:
            await psleep(a, s0 + a.stall_s)
    done = perf()
    st.record(arrived, started, computed, done)
    return infer_response(st, header, batch, arrived, computed, done)


async def fifo_server(st: State) -> None:
    """--single-server: the one server. Takes inferences in arrival order, serves one at a time."""
    assert st.fifo is not None
    while True:
        header, batch, arrived, fut = await st.fifo.get()
        if fut.cancelled():  # its connection went away
            continue
        try:
            out = await infer(st, header, batch, arrived)
        except Exception as e:
            out = response(500, json.dumps({"error": f"stand-in failure: {e}"}).encode())
        if not fut.cancelled():
            fut.set_result(out)


async def handle(st: State, arrived: float, method: str, path: str, hdrs: dict, body: bytes) -> bytes:
    pre = route(st, arrived, method, path, hdrs, body)
    if isinstance(pre, bytes):
        return pre
    header, batch = pre
    if st.fifo is not None:
        fut = asyncio.get_event_loop().create_future()
        st.fifo.put_nowait((header, batch, arrived, fut))
        return await fut
    return await infer(st, header, batch, arrived)


def handle_now(st: State, arrived: float, method: str, path: str, hdrs: dict, body: bytes) -> bytes:
    """Fast path (no service time, no stall): answer inside data_received."""
    pre = route(st, arrived, method, path, hdrs, body)
    if isinstance(pre, bytes):
        return pre
    now = perf()
    return infer_response(st, pre[0], pre[1], arrived, now, now)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1", help="bind address (a test's own network namespace address)")
    p.add_argument("--model", default="m")
    p.add_argument("--service-ms", type=float, default=0.0)
    p.add_argument("--precise", action="store_true", help="spin the last --spin-ms of each service time")
    p.add_argument("--spin-ms", type=float, default=0.4, help="with --precise: sleep, then spin this long (ms)")
    p.add_argument(
        "--single-server",
        action="store_true",
        help="one global FIFO server for all connections (M/D/1 with Poisson arrivals)",
    )
    p.add_argument("--stall-after-s", type=float, default=0.0, help="stall starts this long after the first infer")
    p.add_argument("--stall-s", type=float, default=0.0)
    p.add_argument("--error-every", type=int, default=0)
    p.add_argument("--error-status", type=int, default=500)
    p.add_argument("--bytes-input", action="store_true")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--no-server-timing", action="store_true")
    p.add_argument("--prefix", default="", help="serve every path under this prefix (e.g. /gw)")
    p.add_argument("--token", default="", help="require Authorization: Bearer TOKEN (401 otherwise)")
    p.add_argument("--require-host", default="", help="404 unless the Host header is this")
    p.add_argument("--tls-cert", default="", help="serve https with this certificate (PEM) ...")
    p.add_argument("--tls-key", default="", help="... and key")
    p.add_argument("--version", default="", help="also answer under /v2/models/M/versions/VERSION")
    p.add_argument(
        "--model-inputs", default="", help='JSON list of inputs, e.g. [{"name":"x","datatype":"INT64","shape":[-1,-1]}]'
    )
    p.add_argument("--record-inputs", action="store_true", help="keep decoded inputs for GET /stats/inputs")
    p.add_argument("--skim-json", action="store_true", help="JSON requests: read id and batch only (benchmarks)")
    p.add_argument("--validation-mismatch", action="store_true", help="answer logits off by one")
    p.add_argument(
        "--loop",
        choices=["select", "epoll"],
        default="select",
        help="select: microsecond sleeps, <= 1024 connections; epoll: many connections, 1 ms sleeps",
    )
    p.add_argument("--max-lifetime-s", type=float, default=300.0, help="exit after this long regardless")
    a = p.parse_args()
    sel = selectors.SelectSelector() if a.loop == "select" else selectors.EpollSelector()
    loop = asyncio.SelectorEventLoop(sel)
    asyncio.set_event_loop(loop)
    st = State(a)
    if a.single_server:
        st.fifo = asyncio.Queue()
        st.fifo_task = loop.create_task(fifo_server(st))
    tls = None
    if a.tls_cert:
        import ssl

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key or None)
    server = loop.run_until_complete(loop.create_server(lambda: Proto(st), a.host, a.port, backlog=1024, ssl=tls))
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop.call_later(a.max_lifetime_s, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
