"""The start-up self-check (server/selfcheck.py, server/probe.py) and the dispatch rule (server/dispatch.py), in
process, without a socket: this uvicorn passes; simulated uvicorn releases (an internal away, a changed signature,
`__slots__`, one more attribute read of the cycle) each turn off what they break, with exactly one warning line
naming it; the setting, its environment variable and its flag; every reason the rule gives is a counter label."""

from __future__ import annotations

import inspect
import logging
import re
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("httptools")

from uvicorn.protocols.http import httptools_impl

from server import dispatch
from server.app import create_app, uvicorn_config
from server.metrics import HTTP_PATH_REASONS
from server.selfcheck import INTERNALS, choose_front, scan_cycle_uses, static_problems
from server.settings import ServerSettings
from tests.server.fronts import apply

LIMIT = 16384


@pytest.fixture(scope="module")
def app():
    return create_app(ServerSettings(models_dir="/nonexistent"))  # no lifespan: the check needs no models


def front_of(app, caplog, fast_path: str = "auto"):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="server"):
        front = choose_front(LIMIT, fast_path, app)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    return front, warnings


def test_this_uvicorn_passes_and_nothing_is_logged(app, caplog):
    front, warnings = front_of(app, caplog)
    assert (front.fast_path, front.features, front.problems) == ("on", ("head_limit", "whole_body", "fast_path"), ())
    assert front.http.__name__ == "InferloadFront"
    assert warnings == []
    for layer in ("head_limit", "whole_body", "fast_path"):
        assert static_problems(layer) == []


def test_fast_path_off_by_the_setting_skips_its_check(app, caplog, monkeypatch):
    apply("broken", monkeypatch.setattr)  # would fail the fast path's check, which "off" does not run
    front, warnings = front_of(app, caplog, "off")
    assert (front.fast_path, front.features, warnings) == ("off", ("head_limit", "whole_body"), [])


def test_a_uvicorn_that_reads_one_more_cycle_attribute(app, caplog, monkeypatch):
    """The canned fast request catches it (the read happens in a loop callback): fast path off, one warning."""
    apply("broken", monkeypatch.setattr)
    front, warnings = front_of(app, caplog)
    assert (front.fast_path, front.features) == ("self_check_failed", ("head_limit", "whole_body"))
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "fast_path: " in text and "'scope'" in text and "ASGI path" in text and "\n" not in text


def test_the_source_scan_names_a_cycle_attribute_the_stand_in_lacks(app, caplog, monkeypatch):
    from server import fastpath

    class Smaller:  # as if uvicorn's protocol had started to use keep_alive of its cycle
        __slots__ = ("response_complete", "disconnected", "more_body", "message_event", "reading")

        def __init__(self, keep: bool, reading: bool) -> None:
            self.response_complete = self.disconnected = False
            self.more_body, self.message_event, self.reading = True, fastpath._NO_EVENT, reading

    monkeypatch.setattr(fastpath, "_Cycle", Smaller)
    assert static_problems("fast_path") == ["HttpToolsProtocol.shutdown uses self.cycle.keep_alive, which _Cycle lacks"]
    front, warnings = front_of(app, caplog)
    assert front.fast_path == "self_check_failed" and len(warnings) == 1
    assert "self.cycle.keep_alive" in warnings[0].getMessage()


SOURCE = """
class Proto:
    def on_headers_complete(self):
        old = self.cycle
        if self.cycle.response_complete:
            self.cycle = None  # in a branch: the scan goes on
        self.cycle.waiting
        self.cycle = Cycle()
        self.cycle.run_asgi(app)  # uvicorn's new cycle, not ours
        old.keep_alive, old.scope

    def on_body(self, body):
        self.cycle.body += body  # never with a fast cycle (the fast protocol takes its body chunks)

    def connection_lost(self, exc):
        self.cycle.message_event.clear()
        self.cycle.message_event.set()
# a top-level comment does not end the class; the next class does
class Other:
    def f(self):
        self.cycle.elsewhere
"""


def test_the_source_scan_rules():
    from server.fastpath import _Cycle

    assert scan_cycle_uses(SOURCE, "Proto", _Cycle) == [
        "Proto.connection_lost uses self.cycle.message_event.clear, which _Cycle lacks",
        "Proto.on_headers_complete uses self.cycle.scope, which _Cycle lacks",
        "Proto.on_headers_complete uses self.cycle.waiting, which _Cycle lacks",
    ]
    assert scan_cycle_uses(SOURCE, "Missing", _Cycle) == ["class Missing not found in uvicorn's source"]


def test_an_internal_away(app, caplog, monkeypatch):
    monkeypatch.delattr(httptools_impl.HttpToolsProtocol, "_should_upgrade")
    front, warnings = front_of(app, caplog)
    assert (front.fast_path, front.features) == ("self_check_failed", ("head_limit",))
    assert len(warnings) == 1 and "whole_body: HttpToolsProtocol._should_upgrade is missing" in warnings[0].getMessage()


def test_a_cycle_with_slots(app, caplog, monkeypatch):
    monkeypatch.setattr(httptools_impl.RequestResponseCycle, "__slots__", ("scope",), raising=False)
    front, warnings = front_of(app, caplog)
    assert front.features == ("head_limit",)
    assert len(warnings) == 1 and "RequestResponseCycle defines __slots__" in warnings[0].getMessage()


def test_a_changed_signature_leaves_uvicorns_own_protocol(app, caplog, monkeypatch):
    """The head limit's own internals fail: uvicorn's plain httptools protocol serves (the ASGI app answers 431)."""
    apply("plain", monkeypatch.setattr)
    front, warnings = front_of(app, caplog)
    assert (front.http, front.fast_path, front.features) == ("httptools", "self_check_failed", ())
    assert len(warnings) == 1
    assert "head_limit: HttpToolsProtocol.on_message_complete(self, *args) changed" in warnings[0].getMessage()


def test_without_httptools_h11_serves(app, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "httptools", None)  # import httptools → ImportError
    front, warnings = front_of(app, caplog)
    assert (front.http, front.fast_path) == ("auto", "unavailable")
    assert len(warnings) == 1 and "httptools is not usable" in warnings[0].getMessage()


def test_uvicorn_config_records_the_front(caplog, monkeypatch):
    apply("broken", monkeypatch.setattr)
    settings = ServerSettings(models_dir="/nonexistent")
    app = create_app(settings)
    with caplog.at_level(logging.WARNING, logger="server"):
        config = uvicorn_config(settings, app)
    assert config.http is app.state.http_front.http and app.state.fast_path_state == "self_check_failed"
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    data, _ = app.state.metrics.expose()
    assert b'inferload_http_fast_path{state="self_check_failed"} 1.0' in data
    assert b'inferload_http_fast_path{state="on"} 0.0' in data


def test_the_setting_its_environment_variable_and_its_flag(monkeypatch):
    from server.__main__ import parser
    from server.settings import settings_from_options

    assert ServerSettings().fast_path == "auto"
    monkeypatch.setenv("INFERLOAD_FAST_PATH", "off")
    assert ServerSettings().fast_path == "off"
    monkeypatch.delenv("INFERLOAD_FAST_PATH")
    assert settings_from_options(**vars(parser().parse_args(["--fast-path", "off"]))).fast_path == "off"
    with pytest.raises(ValueError):
        ServerSettings(fast_path="on")
    with pytest.raises(SystemExit):
        parser().parse_args(["--fast-path", "sometimes"])


def test_every_internal_named_resolves_on_this_uvicorn():
    assert {layer for layer, _, _ in INTERNALS} == {"head_limit", "whole_body", "fast_path"}


# ------------------------------------------------------------------------------------------------ the dispatch rule


def test_every_reason_the_rule_gives_is_a_label_and_documented():
    given = set(re.findall(r'return "(\w+)"', inspect.getsource(dispatch.fast_decision)))
    given |= set(dispatch.STATE_REASONS.values())
    assert given == set(HTTP_PATH_REASONS["asgi"])
    documented = set(re.findall(r"^    (\w+) ", dispatch.__doc__ or "", re.M))
    assert set(re.findall(r'return "(\w+)"', inspect.getsource(dispatch.fast_decision))) <= documented


class _Secret:
    def get_secret_value(self) -> str:
        return "t0k"


def _state(**over):
    lm = SimpleNamespace(ready=True, image_tensor=None, version="1")
    lm = SimpleNamespace(**{**vars(lm), **over.pop("lm", {})})
    settings = SimpleNamespace(max_header_bytes=1024, max_body_bytes=1000, auth_token=over.pop("token", None))
    service = SimpleNamespace(accepting=over.pop("accepting", True), models={"m": lm})
    return SimpleNamespace(service=service, settings=settings)


BASE = [(b"content-type", b"application/json"), (b"content-length", b"10")]


@pytest.mark.parametrize(
    "target, headers, flags, state, expected",
    [
        (b"/v2/models/m/infer", BASE, {}, {}, "fast"),
        (b"/v2/models/m/versions/1/infer", BASE, {}, {}, "fast"),
        (b"/v2/models/m/infer", BASE, {"method": b"GET"}, {}, None),
        (b"/v2/health/ready", BASE, {}, {}, None),
        (b"/v2/models/m%5F/infer", BASE, {}, {}, None),  # InferloadApp counts it (target_form)
        (b"/v2/models/m/infer?x=1", BASE, {}, {}, "query"),
        (b"/v2/models/m/infer", BASE, {"http_version": "1.0"}, {}, "http_version"),
        (b"/v2/models/m/infer", BASE, {"upgrade": True}, {}, "upgrade"),
        (b"/v2/models/m/infer", BASE, {"expect": True}, {}, "expect_continue"),
        (b"/v2/models/m/infer", BASE, {"pipelined": True}, {}, "pipelined"),
        (b"/v2/models/m/infer", BASE, {"at_connection_limit": True}, {}, "connection_limit"),
        (b"/v2/models/m/infer", BASE, {}, {"accepting": False}, "not_serving"),
        (b"/v2/models/m/infer", [*BASE, (b"x-big", b"b" * 1000)], {}, {}, "head_too_large"),
        (b"/v2/models/m/infer", BASE[:1], {}, {}, "content_length"),
        (b"/v2/models/m/infer", [*BASE, (b"transfer-encoding", b"chunked")], {}, {}, "content_length"),
        (b"/v2/models/m/infer", [BASE[0], (b"content-length", b"x")], {}, {}, "content_length"),
        (b"/v2/models/m/infer", [(b"content-type", b"image/png"), BASE[1]], {}, {}, "content_type"),
        (b"/v2/models/m/infer", [BASE[0], (b"content-length", b"1001")], {}, {}, "body_too_large"),
        (b"/v2/models/m/infer", [*BASE, (b"inference-header-content-length", b"x")], {}, {}, "header_length"),
        (b"/v2/models/n/infer", BASE, {}, {}, "unknown_model"),
        (b"/v2/models/m/versions/2/infer", BASE, {}, {}, "unknown_model"),
        (b"/v2/models/m/infer", BASE, {}, {"lm": {"ready": False}}, "not_ready"),
        (b"/v2/models/m/infer", BASE, {}, {"lm": {"image_tensor": "pixels"}}, "image_model"),
        (b"/v2/models/m/infer", BASE, {}, {"token": _Secret()}, "unauthorized"),
        (b"/v2/models/m/infer", [*BASE, (b"authorization", b"Bearer t0k")], {}, {"token": _Secret()}, "fast"),
    ],
)
def test_fast_decision(target, headers, flags, state, expected):
    args = {"expect": False, "upgrade": False, "pipelined": False, "at_connection_limit": False}
    method = flags.pop("method", b"POST")
    version = flags.pop("http_version", "1.1")
    args.update(flags)
    d = dispatch.fast_decision(method, target, version, headers, state=_state(**state), **args)
    if expected == "fast":
        assert isinstance(d, dispatch.FastRequest) and d.model == "m" and d.size == 10
    else:
        assert d == expected


def test_asgi_route():
    scope = {"type": "http", "method": "POST", "path": "/v2/models/m/infer", "raw_path": b"/v2/models/m/infer"}
    scope["headers"] = BASE
    r = dispatch.asgi_route(scope, 1024, "off")
    assert (r.infer, r.reason, r.head_too_large) == (("m", None), "fast_path_off", False)
    stamped = dict(scope, extensions={dispatch.REASON_KEY: "query"})
    assert dispatch.asgi_route(stamped, 1024, "on").reason == "query"
    assert dispatch.asgi_route(scope, 1024, "on").reason == "target_form"  # not recognised by the protocol
    big = dispatch.asgi_route(dict(scope, method="GET", path="/v2"), 20, "on")
    assert (big.infer, big.reason, big.head_too_large, big.wrong_method) == (None, None, True, False)
    get = dispatch.asgi_route(dict(scope, method="GET"), 1024, "on")
    assert (get.infer, get.reason, get.wrong_method) == (None, None, True)
