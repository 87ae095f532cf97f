"""The target's options, pure (no sockets): header parsing, redaction, paths with a prefix and a version, the token's
sources, the scenario's validation and dumps, and the CLI flags shared by every load command."""

from __future__ import annotations

import json

import pytest
import typer

from loadgen.commands._request import parse_shapes, request_options, to_fields
from loadgen.engine.scenario import Scenario, ScenarioError
from loadgen.engine.target import (
    REDACTED,
    TargetError,
    parse_headers,
    read_token,
    redact_headers,
    redact_url,
    target_of,
)


def _sc(**kw) -> Scenario:
    return Scenario(**{"target": "http://127.0.0.1:1", "model": "m", "mode": "closed", "users": 1, **kw})


def test_headers_parse_and_reject_what_http_cannot_carry():
    assert parse_headers(["Host: a.example.com", "X-Trace:  on "]) == [("Host", "a.example.com"), ("X-Trace", "on")]
    for bad in ("NoColon", ": v", "Bad Name: v", "X: a\r\nInjected: 1", "Content-Length: 5"):
        with pytest.raises(TargetError):
            parse_headers([bad])


def test_credentials_are_redacted_and_other_headers_kept():
    shown = redact_headers(["Authorization: Bearer abc", "X-Api-Key: k", "Cookie: s=1", "Host: h", "X-Trace: on"])
    assert shown == [
        f"Authorization: {REDACTED}",
        f"X-Api-Key: {REDACTED}",
        f"Cookie: {REDACTED}",
        "Host: h",
        "X-Trace: on",
    ]
    assert redact_url("https://user:pw@h:8443/p") == f"https://user:{REDACTED}@h:8443/p"
    assert redact_url("http://h:1/p") == "http://h:1/p"


def test_prefix_and_version_are_kept_in_every_path():
    t = target_of(_sc(target="https://gw.example:8443/serving/ns/", model_version="2"))
    assert t.prefix == "/serving/ns"
    assert t.path("/v2") == "/serving/ns/v2"
    assert t.model_path("resnet 50", "/infer") == "/serving/ns/v2/models/resnet%2050/versions/2/infer"
    assert (t.host, t.port, t.https, t.origin) == ("gw.example", 8443, True, "https://gw.example:8443")
    bare = target_of(_sc(target="http://127.0.0.1:8000"))
    assert bare.model_path("m") == "/v2/models/m" and bare.prefix == ""


def test_token_from_file_or_environment_and_an_explicit_authorization_wins(tmp_path):
    f = tmp_path / "tok"
    f.write_text("abc123\n")
    assert read_token(str(f), {}) == "abc123"
    assert read_token(None, {"INFERLOAD_BEARER_TOKEN": " env-tok "}) == "env-tok"
    assert read_token(None, {}) is None
    f.write_text("")
    with pytest.raises(TargetError, match="one line"):
        read_token(str(f), {})
    with pytest.raises(TargetError, match="--bearer-token-file"):
        read_token(str(tmp_path / "missing"), {})
    t = target_of(_sc(), {"INFERLOAD_BEARER_TOKEN": "e"})
    assert t.request_headers() == {"Authorization": "Bearer e"}
    t = target_of(_sc(headers=["authorization: Basic x"]), {"INFERLOAD_BEARER_TOKEN": "e"})
    assert t.request_headers() == {"authorization": "Basic x"}
    assert "token=" not in repr(target_of(_sc(), {"INFERLOAD_BEARER_TOKEN": "zz"}))


def test_scenario_dumps_redact_and_with_secrets_keeps_for_workers():
    sc = _sc(headers=["Authorization: Bearer abc", "Host: h"], target="http://u:pw@127.0.0.1:1")
    dumped = json.dumps(sc.model_dump(mode="json"))
    assert "abc" not in dumped and ":pw@" not in dumped and "Host: h" in dumped
    assert "abc" not in repr(sc)
    back = Scenario.model_validate(sc.with_secrets())
    assert back.headers == ["Authorization: Bearer abc", "Host: h"] and back.target == sc.target


def test_scenario_validation_names_the_fix():
    with pytest.raises(ScenarioError, match="https"):
        Scenario.build({"target": "http://h:1", "model": "m", "users": 1, "ca_file": "ca.pem"})
    with pytest.raises(ScenarioError, match="http-json"):
        Scenario.build({"target": "http://h:1", "model": "m", "users": 1, "protocol": "http-json"})
    with pytest.raises(ScenarioError, match="http-json"):
        Scenario.build({"target": "http://h:1", "model": "m", "users": 1, "path": "/predict"})
    with pytest.raises(ScenarioError, match="Name: value"):
        Scenario.build({"target": "http://h:1", "model": "m", "users": 1, "headers": ["oops"]})


def test_scenario_file_carries_the_request_options(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        'target = "https://gw:8443/p"\nmodel = "m"\nusers = 1\nheaders = ["Host: m.example"]\n'
        'ca_file = "ca.pem"\nmodel_version = "1"\n[shapes]\ninput = [1, 3, 8, 8]\n'
    )
    sc = Scenario.from_toml(f)
    assert sc.headers == ["Host: m.example"] and sc.shapes == {"input": [1, 3, 8, 8]}
    assert target_of(sc).model_path("m") == "/p/v2/models/m/versions/1"


def test_cli_flags_become_scenario_fields():
    assert parse_shapes(["input:1,3,224,224", "ids:1,128"]) == {"input": [1, 3, 224, 224], "ids": [1, 128]}
    for bad in ("input", "input:", "input:1,x", "input:0,3"):
        with pytest.raises(typer.BadParameter):
            parse_shapes([bad])
    fields = to_fields({"header": ["Host: h"], "shape": ["x:2"], "output": ["o"], "insecure": None, "path": None})
    assert fields == {"headers": ["Host: h"], "shapes": {"x": [2]}, "outputs": ["o"]}


def test_request_options_decorator_adds_the_flags_to_a_command():
    from typer.testing import CliRunner

    seen = {}

    @request_options
    def cmd(model: str = typer.Option("m", "--model"), request: dict | None = None) -> None:
        seen.update(model=model, request=request)

    app = typer.Typer()
    app.command()(cmd)
    r = CliRunner().invoke(app, ["--model", "x", "-H", "Host: h", "--shape", "in:1,2", "--insecure"])
    assert r.exit_code == 0, r.output
    assert seen == {"model": "x", "request": {"headers": ["Host: h"], "shapes": {"in": [1, 2]}, "insecure": True}}
