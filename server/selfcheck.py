"""The start-up self-check of the uvicorn and httptools internals the HTTP front leans on, and the protocol choice
that follows from it (`choose_front`, called by `server.app.uvicorn_config`).

The protocols of server/httpproto.py subclass uvicorn's httptools protocol and its request cycle, read and write
their attributes, swap a cycle's class, stand in for the cycle during a fast request and rebuild the parser. None of
that is uvicorn's public API, so a uvicorn or httptools release can change it. Rather than fail one request at a time
(a parser callback that raises makes uvicorn answer 400 "Invalid HTTP request"), the server checks at start-up, in
its own process, without a socket:

1. statically (`INTERNALS` and `_cycle_reads`): every class, method and signature used is still there, no class we
   subclass or re-class has gained `__slots__`, and every attribute uvicorn's protocol reads of `self.cycle` (in its
   source) is one the fast path's stand-in cycle has;
2. functionally (server/probe.py): canned requests through the very protocol class that will serve, on a fake transport,
   in a private event loop: a head streamed past the limit (431), a GET and an infer POST on the ASGI path (whole body
   in one message), and on the fast path an infer request with its body in two reads, a GET behind it, a refusal at
   admission with its body discarded, a graceful shutdown and a disconnect while queued. Any exception (also one
   raised in a loop callback) or any answer other than the expected one fails the check.

The layers are nested (head_limit < whole_body < fast_path); each that fails is dropped with the ones above it. The
result is logged as exactly one warning line naming what failed, and inference then takes the ASGI path:
* fast path failed: the head-limited protocol with whole-body reading, without the fast path;
* whole body failed: the head-limited protocol alone;
* head limit failed: uvicorn's own httptools protocol; the 431 still holds (`InferloadApp` answers it once a head has
  arrived), but a head is no longer cut off while it arrives.
Without httptools, uvicorn's h11 protocol serves (the same 431 from `InferloadApp`; h11's own 400 past 4x the limit).
`fast_path = "off"` (`INFERLOAD_FAST_PATH=off`, `--fast-path off`) skips the fast path and its checks.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

from server.httpproto import FEATURES, build_protocol
from server.probe import functional_problem

log = logging.getLogger("server")


@dataclass(frozen=True)
class HttpFront:
    """What `serve` runs: `http` for `uvicorn.Config(http=...)`, the fast path's state (server/metrics.py
    FAST_PATH_STATES), the protocol layers in use and what the self-check found."""

    http: Any
    fast_path: str
    features: tuple[str, ...]
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------------- static checks

# (layer, object path, expected parameters or None for "exists and is callable"). Parameters are written without
# annotations; "=" marks a default. A method whose signature changed fails closed: the layer is dropped until its
# code has been checked against the new uvicorn.
_P = "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol"
_C = "uvicorn.protocols.http.httptools_impl.RequestResponseCycle"
_F = "uvicorn.protocols.http.flow_control.FlowControl"
_H = "httptools.HttpRequestParser"
INTERNALS: tuple[tuple[str, str, str | None], ...] = (
    ("head_limit", _P + ".__init__", "self, config, server_state, app_state, _loop="),
    ("head_limit", _P + ".connection_made", "self, transport"),
    ("head_limit", _P + ".connection_lost", "self, exc"),
    ("head_limit", _P + ".data_received", "self, data"),
    ("head_limit", _P + ".on_headers_complete", "self"),
    ("head_limit", _P + ".on_message_complete", "self"),
    ("head_limit", _P + ".on_response_complete", "self"),
    ("head_limit", _P + "._unset_keepalive_if_required", "self"),
    ("head_limit", _F + ".pause_reading", "self"),
    ("head_limit", _F + ".resume_reading", "self"),
    ("head_limit", "uvicorn.server.ServerState", None),
    ("head_limit", _H, None),
    ("head_limit", "httptools.HttpParserError", None),
    ("whole_body", _C + ".receive", "self"),
    ("whole_body", _P + ".on_body", "self, body"),
    ("whole_body", _P + "._should_upgrade", "self"),
    ("whole_body", _H + ".should_upgrade", None),
    ("fast_path", _P + ".eof_received", "self"),
    ("fast_path", _P + ".pause_writing", "self"),
    ("fast_path", _P + ".resume_writing", "self"),
    ("fast_path", _P + ".shutdown", "self"),
    ("fast_path", _H + ".get_method", None),
    ("fast_path", _H + ".get_http_version", None),
    ("fast_path", _H + ".should_keep_alive", None),
    ("fast_path", _H + ".feed_data", None),
)
# no __slots__: we add attributes to the protocol and re-class its cycles (`cycle.__class__ = WholeBodyCycle`)
NO_SLOTS = (("head_limit", _P), ("whole_body", _C))


# uvicorn methods that never run while `self.cycle` is the fast path's: the fast protocol's `on_body` takes every body
# chunk of a fast request (`fast_body`), and a later request's headers replace the cycle before its first chunk
NEVER_WITH_A_FAST_CYCLE = ("on_body",)


def _resolve(path: str) -> Any:
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def _params(fn: Any) -> str:
    sig = inspect.signature(fn)
    out = []
    for p in sig.parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name + ("=" if p.default is not p.empty else ""))
    return ", ".join(out)


def static_problems(layer: str) -> list[str]:
    """What is missing or changed among the internals `layer` uses (empty: all there)."""
    problems = []
    for lay, path, expected in INTERNALS:
        if lay != layer:
            continue
        short = path.rsplit(".", 2)[-2] + "." + path.rsplit(".", 1)[-1] if path.count(".") > 1 else path
        try:
            obj = _resolve(path)
        except (ImportError, AttributeError):
            problems.append(f"{short} is missing")
            continue
        if not callable(obj):
            problems.append(f"{short} is not callable")
        elif expected is not None:
            try:
                got = _params(obj)
            except (TypeError, ValueError):
                got = "?"
            if got != expected:
                problems.append(f"{short}({got}) changed (expected ({expected}))")
            if path.endswith(".receive") and not inspect.iscoroutinefunction(obj):
                problems.append(f"{short} is no longer a coroutine function")
    for lay, path in NO_SLOTS:
        if lay != layer:
            continue
        try:
            cls = _resolve(path)
        except (ImportError, AttributeError):
            continue  # reported above
        if any("__slots__" in vars(c) for c in cls.__mro__[:-1] if c.__module__.startswith("uvicorn")):
            problems.append(f"{cls.__name__} defines __slots__")
    if layer == "fast_path":
        problems += _cycle_reads()
    return problems


def _cycle_reads() -> list[str]:
    """Every attribute (and attribute of an attribute) uvicorn's protocol uses of `self.cycle`, or of a local bound to
    it, in its source, must exist on the fast path's stand-in cycle (`scan_cycle_uses`)."""
    from server.fastpath import _Cycle

    cls = _resolve(_P)
    try:
        with open(inspect.getfile(cls), encoding="utf-8") as f:
            source = f.read()
    except (OSError, TypeError) as e:
        return [f"uvicorn's source is not readable for the check ({e})"]
    return scan_cycle_uses(source, cls.__name__, _Cycle)


def scan_cycle_uses(source: str, class_name: str, stand_in: type) -> list[str]:
    """The uses of `self.cycle.X` (and `.X.Y`) in the methods of `class_name` in `source` that `stand_in` lacks. A text
    scan (parsing uvicorn's module costs ~10 ms): it may see more than the code uses (a comment), so it fails closed.
    After `self.cycle = ...` at a method's top level, `self.cycle` is the cycle uvicorn just made, not ours (a local
    bound before it still is ours); methods in NEVER_WITH_A_FAST_CYCLE are skipped."""
    start = re.search(rf"^class {class_name}\b", source, re.M)
    if start is None:
        return [f"class {class_name} not found in uvicorn's source"]
    end = re.compile(r"^(?!#)\S", re.M).search(source, start.end())
    body = source[start.end() : end.start() if end else len(source)]
    instance = stand_in(True, False)
    problems = []
    for method in re.split(r"\n    (?:async )?def ", body)[1:]:
        name = method.split("(", 1)[0]
        if name in NEVER_WITH_A_FAST_CYCLE:
            continue
        aliases = re.findall(r"\b(\w+)\s*=\s*self\.cycle\b(?!\.)", method)
        replaced = re.search(r"^        self\.cycle = ", method, re.M)
        ref = "|".join([r"\bself\.cycle", *(rf"(?<!\.)\b{re.escape(a)}" for a in aliases)])
        for m in re.finditer(rf"(?:{ref})\.(\w+)(?:\.(\w+))?", method):
            if replaced is not None and m.start() > replaced.start() and m.group(0).startswith("self."):
                continue
            attr, sub = m.group(1), m.group(2)
            if not hasattr(instance, attr) and attr not in getattr(stand_in, "__slots__", ()):
                problems.append(f"{class_name}.{name} uses self.cycle.{attr}, which _Cycle lacks")
            elif sub is not None and hasattr(instance, attr) and not hasattr(getattr(instance, attr), sub):
                problems.append(f"{class_name}.{name} uses self.cycle.{attr}.{sub}, which _Cycle lacks")
    return sorted(set(problems))


# ------------------------------------------------------------------------------------------------ the choice


def choose_front(max_header_bytes: int, fast_path: str, app: Any) -> HttpFront:
    """Check, then choose the protocol; log one warning line when a layer fails (see the module doc)."""
    try:
        import httptools
        import uvicorn.protocols.http.httptools_impl
    except ImportError as e:
        log.warning(
            "HTTP front: httptools is not usable (%s): uvicorn's h11 protocol serves, every infer request takes the "
            "ASGI path, and the 431 head limit is answered once a head has arrived",
            e,
        )
        return HttpFront("auto", "unavailable", (), (f"httptools: {e}",))
    import uvicorn

    wanted = FEATURES if fast_path == "auto" else FEATURES[:2]
    layers: tuple[str, ...] = ()
    problems: list[str] = []
    for layer in wanted:  # static: the longest prefix of layers whose internals are all there
        found = static_problems(layer)
        if found:
            problems.append(f"{layer}: {'; '.join(found)}")
            break
        layers += (layer,)
    while layers:  # functional: the top layer goes when its protocol does not answer as expected
        cls = build_protocol(max_header_bytes, layers, app)
        problem = functional_problem(cls, layers)
        if problem is None:
            break
        problems.insert(0, f"{layers[-1]}: {problem}")
        layers = layers[:-1]
    http: Any = cls if layers else "httptools"
    state = "on" if "fast_path" in layers else ("off" if fast_path == "off" else "self_check_failed")
    if problems:
        if "fast_path" in wanted and "fast_path" not in layers:
            then = "the infer fast path is off: every infer request takes the ASGI path"
        else:
            then = "infer requests take the ASGI path"
        if "head_limit" not in layers:
            then += "; uvicorn's own httptools protocol serves (431 answered once a head has arrived, not while)"
        elif "whole_body" not in layers:
            then += "; infer bodies are read in uvicorn's chunks"
        text = " | ".join(problems).replace("\n", " ")
        log.warning(
            "HTTP front: start-up self-check failed (uvicorn %s, httptools %s): %s; %s (INFERLOAD_FAST_PATH=off skips "
            "the fast path and its check)",
            uvicorn.__version__,
            getattr(httptools, "__version__", "?"),
            text,
            then,
        )
    else:
        log.info(
            "HTTP front: the infer fast path is %s (uvicorn %s, httptools %s)",
            state,
            uvicorn.__version__,
            getattr(httptools, "__version__", "?"),
        )
    return HttpFront(http, state, layers, tuple(problems))
