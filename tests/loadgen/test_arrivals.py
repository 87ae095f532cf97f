"""Real traffic shapes, pure: trace replay follows the trace, streams interleave to the whole trace, ramps follow
their line, bursts stay inside their on periods; the Scenario fields that select them are validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadgen.engine.arrivals import (
    ArrivalError,
    RateProfile,
    burst_profile,
    expected_per_second,
    offered_per_second,
    parse_ramp,
    parse_trace,
    parse_trace_spec,
    profile_offsets,
    ramp_profile,
    read_trace,
    scale_trace,
    trace_offsets,
    trace_rate,
)
from loadgen.engine.scenario import Scenario, ScenarioError
from loadgen.engine.schedule import arrival_offsets, constant_offsets, scenario_offsets

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "traces" / "bursty.txt"
TRACE = [0.0, 0.1, 0.15, 0.5, 0.52, 0.9, 1.4, 2.0, 2.05, 3.0]


def test_plain_and_csv_traces_parse_to_offsets_from_zero():
    assert parse_trace("# comment\n\n5.0\n5.5\n7\n") == [0.0, 0.5, 2.0]
    csv = "id,timestamp,size\n1,1700000000.25,3\n2,1700000001.75,4\n3,1700000000.00,1\n"
    assert parse_trace(csv) == [0.0, 0.25, 1.75]  # absolute Unix times, out of order: sorted and shifted
    assert parse_trace("a,when\n1,10\n2,12\n", column="when") == [0.0, 2.0]
    assert parse_trace("a,when\n1,10\n2,13\n", column="1") == [0.0, 3.0]
    assert parse_trace("secs\n3\n4.5\n") == [0.0, 1.5]  # one column: no name needed
    with pytest.raises(ArrivalError, match="which column.*trace:FILE:COLUMN"):
        parse_trace("a,b\n1,2\n")
    with pytest.raises(ArrivalError, match="no column 'x'.*a, b"):
        parse_trace("a,b\n1,2\n", column="x")
    with pytest.raises(ArrivalError, match="entry 2 .*'abc'"):
        parse_trace("1\nabc\n")
    with pytest.raises(ArrivalError, match="row 3, column 't'"):
        parse_trace("t\n1\nx\n")
    with pytest.raises(ArrivalError, match="no timestamps"):
        parse_trace("# nothing\n")


def test_trace_spec_parsing():
    assert parse_trace_spec("trace:data/t.csv") == parse_trace_spec("trace:data/t.csv")
    assert parse_trace_spec("trace:data/t.csv").column is None
    s = parse_trace_spec("trace:data/t.csv:ts")
    assert (str(s.path), s.column) == ("data/t.csv", "ts")
    assert parse_trace_spec("trace:t.csv:2").column == "2"
    with pytest.raises(ArrivalError, match="trace:FILE"):
        parse_trace_spec("trace:")


def test_scheduled_instants_follow_the_trace_exactly_after_scaling():
    assert trace_rate(TRACE) == pytest.approx(9 / 3.0)
    assert trace_offsets(scale_trace(TRACE, speedup=2.0), 100.0) == pytest.approx([t / 2 for t in TRACE], abs=0)
    at6 = scale_trace(TRACE, rate_rps=6.0)  # twice the trace's rate: half the gaps
    assert at6 == pytest.approx([t / 2 for t in TRACE], rel=1e-12)
    assert trace_rate(at6) == pytest.approx(6.0)
    assert trace_offsets(TRACE, 1.4) == [0.0, 0.1, 0.15, 0.5, 0.52, 0.9]  # instants at or past the end are not sent
    with pytest.raises(ArrivalError, match="not both"):
        scale_trace(TRACE, speedup=2, rate_rps=3)


@pytest.mark.parametrize("streams", [1, 2, 3, 4])
def test_streams_interleave_to_the_whole_trace(streams):
    parts = [trace_offsets(TRACE, 10.0, stream=k, streams=streams) for k in range(streams)]
    assert sorted(x for p in parts for x in p) == TRACE
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_example_trace_replays_through_the_schedule_dispatch():
    recorded = [float(x) for x in EXAMPLE.read_text().split("\n") if x and not x.startswith("#")]
    assert 300 <= len(recorded) <= 800 and recorded[0] == 0.0
    whole = arrival_offsets(f"trace:{EXAMPLE}", None, 1000.0, 1, speedup=4.0)
    assert whole == pytest.approx([t / 4 for t in recorded], abs=1e-12)
    parts = [arrival_offsets(f"trace:{EXAMPLE}", None, 1000.0, 1, stream=k, streams=3, speedup=4.0) for k in range(3)]
    assert sorted(x for p in parts for x in p) == whole
    per_s = offered_per_second(read_trace(parse_trace_spec(f"trace:{EXAMPLE}")), 60.0)
    assert min(per_s[10:13]) > 2 * max(per_s[14:29])  # the bursts are visible in the timeline


def test_ramp_per_second_counts_follow_the_line():
    start, end, dur = parse_ramp("10:200:60s")
    assert (start, end, dur) == (10.0, 200.0, 60.0)
    prof = ramp_profile(start, end, dur, hold_s=5.0)
    t = profile_offsets(prof, 65.0, "constant", seed=0)
    counts = offered_per_second(t, 65.0)
    line = expected_per_second(prof, 65.0)
    assert line[:5] == pytest.approx([10.0] * 5)
    assert line[5] == pytest.approx(10 + 190 * 0.5 / 60)  # mid-second rate of the first ramp second
    assert all(abs(c - e) <= 1.0 for c, e in zip(counts, line))  # constant process: exact to the rounding
    assert len(t) == int(np.ceil(prof.cumulative(65.0)))
    # instants are the inverse of the cumulative intensity: L(t_j) == j
    assert [prof.cumulative(x) for x in t[::97]] == pytest.approx(list(range(0, len(t), 97)), abs=1e-6)
    # Poisson on the same ramp: counts per 10 s follow the line within noise
    tp = profile_offsets(prof, 65.0, "poisson", seed=4)
    for a in range(5, 65, 10):
        exp = prof.cumulative(a + 10.0) - prof.cumulative(float(a))
        got = sum(a <= x < a + 10 for x in tp)
        assert abs(got - exp) < 4 * np.sqrt(exp)
    assert parse_ramp("5:50:2m") == (5.0, 50.0, 120.0)
    for bad in ("10:200", "a:b:c", "10:200:0s", "0:0:10"):
        with pytest.raises(ArrivalError, match="ramp"):
            parse_ramp(bad)


def test_constant_profile_matches_the_constant_schedule_and_streams_interleave():
    flat = RateProfile((0.0,), (300.0,))
    assert profile_offsets(flat, 5.0, "constant", 0) == constant_offsets(300, 5.0)
    prof = ramp_profile(0.0, 100.0, 10.0)
    whole = profile_offsets(prof, 10.0, "constant", 0)
    parts = [profile_offsets(prof, 10.0, "constant", 0, stream=k, streams=3) for k in range(3)]
    assert sorted(x for p in parts for x in p) == whole
    ps = [profile_offsets(prof, 10.0, "poisson", 7, stream=k, streams=2) for k in range(2)]
    assert ps[0] != ps[1] and all(b > a for a, b in zip(ps[0], ps[0][1:]))


def test_burst_arrivals_stay_inside_on_periods():
    prof = burst_profile(100.0, on_s=2.0, off_s=3.0, horizon_s=30.0)
    t = profile_offsets(prof, 30.0, "poisson", seed=3)
    assert all((x % 5.0) < 2.0 for x in t)
    assert len(t) == pytest.approx(100 * 2 * 6, rel=0.1)  # mean rate = rate x on / (on + off)
    per_s = offered_per_second(t, 30.0)
    assert all(per_s[s] == 0 for s in range(30) if s % 5 >= 2)
    via = arrival_offsets("burst", 100.0, 30.0, 3, burst_on_s=2.0, burst_off_s=3.0)
    assert via == t


def test_scenario_validates_the_new_arrival_fields(tmp_path):
    base = {"target": "http://127.0.0.1:8000", "model": "m"}
    sc = Scenario.build({**base, "ramp": "10:50:20s", "arrival": "constant", "warmup_s": 2, "duration_s": 20})
    assert sc.mode == "open"
    t = scenario_offsets(sc)
    assert offered_per_second(t, 22.0)[:2] == [10, 10]  # the warm-up runs at the start rate
    assert offered_per_second(t, 22.0)[-1] == pytest.approx(49, abs=1)
    tr = Scenario.build({**base, "arrival": f"trace:{EXAMPLE}", "speedup": 2.0, "duration_s": 10, "warmup_s": 0})
    assert tr.mode == "open" and scenario_offsets(tr) == arrival_offsets(tr.arrival, None, 10.0, 1, speedup=2.0)
    assert Scenario.build({**base, "arrival": "burst", "rate_rps": 50, "burst_on_s": 0.5}).burst_on_s == 0.5
    for data, match in [
        ({"arrival": "bursty", "rate_rps": 5}, "expected poisson \\| constant \\| burst \\| trace"),
        ({"arrival": f"trace:{tmp_path}/missing.txt"}, "missing.txt not found"),
        ({"ramp": "10:200"}, "START:END:DURATION"),
        ({"ramp": "10:20:5s", "rate_rps": 5}, "ramp sets the rate"),
        ({"rate_rps": 5, "speedup": 2}, "speedup"),
        ({"arrival": f"trace:{EXAMPLE}", "rate_rps": 5, "speedup": 2}, "not together with rate_rps"),
        ({"arrival": "burst", "users": 2}, "need mode 'open'"),
        ({"arrival": "burst", "rate_rps": 5, "burst_on_s": 0}, "burst_on_s"),
    ]:
        with pytest.raises(ScenarioError, match=match):
            Scenario.build({**base, **data})
