"""`overload` against a foreign server: Triton-format metrics through an injected fetch (no sockets). The document, the
terminal table and the HTML page must say what the server's metrics could not show, and carry the window figures it
did export (queue and compute ms per request, batch size) with known answers."""

from __future__ import annotations

import itertools

import orjson
import pytest
from rich.console import Console

from loadgen.report.html import render_html
from loadgen.report.terminal_search import overload_table
from loadgen.results.io import load_doc
from loadgen.search.overload import MetricsWatcher, metrics_source, parse_metrics, run_overload
from tests.curves.test_overload import overloaded_server
from tests.loadgen.test_server_metrics import mlserver, triton

MODEL = "mobilenet_v2"


def triton_fetch(fetched: list[str], pending: bool = False):
    k = itertools.count()

    def fetch(url: str) -> str:
        fetched.append(url)
        i = next(k)
        return triton(i, pending=5 + i if pending else None)

    return fetch


def test_overload_against_triton_says_what_it_could_not_see(tmp_path, base_scenario):
    base = base_scenario.model_copy(
        update={"model": MODEL, "target": "http://127.0.0.1:8000", "server_metrics": "http://127.0.0.1:8002/metrics"}
    )
    fetched: list[str] = []
    doc = run_overload(
        base,
        overloaded_server,
        tmp_path,
        steps=(1.0, 2.0),
        capacity_rps=380.0,
        slo_ms=50.0,
        fetch=triton_fetch(fetched),
    )
    assert fetched and set(fetched) == {"http://127.0.0.1:8002/metrics"}
    srv = doc["server_metrics"]
    assert srv["family"] == "triton" and srv["url"] == "http://127.0.0.1:8002/metrics"
    assert srv["unavailable"] == ["rss_mb", "queue_depth", "inflight", "admission_limit"]
    assert "queue depth: not exported by this server (triton)" in srv["notes"]
    assert "admission limit: not exported by this server (triton)" in srv["notes"]
    for step in doc["steps"]:
        sm = step["server_metrics"]
        assert sm["family"] == "triton" and sm["basis"].startswith("window averages")
        f = sm["figures"]  # Triton's page adds the same per-request figures at every scrape: exact means
        assert f["queue_ms_mean"] == pytest.approx(4.0) and f["compute_ms_mean"] == pytest.approx(10.2)
        assert f["batch_size_mean"] == pytest.approx(8.0) and f["requests"] >= 400
        assert step["queue_depth_max"] is None and step["admission_limit"] is None and step["rss_growth_mb"] is None
        assert step["samples"] >= 2 and step["scrape_errors"] == 0
    on_disk = orjson.loads((tmp_path / "overload.json").read_bytes())  # validated against the schema when written
    assert on_disk["server_metrics"]["family"] == "triton" and on_disk["steps"][0]["server_metrics"]["figures"]

    console = Console(record=True, width=200)
    console.print(overload_table(doc))
    text = console.export_text()
    assert "server metrics: triton" in text and "n/e" in text
    assert "queue depth: not exported by this server (triton)" in text
    assert "resident memory: not exported by this server (triton)" in text
    assert "8.00" in text and "10.20" in text  # batch size and compute ms per request, from Triton's counters
    page = render_html([load_doc(tmp_path)])
    assert "not seen in the server&#x27;s metrics: queue depth: not exported by this server (triton)" in page


def test_triton_with_pending_count_shows_the_queue_depth(tmp_path, base_scenario):
    base = base_scenario.model_copy(update={"model": MODEL})
    doc = run_overload(
        base, overloaded_server, tmp_path, steps=(1.0,), capacity_rps=380.0, fetch=triton_fetch([], pending=True)
    )
    step = doc["steps"][0]
    assert step["queue_depth_max"] is not None and step["queue_depth_max"] >= 6
    assert "queue_depth" not in doc["server_metrics"]["unavailable"]
    assert not any(n.startswith("queue depth") for n in doc["server_metrics"]["notes"])


def test_watcher_reads_mlserver_and_forced_family():
    k = itertools.count()
    w = MetricsWatcher("http://h:8080", "iris", lambda u: mlserver(next(k)), url="http://h:8082/metrics")
    assert w.url == "http://h:8082/metrics"
    w.sample()
    w.sample()
    block = w.summary()["server_metrics"]
    assert block["family"] == "mlserver" and block["figures"]["request_ms_mean"] == pytest.approx(25.0)
    assert w.summary()["inflight_max"] == 5.0 and "queue_ms_mean" in block["unavailable"]
    forced = MetricsWatcher("http://h:8080", "iris", lambda u: mlserver(0), family="generic")
    forced.sample()
    assert forced.family == "generic" and "inflight" not in forced.samples[0]


def test_watcher_that_never_read_the_metrics_says_so():
    def down(url: str) -> str:
        raise OSError("connection refused")

    w = MetricsWatcher("http://h:8000", MODEL, down)
    w.sample()
    s = w.summary()
    block = s["server_metrics"]
    assert s["samples"] == 0 and s["scrape_errors"] == 1 and block["family"] is None
    assert block["scrape_error"] == "connection refused"
    assert set(block["unavailable"]) == {"queue_depth", "inflight", "admission_limit", "rss_mb"}


def test_parse_metrics_is_family_aware():
    g = parse_metrics(triton(0, pending=4), MODEL)
    assert g["queue_depth"] == 4.0 and "admission_limit" not in g and "rss_bytes" not in g


def test_metrics_source_follows_the_scenario(base_scenario):
    base = base_scenario.model_copy(update={"server_metrics": "http://127.0.0.1:8002/metrics"})
    url, fetch, note = metrics_source(base, None, None, None, None)
    assert url == "http://127.0.0.1:8002/metrics" and callable(fetch) and note is None
    url, _, _ = metrics_source(base_scenario, lambda u: "", None, None, None)
    assert url == "http://127.0.0.1:9/metrics"
