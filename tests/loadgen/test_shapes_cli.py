"""Traffic shapes through `inferload run` on a stand-in server (generator in a subprocess): the scheduled instants
follow the trace, the ramp and the bursts; the HTML report of a shaped run shows its per-second timeline."""

from __future__ import annotations

from pathlib import Path

from loadgen.engine.arrivals import offered_per_second, parse_trace_spec, read_trace, scale_trace
from loadgen.report.html import render_html
from loadgen.results.io import load_doc

ROOT = Path(__file__).resolve().parents[2]
BURSTY = ROOT / "examples" / "traces" / "bursty.txt"


def _offered(result: dict) -> list[int]:
    rows = sorted(result["timeseries"], key=lambda r: r["t_s"])
    end = int(result["warmup_s"] + result["duration_s"])
    by_s = {r["t_s"]: r["offered"] for r in rows}
    return [int(by_s.get(s, 0)) for s in range(end)]


def test_trace_replay_follows_the_trace_second_by_second(standin, generate, tmp_path):
    srv = standin()
    res = generate(
        "--target",
        srv.url,
        "--model",
        "m",
        "--arrival",
        f"trace:{BURSTY}",
        "--speedup",
        "10",
        "--warmup",
        "1",
        "--duration",
        "5",
    )
    assert res["mode"] == "open" and res["scenario"]["speedup"] == 10 and res["dropped"] == 0
    want = offered_per_second(scale_trace(read_trace(parse_trace_spec(f"trace:{BURSTY}")), speedup=10), 6.0)
    assert _offered(res) == want
    assert max(want) > 3 * min(want)  # the bursts are in the schedule, not smoothed away
    assert res["completed"] + res["failed"] == sum(want[1:])  # requests scheduled in the measured window
    doc_path = tmp_path / "trace.json"
    doc_path.write_bytes((tmp_path / "result-0.json").read_bytes())
    page = render_html([load_doc(doc_path)])
    assert "replay of trace:" in page and 'alt="timeline"' in page


def test_trace_rescaled_by_rate_and_a_ramp(standin, generate):
    srv = standin()
    res = generate(
        "--target",
        srv.url,
        "--model",
        "m",
        "--arrival",
        f"trace:{BURSTY}",
        "--rate",
        "60",
        "--warmup",
        "1",
        "--duration",
        "4",
    )
    offsets = scale_trace(read_trace(parse_trace_spec(f"trace:{BURSTY}")), rate_rps=60)
    assert _offered(res) == offered_per_second(offsets, 5.0)
    ramp = generate(
        "--target",
        srv.url,
        "--model",
        "m",
        "--ramp",
        "20:200:4s",
        "--arrival",
        "constant",
        "--warmup",
        "1",
        "--duration",
        "4",
    )
    per_s = _offered(ramp)
    assert per_s[0] == 20 and per_s == sorted(per_s) and per_s[-1] >= 150  # warm-up at the start rate, then rising
