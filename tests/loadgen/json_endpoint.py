"""A stand-in non-OIP JSON endpoint (a hand-written FastAPI/LitServe-like /predict) for the http-json e2e tests.

    python tests/loadgen/json_endpoint.py --port 0 --shape 1,3,8,8 [--token T] [--path /predict]
    # prints "PORT <n>" when listening

POST {path} with a JSON body {"id": "...", "input": <nested list of exactly --shape>} answers 200
{"id": <the id>, "output": [[0.1, 0.9]], "label": "cat"}; a body that does not parse, lacks "input", or whose "input"
is not a nested list of that shape answers 500 {"error": "..."}. With --token T, a request without
`Authorization: Bearer T` answers 401. With --drift-every K, every K-th good request after the first is answered 200
{"id": ..., "label": "cat"} without "output" (a server whose answers change under load). Other paths 404.
GET /stats (never refused): {"requests": every request seen on {path}, "ok", "bad", "refused", "ids": distinct ids}.
Stdlib only (http.server, HTTP/1.1 keep-alive, a thread per connection).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCK = threading.Lock()
STATS: dict[str, Any] = {"requests": 0, "ok": 0, "bad": 0, "refused": 0}
IDS: set[str] = set()


def shape_problem(value: Any, shape: list[int], where: str = "input") -> str | None:
    """None when `value` is a nested list of exactly `shape` with numbers at the leaves."""
    if not shape:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{where} is {type(value).__name__}, not a number"
    if not isinstance(value, list) or len(value) != shape[0]:
        got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
        return f"{where} is {got}, expected a list of {shape[0]}"
    for i, v in enumerate(value):
        problem = shape_problem(v, shape[1:], f"{where}[{i}]")
        if problem:
            return problem
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "json-endpoint/1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with LOCK:
                self._send(200, {**STATS, "ids": len(IDS)})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        a = self.server.args  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != a.path:
            self._send(404, {"error": f"no route {self.path}"})
            return
        with LOCK:
            STATS["requests"] += 1
        if a.token and self.headers.get("Authorization") != f"Bearer {a.token}":
            with LOCK:
                STATS["refused"] += 1
            self._send(401, {"error": "unauthorized"})
            return
        try:
            doc = json.loads(raw)
            problem = shape_problem(doc["input"], a.shape) if isinstance(doc, dict) and "input" in doc else "no input"
        except ValueError as e:
            doc, problem = None, f"not JSON: {e}"
        with LOCK:
            STATS["bad" if problem else "ok"] += 1
            if not problem and isinstance(doc.get("id"), str):
                IDS.add(doc["id"])
            n = STATS["ok"]
        if problem:
            self._send(500, {"error": problem})
        elif a.drift_every and n > 1 and n % a.drift_every == 0:
            self._send(200, {"id": doc.get("id"), "label": "cat"})
        else:
            self._send(200, {"id": doc.get("id"), "output": [[0.1, 0.9]], "label": "cat"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/predict")
    p.add_argument("--shape", default="1,3,8,8")
    p.add_argument("--token", default=None)
    p.add_argument("--drift-every", type=int, default=0)
    p.add_argument("--max-lifetime-s", type=float, default=120.0)
    a = p.parse_args()
    a.shape = [int(d) for d in a.shape.split(",") if d]
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    server.args = a  # type: ignore[attr-defined]
    timer = threading.Timer(a.max_lifetime_s, server.shutdown)
    timer.daemon = True
    timer.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
