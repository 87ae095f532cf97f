"""The overload benchmark (loadgen.search.overload) without sockets: a simulated server that refuses what exceeds its
capacity, a scripted /metrics, the real build_result / step rows / document / terminal table / HTML section."""

from __future__ import annotations

import itertools

import orjson
import pytest
from rich.console import Console

from loadgen.report.html import render_html
from loadgen.report.terminal_search import overload_table
from loadgen.results.io import load_doc
from loadgen.search.overload import MetricsWatcher, parse_metrics, run_overload
from tests.curves.fakes import CAPACITY_RPS, fake_result

METRICS = """# HELP inferload_queue_depth Requests waiting in the batcher queue.
inferload_queue_depth{model="tiny_classifier"} %d
inferload_queue_depth{model="other"} 99
inferload_inflight_requests{model="tiny_classifier"} %d
inferload_admission_limit{model="tiny_classifier"} 24
process_resident_memory_bytes %e
"""


def test_parse_metrics_picks_the_model_and_the_process():
    m = parse_metrics(METRICS % (3, 7, 2.5e8), "tiny_classifier")
    assert m == {"queue_depth": 3.0, "inflight": 7.0, "admission_limit": 24.0, "rss_bytes": 2.5e8}
    assert parse_metrics("garbage\n", "x") == {}


def overloaded_server(scenario):
    """Serves up to 95% of capacity at full speed and refuses the excess in ~0.4 ms."""
    rate = scenario.rate_rps
    refused = int(round(max(0.0, rate - 0.95 * CAPACITY_RPS) * scenario.duration_s))
    r = fake_result(
        rate,
        duration_s=scenario.duration_s,
        slo_ms=scenario.slo_p99_ms,
        overload=False,
        errors=refused,
        seed=scenario.seed,
        refusal_server_ms=0.4 if refused else None,
    )
    r["server"]["model_config"] = {"dynamic_batching": {"default_queue_policy": {"max_queue_size": 16}}}
    return r


def test_overload_steps_report_goodput_refusals_queue_and_memory(tmp_path, base_scenario):
    depth = itertools.count()
    fetched: list[str] = []

    def fetch(url: str) -> str:
        fetched.append(url)
        k = next(depth)
        return METRICS % (min(k, 16), min(k, 24), 2.0e8 + k * 1e6)

    doc = run_overload(
        base_scenario, overloaded_server, tmp_path, steps=(1.0, 2.0, 3.0), capacity_rps=380.0, slo_ms=50.0, fetch=fetch
    )
    assert fetched and fetched[0] == "http://127.0.0.1:9/metrics"
    assert [s["multiple"] for s in doc["steps"]] == [1.0, 2.0, 3.0]
    s1, s3 = doc["steps"][0], doc["steps"][-1]
    assert s1["refused_rps"] == 0 and s1["goodput_share"] == pytest.approx(1.0, abs=0.02)
    assert s3["offered_rps"] == pytest.approx(1140) and s3["refused_rps"] > 0
    assert s3["goodput_rps"] + s3["refused_rps"] == pytest.approx(1140, rel=0.01)
    assert s3["refusal_server_ms"]["p99"] == pytest.approx(0.4, rel=0.01)
    assert s3["queue_cap"] == 16 and s3["queue_depth_max"] <= 16 and s3["admission_limit"] == 24
    assert s3["rss_growth_mb"] is not None and s3["rss_growth_mb"] > 0
    assert s3["goodput_slo_rps"] is not None and s3["goodput_slo_rps"] <= s3["goodput_rps"]
    on_disk = orjson.loads((tmp_path / "overload.json").read_bytes())
    assert on_disk["kind"] == "overload" and len(on_disk["steps"]) == 3
    assert all((tmp_path / s["file"]).is_file() for s in on_disk["steps"])

    console = Console(record=True, width=200)
    console.print(overload_table(doc))
    text = console.export_text()
    assert "3x" in text and "16" in text and "24" in text
    page = render_html([load_doc(tmp_path)])
    assert (
        "Goodput under overload" in page
        and "refusal p99 ms (server)" in page
        and 'alt="goodput under overload"' in page
    )


def test_watcher_counts_scrape_failures_and_keeps_going():
    calls = itertools.count()

    def flaky(url: str) -> str:
        if next(calls) % 2:
            raise OSError("refused")
        return METRICS % (1, 2, 1e8)

    w = MetricsWatcher("http://127.0.0.1:9", "tiny_classifier", flaky, interval_s=0.01)
    for _ in range(6):
        w.sample()
    s = w.summary()
    assert s["samples"] == 3 and s["scrape_errors"] == 3 and s["queue_depth_max"] == 1.0 and s["rss_growth_mb"] == 0.0
