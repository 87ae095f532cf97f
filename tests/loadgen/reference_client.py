"""A plain reference client: blocking `http.client`, one keep-alive connection, one request at a time.

Known-answer tests judge the generator against what this client measures *in the same test, on the same
machine, against the same stand-in*, instead of against absolute figures tuned on one CPU: a round trip on
loopback costs ~0.5 ms on one VM and ~3 ms on another (idle CPUs wake slowly), and every client pays it.

It sends the kind of request the generator sends by default: an OIP v2 binary-extension inference whose
inputs follow the model's metadata (GET /v2/models/{m}, plus /config when offered), batch 1, seeded data.
No gevent/locust here: safe in the pytest process.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np

perf = time.perf_counter

_DTYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def quantile(samples: list[float] | np.ndarray, q: float) -> float:
    """Nearest-rank q-quantile (the ceil(q n)-th smallest), as HdrHistogram reports percentiles."""
    v = np.sort(np.asarray(samples, dtype=np.float64))
    if v.size == 0:
        raise ValueError("no samples")
    return float(v[min(v.size - 1, max(0, int(np.ceil(q * v.size - 1e-9)) - 1))])


@dataclass
class Reference:
    """What the reference client measured; all figures in ms."""

    latency_ms: list[float]  # per success: from the intended send instant to the end of the response
    lateness_ms: list[float]  # per success: actual send - intended instant (0 back-to-back; sleep overshoot paced)
    errors: dict[str, int] = field(default_factory=dict)  # non-200 answers, by status (not in latency_ms)

    def q(self, q: float) -> float:
        return quantile(self.latency_ms, q)

    @property
    def p10(self) -> float:
        return self.q(0.10)

    @property
    def p50(self) -> float:
        return self.q(0.50)

    @property
    def p90(self) -> float:
        return self.q(0.90)

    @property
    def spread(self) -> float:
        """p50 - p10: how much round trips on this machine scatter below the median."""
        return self.p50 - self.p10

    def describe(self) -> str:
        return (
            f"reference client: n={len(self.latency_ms)} min={min(self.latency_ms):.3f} p10={self.p10:.3f} "
            f"p50={self.p50:.3f} p90={self.p90:.3f} max={max(self.latency_ms):.3f} ms, "
            f"lateness p50={quantile(self.lateness_ms, 0.5):.3f} ms, errors={self.errors}"
        )


def _get_json(conn: http.client.HTTPConnection, path: str) -> dict | None:
    conn.request("GET", path, headers={"Accept": "application/json"})
    r = conn.getresponse()
    body = r.read()
    return json.loads(body) if r.status == 200 else None


def infer_request(metadata: dict, config: dict | None, seed: int = 0) -> tuple[bytes, dict[str, str]]:
    """One OIP v2 binary-extension request for batch 1 (concrete shapes from metadata and config)."""
    rng = np.random.default_rng(seed)
    dims = {i.get("name"): i.get("dims") for i in (config or {}).get("input", [])}
    batched = bool((config or {}).get("max_batch_size"))
    inputs, blobs = [], []
    for inp in metadata["inputs"]:
        shape = [int(d) for d in inp["shape"]]
        if batched or (shape and shape[0] == -1):
            rest = shape[1:]
            cfg = dims.get(inp["name"])
            if cfg and len(cfg) == len(rest):
                rest = [r if r != -1 else int(d) for r, d in zip(rest, cfg)]
            shape = [1] + rest
        if any(d < 0 for d in shape):
            raise ValueError(f"input {inp['name']!r}: variable shape {shape}")
        dt = _DTYPES.get(inp["datatype"])
        if dt is None:
            raise ValueError(f"input {inp['name']!r}: datatype {inp['datatype']} not supported by the reference client")
        raw = rng.random(shape).astype(np.dtype(dt)).tobytes()
        blobs.append(raw)
        inputs.append(
            {
                "name": inp["name"],
                "shape": shape,
                "datatype": inp["datatype"],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
    header = json.dumps({"id": "reference", "inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def _one_client(
    url: str,
    model: str,
    n: int,
    pace_s: float,
    warmup: int,
    timeout_s: float,
    max_requests: int | None,
    start: threading.Barrier | None,
) -> Reference:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout_s)
    try:
        meta = _get_json(conn, f"/v2/models/{model}")
        if meta is None:
            raise RuntimeError(f"reference client: no metadata for model {model!r} at {url}")
        cfg = _get_json(conn, f"/v2/models/{model}/config")
        body, headers = infer_request(meta, cfg)
        path = f"/v2/models/{model}/infer"
        lat: list[float] = []
        late: list[float] = []
        errors: dict[str, int] = {}
        limit = max_requests if max_requests is not None else 4 * (n + warmup) + 10
        sent = 0
        if start is not None:
            start.wait(timeout_s)
        while len(lat) < n:
            if sent >= limit:
                raise RuntimeError(
                    f"reference client: only {len(lat)} of {n} successes in {sent} requests (errors {errors})"
                )
            intended = perf() + pace_s
            if pace_s > 0:
                d = intended - perf()
                if d > 0:
                    time.sleep(d)
            t_send = perf()
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            t_end = perf()
            sent += 1
            if sent <= warmup:
                continue
            if r.status != 200:
                errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                continue
            t0 = intended if pace_s > 0 else t_send
            lat.append((t_end - t0) * 1e3)
            late.append((t_send - t0) * 1e3)
        return Reference(lat, late, errors)
    finally:
        conn.close()


def measure(
    url: str,
    model: str = "m",
    n: int = 25,
    *,
    pace_s: float = 0.0,
    warmup: int = 3,
    concurrency: int = 1,
    timeout_s: float = 10.0,
    max_requests: int | None = None,
) -> Reference:
    """Send inferences one at a time until `n` succeed (after `warmup` unrecorded ones); return the latencies.

    pace_s = 0: back to back (a closed-loop user, no think time); latency = round trip.
    pace_s > 0: after each answer, sleep until an intended instant pace_s later and send; latency runs from
    that instant (as an open-loop generator's runs from its schedule), so it includes the sleep's overshoot
    (an idle CPU's wake-up), and the server has been idle for ~pace_s before each request.
    concurrency = k > 1: k such clients at once, each in its own thread with its own connection, started
    together, ceil(n / k) successes each, latencies pooled: the plain equivalent of k closed-loop users in
    one process (two answers that arrive together are handled one after the other, as in the generator).
    Non-200 answers (e.g. injected errors) are counted by status and excluded from latency.
    """
    if concurrency <= 1:
        return _one_client(url, model, n, pace_s, warmup, timeout_s, max_requests, None)
    per = -(-n // concurrency)
    start = threading.Barrier(concurrency)
    results: list[Reference | BaseException] = [RuntimeError("reference client thread did not finish")] * concurrency

    def run(i: int) -> None:
        try:
            results[i] = _one_client(url, model, per, pace_s, warmup, timeout_s, max_requests, start)
        except BaseException as e:
            start.abort()
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = Reference([], [], {})
    for res in results:
        if isinstance(res, BaseException):
            raise res
        out.latency_ms += res.latency_ms
        out.lateness_ms += res.lateness_ms
        for k, v in res.errors.items():
            out.errors[k] = out.errors.get(k, 0) + v
    return out
