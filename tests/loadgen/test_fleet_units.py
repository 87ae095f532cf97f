"""The fleet's pure parts: addresses, the files shipped to workers, the per-worker table and the worker_lost verdict.
No sockets, no sleeps."""

from __future__ import annotations

import base64

import pytest

from loadgen.engine.fleet import DEFAULT_MASTER_PORT, FleetSpec, parse_hostport
from loadgen.engine.recorder import Recorder
from loadgen.engine.scenario import Scenario
from loadgen.engine.shipping import ShipError, pack, unpack
from loadgen.results.build import build_result
from loadgen.results.recorded import RecordData
from loadgen.results.schema import validate_document
from loadgen.results.validity import generator_limited
from loadgen.results.workers import workers_section


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("10.0.0.5", ("10.0.0.5", DEFAULT_MASTER_PORT)),
        ("10.0.0.5:6000", ("10.0.0.5", 6000)),
        ("master.ns.svc", ("master.ns.svc", DEFAULT_MASTER_PORT)),
        (":6001", ("0.0.0.0", 6001)),
        ("[fd00::1]:6002", ("fd00::1", 6002)),
        ("fd00::1", ("fd00::1", DEFAULT_MASTER_PORT)),
        ("", ("0.0.0.0", DEFAULT_MASTER_PORT)),
    ],
)
def test_parse_hostport(text, want):
    assert parse_hostport(text, "0.0.0.0") == want


@pytest.mark.parametrize("bad", ["h:port", "h:0", "h:70000"])
def test_parse_hostport_refuses_bad_ports(bad):
    with pytest.raises(ValueError, match="port"):
        parse_hostport(bad, "0.0.0.0")


def test_fleet_spec_listens_on_loopback_for_local_workers_only():
    assert FleetSpec(local=2).address() == ("127.0.0.1", 0)
    assert FleetSpec(expect=2).address() == ("0.0.0.0", DEFAULT_MASTER_PORT)
    assert FleetSpec(expect=1, bind="10.1.0.1:7000").address() == ("10.1.0.1", 7000)
    assert FleetSpec(local=1, expect=2).total == 3


def _scenario(**kw):
    base = {"target": "http://127.0.0.1:9", "model": "m", "rate_rps": 10.0}
    return Scenario.build({**base, **kw})


def test_shipped_files_arrive_under_the_workers_directory_with_the_fields_rewritten(tmp_path):
    src = tmp_path / "master"
    src.mkdir()
    (src / "inputs.json").write_text('{"data": [{"input": [1, 2, 3]}]}')
    (src / "trace.csv").write_text("t\n0.0\n0.5\n")
    (src / "ca.pem").write_text("CA")
    imgs = src / "imgs"
    imgs.mkdir()
    (imgs / "a.jpg").write_bytes(b"\xff\xd8jpegA")
    (imgs / "b.png").write_bytes(b"\x89PNGb")
    (imgs / "notes.txt").write_text("not an image")
    fields = {
        "input_data": str(src / "inputs.json"),
        "arrival": f"trace:{src / 'trace.csv'}:t",
        "images_dir": str(imgs),
        "ca_file": str(src / "ca.pem"),
        "target": "https://h:1",
    }
    packed = pack(fields, environ={})
    assert sorted(packed) == ["arrival", "ca_file", "images_dir", "input_data"]
    assert [n for n, _ in packed["images_dir"]] == ["a.jpg", "b.png"]  # images only
    dst = tmp_path / "worker"
    got = unpack(fields, packed, dst)
    assert got["input_data"] == str(dst / "input_data" / "inputs.json")
    assert (dst / "input_data" / "inputs.json").read_text() == '{"data": [{"input": [1, 2, 3]}]}'
    assert got["arrival"] == f"trace:{dst / 'arrival' / 'trace.csv'}:t"  # the column survives
    assert (dst / "arrival" / "trace.csv").read_text() == "t\n0.0\n0.5\n"
    assert got["images_dir"] == str(dst / "images_dir")
    assert (dst / "images_dir" / "b.png").read_bytes() == b"\x89PNGb"
    assert got["ca_file"] == str(dst / "ca_file" / "ca.pem") and got["target"] == "https://h:1"
    assert fields["input_data"] == str(src / "inputs.json")  # the master's dict is untouched


def test_keywords_ship_nothing_and_the_environment_token_travels_as_a_file(tmp_path):
    assert pack({"input_data": "random"}, environ={}) == {}
    packed = pack({"input_data": "zero"}, environ={"INFERLOAD_BEARER_TOKEN": "s3cret"})
    assert list(packed) == ["bearer_token_file"]
    got = unpack({}, packed, tmp_path)
    assert open(got["bearer_token_file"]).read() == "s3cret"
    # a token file given explicitly wins over the environment (as on the master)
    tok = tmp_path / "tok"
    tok.write_text("from-file")
    packed = pack({"bearer_token_file": str(tok)}, environ={"INFERLOAD_BEARER_TOKEN": "env"})
    assert base64.b64decode(packed["bearer_token_file"][0][1]) == b"from-file"


def test_too_much_to_ship_or_a_missing_file_is_refused_with_the_reason(tmp_path):
    big = tmp_path / "big.npy"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(
        ShipError, match=r"total 4.9 KiB \(largest: input_data 'big.npy'.*more than the 4.0 KiB the master ships"
    ):
        pack({"input_data": str(big)}, environ={}, limit=4096)
    with pytest.raises(ShipError, match="not found on the master"):
        pack({"body_template": str(tmp_path / "nope.json")}, environ={})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShipError, match="no .jpg"):
        pack({"images_dir": str(empty)}, environ={})


def test_a_shipped_name_cannot_escape_the_workers_directory(tmp_path):
    packed = {"body_template": [["../../etc/evil", base64.b64encode(b"x").decode()]]}
    got = unpack({}, packed, tmp_path / "w")
    assert got["body_template"] == str(tmp_path / "w" / "body_template" / "evil")
    assert not (tmp_path / "etc").exists()


def _worker_data(source: str, n: int, stream: int, streams: int, cpu: float, answered: int | None = None) -> RecordData:
    """n requests in the 10-s window, one every 10/n s offset by the stream; `answered` of them answered."""
    r = Recorder(1.0, 10.0, source)
    answered = n if answered is None else answered
    for i in range(n):
        t = 1.0 + (i * streams + stream) * 10.0 / (n * streams)
        r.on_send(t)
        if i < answered:
            r.record(t, t + 0.0002, t + 0.005, True, None, None)
    r.on_cpu(5.0, cpu)
    return r.take()


def test_workers_section_counts_add_up_and_names_the_worker_that_limited():
    a = _worker_data("h1:10", 500, 0, 2, cpu=35.0)
    b = _worker_data("h2:20", 500, 1, 2, cpu=96.0, answered=480)
    sec = workers_section({"h1:10": a, "h2:20": b}, {"h1:10": 0, "h2:20": 1}, "open")
    rows = {r["name"]: r for r in sec["per_worker"]}
    assert [r["name"] for r in sec["per_worker"]] == ["h1:10", "h2:20"]  # by stream
    assert rows["h1:10"]["completed"] + rows["h2:20"]["completed"] == 980
    assert rows["h1:10"]["problems"] == [] and rows["h2:20"]["problems"] == ["generator_cpu", "schedule_short"]
    assert (
        sec["limited_by"] == "h2:20"
        and "96%" in sec["limited_reason"]
        and "96.0% of its share" in (sec["limited_reason"])
    )
    assert sec["busiest"] == "h2:20"
    healthy = workers_section({"h1:10": a}, {"h1:10": 0}, "open")
    assert healthy["limited_by"] is None and healthy["limited_reason"] is None


def test_a_lost_worker_limits_the_run_before_any_busy_one():
    a = _worker_data("h1:10", 100, 0, 2, cpu=99.0)
    sec = workers_section({"h1:10": a}, {"h1:10": 0, "h2:20": 1}, "open", lost=["h2:20"], late=["h3_abc"])
    assert sec["limited_by"] == "h2:20" and "lost" in sec["limited_reason"]
    row = next(r for r in sec["per_worker"] if r["name"] == "h2:20")
    assert row["problems"] == ["worker_lost"] and row["sent"] == 0  # it sent nothing the master received
    assert sec["joined_late"] == ["h3_abc"] and sec["count"] == 2


def test_a_lost_worker_makes_the_run_invalid_for_the_generators_reason_and_the_document_validates():
    sc = _scenario(duration_s=10, warmup_s=1, slo_p99_ms=50)
    data = RecordData()
    a = _worker_data("h1:10", 400, 0, 2, cpu=20.0)
    data.merge(a)
    res = build_result(data, sc, started_at="2026-12-07T00:00:00+00:00", server={}, machine={}, lost_reason="h2 lost")
    assert res["valid"] is False
    codes = [r["code"] for r in res["invalid_reasons"]]
    assert codes[0] == "worker_lost" and "schedule_short" not in codes  # the short schedule is the loss itself
    assert generator_limited(res)  # a search measures again (with the workers left), never blames the server
    res["workers"] = workers_section({"h1:10": a}, {"h1:10": 0, "h2:20": 1}, "open", lost=["h2:20"])
    validate_document(res)
    nobody = build_result(RecordData(), sc, started_at="x", server={}, machine={}, lost_reason="no workers left")
    assert [r["code"] for r in nobody["invalid_reasons"]] == ["worker_lost"] and generator_limited(nobody)


def test_the_html_report_lists_each_worker_and_the_one_that_limited():
    from loadgen.report.html_sections import _workers_block

    a = _worker_data("h1:10", 100, 0, 2, cpu=30.0)
    sec = workers_section({"h1:10": a}, {"h1:10": 0, "h2:<20>": 1}, "open", lost=["h2:<20>"], late=["h3_x"])
    html = _workers_block(sec)
    assert "<h3>Workers (2)</h3>" in html and "h1:10" in html
    assert "h2:&lt;20&gt;" in html and "<20>" not in html  # names are escaped
    assert "worker_lost" in html and "Limited by worker h2:&lt;20&gt;" in html and "h3_x" in html
    assert _workers_block(None) == ""
