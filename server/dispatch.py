"""Which path serves a request: the one rule, for the HTTP protocol (the fast path, server/fastpath.py) and the ASGI
app (`InferloadApp`, server/app.py). Every infer request is counted once in
`inferload_http_path_requests_total{path, reason}` (server/metrics.py).

An *infer request* is `POST /v2/models/{m}[/versions/{v}]/infer`. The HTTP protocol sees a request first. With the
fast path on (server/selfcheck.py decides at start-up), it serves an infer request itself (`path="fast"`,
reason `admitted`, or `refused` when admission says no: a 503 from the protocol) unless one of these holds; the first
that holds is the reason the request takes the ASGI path (`path="asgi"`):

    target_form      the target is not a plain origin-form path (`%`, `#`, absolute form)
    query            it has a query string
    http_version     not HTTP/1.1
    upgrade          an Upgrade request
    expect_continue  `Expect: 100-continue` (the ASGI path sends 100 Continue once admitted)
    pipelined        an earlier request on the connection is still unanswered (uvicorn queues it)
    connection_limit uvicorn's `limit_concurrency` is reached (uvicorn answers 503)
    not_serving      the service is starting or draining
    head_too_large   the head exceeds `max_header_bytes` (431)
    content_length   no valid Content-Length (chunked, missing, not a number)
    content_type     not an OIP content type (JSON or binary tensors; an encoded image is not one)
    body_too_large   Content-Length over `max_body_bytes` (413)
    header_length    Inference-Header-Content-Length is not a number (400)
    unknown_model    no such model or version (404)
    not_ready        the model is not ready (503)
    image_model      an image model (its decoding runs in threads, on the ASGI path)
    unauthorized     a bearer token is required and this one is missing or wrong (401)

With the fast path not on, every infer request takes the ASGI path with the fast path's state as its reason:
`fast_path_off` (the setting), `self_check_failed`, `fast_path_unavailable` (no httptools, or not run by `serve`).

On the ASGI path (`asgi_route`): a head over `max_header_bytes` gets 431 before anything else (with the head-limited
protocol it was refused already while it arrived, unless it arrived in one read); an infer request goes straight to
the infer endpoint (server/infer_http.py), past FastAPI's middleware and router, and another method on an infer path
gets 405 (`Allow: POST`); everything else is FastAPI's.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from server.service import InferenceService, LoadedModel

FAST = "fast"
ASGI = "asgi"
OIP_TYPES = (b"", b"application/json", b"application/octet-stream")
# scope["extensions"][REASON_KEY]: why the protocol left an infer request to the ASGI path
REASON_KEY = "inferload.http_path_reason"
# the ASGI path's reason for a request the protocol did not stamp, by the fast path's state ("on": the protocol did
# not recognise the target as an infer request, so only the decoded path did)
STATE_REASONS = {
    "on": "target_form",
    "off": "fast_path_off",
    "self_check_failed": "self_check_failed",
    "unavailable": "fast_path_unavailable",
}


def match_infer(path: str) -> tuple[str, str | None] | None:
    """`/v2/models/{model}/infer` → (model, None); `/v2/models/{model}/versions/{version}/infer` → (model, version);
    anything else → None. Segments match like Starlette's `{param}` (one non-empty path segment)."""
    if not (path.startswith("/v2/models/") and path.endswith("/infer")):
        return None
    parts = path[11:-6].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


class InferHeaders(NamedTuple):
    """What an infer request's header fields say, from one pass over them (both paths use it)."""

    content_type: bytes | None
    content_length: bytes | None
    header_length: bytes | None  # Inference-Header-Content-Length
    authorization: bytes | None
    expect_continue: bool
    chunked: bool  # a Transfer-Encoding field is present
    size: int  # bytes of the header lines as sent (`name: value` CRLF each)


def scan_headers(headers: list[tuple[bytes, bytes]]) -> InferHeaders:
    ctype = clen = hl = auth = None
    expect = chunked = False
    size = 0
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name == b"content-type":
            ctype = value
        elif name == b"content-length":
            clen = value
        elif name == b"inference-header-content-length":
            hl = value
        elif name == b"authorization":
            auth = value
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
        elif name == b"transfer-encoding":
            chunked = True
    return InferHeaders(ctype, clen, hl, auth, expect, chunked, size)


def head_size(method_len: int, target_len: int, header_lines: int) -> int:
    """Bytes of a request head as sent: `METHOD SP target SP HTTP/1.1 CRLF`, the header lines (`InferHeaders.size`),
    CRLF. The one formula, for the fast path, the ASGI path and the 431 message."""
    return method_len + target_len + header_lines + 14  # 2 spaces + "HTTP/1.1" + 2 CRLFs


def scope_head_size(scope: dict[str, Any], h: InferHeaders) -> int:
    raw_path = scope.get("raw_path")
    if raw_path is None:
        raw_path = scope.get("path", "").encode("utf-8", "replace")
    qs = scope.get("query_string")
    return head_size(len(scope.get("method", "")), len(raw_path) + (len(qs) + 1 if qs else 0), h.size)


def auth_ok(settings: Any, given: bytes | None) -> bool:
    """The bearer token check (constant time); True when no token is configured."""
    token = settings.auth_token
    if token is None:
        return True
    scheme, _, value = (given or b"").decode("latin-1").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected)


class FastRequest(NamedTuple):
    """An infer request the fast path takes (admission is still to be asked)."""

    service: InferenceService
    lm: LoadedModel
    model: str
    version: str | None
    size: int  # Content-Length
    header_length: int | None


def fast_decision(
    method: bytes,
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    *,
    expect: bool,
    upgrade: bool,
    pipelined: bool,
    at_connection_limit: bool,
    state: Any,
) -> FastRequest | str | None:
    """The protocol's rule (see the module doc): a `FastRequest`, or the reason an infer request takes the ASGI path,
    or None for a request the protocol does not recognise as infer (`InferloadApp` then decides on its decoded path).
    `state` is the app's state (service, settings)."""
    if method != b"POST":
        return None
    if target[:1] != b"/" or target[1:2] == b"/" or b"%" in target or b"#" in target:
        return None  # not plain origin form: if it is infer, InferloadApp counts it as target_form
    path, query, _ = target.partition(b"?")
    match = match_infer(path.decode("latin-1"))
    if match is None:
        return None
    if query:
        return "query"
    if http_version != "1.1":
        return "http_version"
    if upgrade:
        return "upgrade"
    if expect:
        return "expect_continue"
    if pipelined:
        return "pipelined"
    if at_connection_limit:
        return "connection_limit"
    service = state.service
    if service is None or not service.accepting:
        return "not_serving"
    settings = state.settings
    h = scan_headers(headers)
    if head_size(len(method), len(target), h.size) > settings.max_header_bytes:
        return "head_too_large"
    if h.chunked or h.content_length is None:
        return "content_length"
    ctype = h.content_type
    if ctype is not None and ctype.split(b";", 1)[0].strip().lower() not in OIP_TYPES:
        return "content_type"
    try:
        size = int(h.content_length)
    except ValueError:
        return "content_length"
    if size < 0:
        return "content_length"
    if size > settings.max_body_bytes:
        return "body_too_large"
    try:
        hl = None if h.header_length is None else int(h.header_length)
    except ValueError:
        return "header_length"
    model, version = match
    lm = service.models.get(model)
    if lm is None or (version is not None and version != lm.version):
        return "unknown_model"
    if not lm.ready:
        return "not_ready"
    if lm.image_tensor is not None:
        return "image_model"
    if not auth_ok(settings, h.authorization):
        return "unauthorized"
    return FastRequest(service, lm, model, version, size, hl)


class AsgiRoute(NamedTuple):
    headers: InferHeaders
    head_size: int
    head_too_large: bool
    infer: tuple[str, str | None] | None  # (model, version) of an infer request
    reason: str | None  # an infer request's reason for being here (counted by InferloadApp)
    wrong_method: bool  # an infer path with another method than POST (405)


def asgi_route(scope: dict[str, Any], max_header_bytes: int, fast_path_state: str) -> AsgiRoute:
    """The ASGI app's rule for an HTTP request (see the module doc)."""
    h = scan_headers(scope["headers"])
    size = scope_head_size(scope, h)
    infer = match_infer(scope["path"])
    if infer is not None and scope["method"] != "POST":
        return AsgiRoute(h, size, size > max_header_bytes, None, None, True)
    reason = None
    if infer is not None:
        stamped = (scope.get("extensions") or {}).get(REASON_KEY)
        reason = stamped if stamped is not None else STATE_REASONS[fast_path_state]
    return AsgiRoute(h, size, size > max_header_bytes, infer, reason, False)
