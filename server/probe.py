"""The canned connections of the start-up self-check (server/selfcheck.py): requests fed through a protocol class
of server/httpproto.py on a fake transport, in a private event loop on a thread of its own, no socket. The ASGI app,
the service and the batcher behind them are stand-ins: the check is about uvicorn's and httptools' internals, not
about models.

Scenarios (each layer's, on the class that will serve): a head streamed past the limit (431 and a half-close); a GET
and an infer POST on the ASGI path (its body whole in one message, the reason for the ASGI path in its scope); on the
fast path an infer request with its body in two reads, a GET behind it (a fresh parser), a refusal at admission with
its body discarded, a graceful shutdown while queued and a client gone while queued. Waits count loop turns, not
time. Any exception, also one raised in a loop callback, or any other answer fails the check.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from server.dispatch import REASON_KEY
from server.metrics import HttpPaths

# what the probe connections log (uvicorn's warnings about them, their 431) goes nowhere: a logger of our own, outside
# logging's registry, so that no logging configuration (uvicorn's dictConfig re-enables existing loggers) reaches it
_SILENT = logging.Logger("inferload.selfcheck", logging.CRITICAL + 1)
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False
_SILENT.disabled = True
PROBE_HEAD_LIMIT = 1024  # the head limit of the canned connections (the real one can be up to 64 MiB)

# attributes the layers use of a protocol instance (after connection_made and a request's headers) and of a cycle
PROTOCOL_ATTRS = {
    "head_limit": ("transport", "flow", "loop", "cycle", "server_state", "parser"),
    "whole_body": ("scope", "headers"),
    "fast_path": ("url", "expect_100_continue", "limit_concurrency", "connections", "tasks"),
}
CYCLE_ATTRS = (
    "body",
    "more_body",
    "disconnected",
    "response_complete",
    "message_event",
    "flow",
    "transport",
    "waiting_for_100_continue",
    "keep_alive",
)


class CheckFailed(Exception):
    pass


class _Transport(asyncio.Transport):
    """What the protocol writes, and whether it closed or half-closed: no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closing = False
        self.eof = False

    def write(self, data: Any) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return 0


def _responses(out: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The complete HTTP/1.1 responses (Content-Length framing) in `out`; a 100 Continue is skipped."""
    got = []
    data = bytes(out)
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
        n = int(headers.get(b"content-length", b"0"))
        if len(rest) < n:
            break
        got.append((status, headers, rest[:n]))
        data = rest[n:]
    return got


class _ProbeApp:
    """The ASGI app of the canned connections: reads a POST's body, answers 200 "ok", and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[str, str, int, bool]], bytes, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        msgs, data = [], b""
        if scope["method"] == "POST":
            while True:
                m = await receive()
                body = m.get("body", b"")
                msgs.append((m["type"], type(body).__name__, len(body), bool(m.get("more_body"))))
                data += bytes(body)
                if m["type"] != "http.request" or not m.get("more_body"):
                    break
        reason = (scope.get("extensions") or {}).get(REASON_KEY)
        self.seen.append((scope["path"], msgs, data, reason))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


class _FakeBatcher:
    def __init__(self) -> None:
        self.withdrawn = 0

    def enqueue_callback(self, tensors: Any, callback: Callable[[Any, bool], None], *, loop: Any, deadline: Any) -> Any:
        outcome = SimpleNamespace(queue_s=0.0, compute_s=0.0, batch_size=1, outputs={})
        return loop.call_soon(callback, outcome, False)

    def withdraw(self, ticket: Any) -> None:
        ticket.cancel()
        self.withdrawn += 1


class _FakeService:
    """Stands in for InferenceService on the canned fast-path connection (the check is about uvicorn, not models)."""

    accepting = True

    def __init__(self) -> None:
        from server.admission import Admission

        self.lm = SimpleNamespace(
            ready=True, image_tensor=None, version="1", admission=Admission(100), batcher=_FakeBatcher()
        )
        self.models = {"probe": self.lm}
        self.admit_ok = True
        self.bodies: list[bytes] = []
        self.bugs: list[BaseException] = []

    def admit(self, model: str, version: str | None) -> Any:
        from server.errors import QueueFull

        if not self.admit_ok:
            raise QueueFull("probe: refused")
        self.lm.admission.try_enter()
        return self.lm

    def prepare_oip(self, lm: Any, buf: Any, hl: Any, started: float, t: Any) -> tuple[Any, Any, Any]:
        self.bodies.append(bytes(buf))
        return None, {}, None

    def finish(self, lm: Any, req: Any, outcome: Any, t: Any) -> Any:
        from server.service import InferResult

        return InferResult(b"probe-ok", None, t)

    def account(self, lm: Any, started: float, t: Any, outcome: str) -> None:
        t.total_s = 0.0

    def internal_error(self, lm: Any, e: Exception) -> Any:
        from server.errors import InferError

        self.bugs.append(e)
        return InferError("probe: internal error")

    def count_rejected(self, model: str, exc: Any) -> None:
        pass


def _feed(proto: Any, data: bytes) -> None:
    """One network read, as the event loop delivers it (`get_buffer`/`buffer_updated` for a BufferedProtocol)."""
    if hasattr(proto, "get_buffer"):
        view = memoryview(data)
        while view:
            buf = proto.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]
    else:
        proto.data_received(data)


async def _until(cond: Callable[[], Any], what: str) -> None:
    for _ in range(200):  # loop turns, not time: the probe's tasks need a handful
        if cond():
            return
        await asyncio.sleep(0)
    raise CheckFailed(f"{what}: not reached")


def _expect(t: _Transport, n: int, statuses: list[int], what: str) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    got = _responses(t.out)
    if [s for s, _, _ in got[:n]] != statuses[:n] or len(got) < n:
        raise CheckFailed(f"{what}: answered {[s for s, _, _ in got]} instead of {statuses[:n]}")
    return got


HEAD = b"POST /v2/models/probe/infer%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"


async def _scenarios(cls: type, layers: tuple[str, ...]) -> None:
    import uvicorn
    from uvicorn.server import ServerState

    app = _ProbeApp()
    config = uvicorn.Config(app, http=cls, ws="none", lifespan="off", log_config=None, proxy_headers=False)
    config.load()
    if config.http_protocol_class is not cls:
        raise CheckFailed("uvicorn.Config no longer takes a protocol class for `http`")
    server_state = ServerState()
    service = _FakeService()
    fast_state = SimpleNamespace(
        service=service,
        settings=SimpleNamespace(max_header_bytes=16384, max_body_bytes=1 << 20, auth_token=None),
        metrics=SimpleNamespace(http_paths=HttpPaths()),
    )

    def connect() -> tuple[Any, Any, _Transport]:
        proto = cls(config=config, server_state=server_state, app_state={})  # as uvicorn's Server creates it
        inner = getattr(proto, "p", proto)  # the httptools protocol behind a BufferedFront
        inner.logger = inner.access_logger = inner.head_log = _SILENT
        inner.access_log = False
        inner.max_head_bytes = PROBE_HEAD_LIMIT
        if "fast_path" in layers:
            inner.fast_app = SimpleNamespace(state=fast_state)
        t = _Transport()
        proto.connection_made(t)
        return proto, inner, t

    # the head limit: a head streamed past it gets 431, half-closed
    proto, inner, t = connect()
    _feed(proto, b"GET /probe HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):
        _feed(proto, b"X-Probe: " + b"a" * 500 + b"\r\n")
    if not (bytes(t.out).startswith(b"HTTP/1.1 431 ") and b"connection: close" in t.out and t.eof):
        raise CheckFailed(f"a head streamed past the limit: got {bytes(t.out[:40])!r}, not a 431 and a half-close")
    proto.connection_lost(None)

    # the ASGI path: a GET, then an infer POST (a query keeps it off the fast path) with its body in three reads
    proto, inner, t = connect()
    _feed(proto, b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
    await _until(lambda: _responses(t.out), "GET on the ASGI path answered")
    body = bytes(range(256)) * 12
    _feed(proto, HEAD % b"?asgi" + b"Content-Length: %d\r\n\r\n" % len(body) + body[:1000])
    missing = [a for lay in layers for a in PROTOCOL_ATTRS[lay] if not hasattr(inner, a)]
    missing += [f"cycle.{a}" for a in CYCLE_ATTRS if not hasattr(inner.cycle, a)]
    if not hasattr(inner.server_state, "default_headers"):
        missing.append("server_state.default_headers")
    if missing:
        raise CheckFailed(f"the protocol lacks {', '.join(missing)}")
    if "whole_body" in layers:  # let the app ask for the body first: the rest then goes straight into its buffer
        await _until(lambda: getattr(inner.cycle, "whole_mode", False), "the app asked for the body")
    for part in (body[1000:2000], body[2000:]):
        await asyncio.sleep(0)
        _feed(proto, part)
    await _until(lambda: len(_responses(t.out)) >= 2, "infer POST on the ASGI path answered")
    _expect(t, 2, [200, 200], "the ASGI path")
    path, msgs, data, reason = app.seen[-1]
    if data != body:
        raise CheckFailed("an infer POST on the ASGI path: the app did not receive its body intact")
    if "whole_body" in layers and msgs != [("http.request", "bytearray", len(body), False)]:
        raise CheckFailed(f"an infer POST on the ASGI path: the body arrived as {msgs}, not whole in one message")
    if "fast_path" in layers and reason != "query":
        raise CheckFailed(f"an infer POST with a query: its reason for the ASGI path is {reason!r}, not 'query'")
    proto.connection_lost(None)
    if "fast_path" in layers:
        await _fast_scenarios(connect, service, fast_state)


async def _fast_scenarios(connect: Callable[[], Any], service: _FakeService, state: Any) -> None:
    paths = state.metrics.http_paths
    body = bytes(range(256)) * 20
    head = HEAD % b"" + b"Content-Length: %d\r\n\r\n" % len(body)
    proto, inner, t = connect()
    _feed(proto, head + body[:1000])  # the head and the start of the body: through the parser
    _feed(proto, body[1000:])  # the rest: straight into the request's buffer
    await _until(lambda: _responses(t.out), "a fast request answered")
    got = _expect(t, 1, [200], "a fast request")
    if got[0][2] != b"probe-ok" or service.bodies[-1:] != [body] or paths.get("fast", "admitted") != 1:
        raise CheckFailed("a fast request: not served by the fast path with its body intact")
    _feed(proto, b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")  # behind it: a fresh parser, the ASGI path
    await _until(lambda: len(_responses(t.out)) >= 2, "a GET after a fast request answered")
    service.admit_ok = False  # refused at admission: 503 at once, its body discarded, the connection goes on
    _feed(proto, head)
    _expect(t, 3, [200, 200, 503], "a fast request refused at admission")
    service.admit_ok = True
    _feed(proto, body)
    _feed(proto, b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
    await _until(lambda: len(_responses(t.out)) >= 4, "a GET after a refused body answered")
    _feed(proto, head + body)  # a graceful shutdown while queued: answered, then closed
    inner.shutdown()
    await _until(lambda: len(_responses(t.out)) >= 5, "a fast request answered during a shutdown")
    got = _expect(t, 5, [200, 200, 503, 200, 200], "a fast request during a shutdown")
    if got[4][1].get(b"connection") != b"close" or not t.closing or paths.get("fast", "refused") != 1:
        raise CheckFailed("a fast request during a shutdown: the connection was not closed after its answer")
    proto.connection_lost(None)
    proto, inner, t = connect()  # a client gone while its request is queued: withdrawn, never answered
    _feed(proto, head + body)
    proto.connection_lost(None)
    await asyncio.sleep(0)
    if service.lm.batcher.withdrawn != 1 or t.out or service.lm.admission.current != 0 or service.bugs:
        raise CheckFailed("a client gone while queued: its request was not withdrawn and its admission given back")


def functional_problem(cls: type, layers: tuple[str, ...]) -> str | None:
    """Run the canned connections through `cls` (built with `layers`) in a private event loop on a thread of its own
    (the caller may be inside a running loop). None: all answered as expected."""
    result: list[str | None] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        errors: list[str] = []
        loop.set_exception_handler(
            lambda _loop, ctx: errors.append(repr(ctx["exception"]) if "exception" in ctx else str(ctx.get("message")))
        )
        problem: str | None = None
        try:
            loop.run_until_complete(asyncio.wait_for(_scenarios(cls, layers), 10))
        except CheckFailed as e:
            problem = str(e)
        except Exception as e:  # an internal that changed: name what raised
            problem = f"{type(e).__name__}: {e}"
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
        if errors:  # the first error in a loop callback is the cause of what followed
            problem = f"{errors[0]} raised in a loop callback" + (f", then {problem}" if problem else "")
        result.append(problem)

    thread = threading.Thread(target=run, name="inferload-selfcheck", daemon=True)
    thread.start()
    thread.join(30)
    return result[0] if result else "the canned connections did not finish"
