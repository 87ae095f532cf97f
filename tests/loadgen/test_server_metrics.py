"""Other servers' metrics (loadgen.results.server_metrics, loadgen.results.promtext, loadgen.engine.metrics_scrape):
the text-format parser on tricky input, one adapter per family on realistic pages (Triton 2.x as prometheus-cpp
writes it, MLServer 1.7 as its MultiProcessCollector writes it, KServe's ModelServer, inferload's own page generated
by server/metrics.py), window arithmetic with known answers, family detection, and what each server does not export.
No sockets except the last test, which serves one page on 127.0.0.1 to check the headers a scrape sends."""

from __future__ import annotations

import http.server
import json
import math
import threading

import pytest

from loadgen.engine import metrics_scrape
from loadgen.results import server_metrics as SM
from loadgen.results.promtext import parse, parse_sample

# ------------------------------------------------------------------------------------------------- pages --
TRITON = """# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{{model="mobilenet_v2",version="1"}} {ok}
nv_inference_request_success{{model="other",version="1"}} 50
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{{model="mobilenet_v2",reason="REJECTED",version="1"}} {rej}
nv_inference_request_failure{{model="mobilenet_v2",reason="BACKEND",version="1"}} {backend}
nv_inference_request_failure{{model="other",reason="REJECTED",version="1"}} 9
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{{model="mobilenet_v2",version="1"}} {items}
nv_inference_count{{model="other",version="1"}} 50
# HELP nv_inference_exec_count Number of model executions performed (does not include cached requests)
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{{model="mobilenet_v2",version="1"}} {execs}
nv_inference_exec_count{{model="other",version="1"}} 50
# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds (includes cached requests)
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{{model="mobilenet_v2",version="1"}} {req_us}
nv_inference_request_duration_us{{model="other",version="1"}} 99999999
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds (includes cached requests)
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{{model="mobilenet_v2",version="1"}} {queue_us}
nv_inference_queue_duration_us{{model="other",version="1"}} 99999999
# HELP nv_inference_compute_input_duration_us Cumulative compute input duration in microseconds (does not include cached requests)
# TYPE nv_inference_compute_input_duration_us counter
nv_inference_compute_input_duration_us{{model="mobilenet_v2",version="1"}} {in_us}
# HELP nv_inference_compute_infer_duration_us Cumulative compute inference duration in microseconds (does not include cached requests)
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{{model="mobilenet_v2",version="1"}} {infer_us}
# HELP nv_inference_compute_output_duration_us Cumulative inference compute output duration in microseconds (does not include cached requests)
# TYPE nv_inference_compute_output_duration_us counter
nv_inference_compute_output_duration_us{{model="mobilenet_v2",version="1"}} {out_us}
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.52
# HELP nv_cpu_memory_total_bytes CPU total memory (RAM), in bytes
# TYPE nv_cpu_memory_total_bytes gauge
nv_cpu_memory_total_bytes 8339787776
# HELP nv_cpu_memory_used_bytes CPU used memory (RAM), in bytes
# TYPE nv_cpu_memory_used_bytes gauge
nv_cpu_memory_used_bytes {mem}
"""
PENDING = """# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{{model="mobilenet_v2",version="1"}} {pending}
"""


def triton(k: int, *, pending: int | None = None) -> str:
    """Triton's page after k windows of: 400 successes (16 ms each, 4 ms queued, 0.1 + 10 + 0.1 ms compute) in 50
    executions of 8, 5 rejected and 1 backend failure."""
    n = 1000 + 400 * k
    text = TRITON.format(
        ok=n,
        rej=2 + 5 * k,
        backend=k,
        items=n,
        execs=250 + 50 * k,
        req_us=16_000 * n,
        queue_us=4_000 * n,
        in_us=100 * n,
        infer_us=10_000 * n,
        out_us=100 * n,
        mem=2_000_000_000 + k * 10 * 2**20,
    )
    return text + (PENDING.format(pending=pending) if pending is not None else "")


MLSERVER = """# HELP model_infer_request_success Multiprocess metric
# TYPE model_infer_request_success counter
model_infer_request_success_total{{model="iris",version="v1"}} {ok}
# HELP model_infer_request_failure Multiprocess metric
# TYPE model_infer_request_failure counter
model_infer_request_failure_total{{model="iris",version="v1"}} {bad}
# HELP model_infer_request_duration Multiprocess metric
# TYPE model_infer_request_duration summary
model_infer_request_duration_count{{model="iris",version="v1"}} {n}
model_infer_request_duration_sum{{model="iris",version="v1"}} {dur_s}
# HELP batch_request_queue Multiprocess metric
# TYPE batch_request_queue histogram
batch_request_queue_bucket{{le="1.0",model_name="iris",model_version="v1"}} 10.0
batch_request_queue_bucket{{le="+Inf",model_name="iris",model_version="v1"}} {n}
batch_request_queue_count{{model_name="iris",model_version="v1"}} {n}
batch_request_queue_sum{{model_name="iris",model_version="v1"}} {q_sum}
# HELP parallel_request_queue Multiprocess metric
# TYPE parallel_request_queue histogram
parallel_request_queue_bucket{{le="+Inf"}} {n}
parallel_request_queue_count {n}
parallel_request_queue_sum {w_sum}
# HELP rest_server_requests Multiprocess metric
# TYPE rest_server_requests counter
rest_server_requests_total{{app_name="mlserver",method="POST",path="/v2/models/iris/infer",status_code="200"}} {ok}
# HELP rest_server_requests_in_progress Multiprocess metric
# TYPE rest_server_requests_in_progress gauge
rest_server_requests_in_progress{{app_name="mlserver",method="POST"}} 4.0
rest_server_requests_in_progress{{app_name="mlserver",method="GET"}} 1.0
"""


def mlserver(k: int) -> str:
    """MLServer 1.7 (parallel workers: no process_* series) after k windows of 200 successes and 2 failures, 25 ms
    each, 3 requests in the adaptive-batching queue on arrival, 2 in flight to the workers."""
    n = 101 + 202 * k
    return MLSERVER.format(
        ok=100 + 200 * k, bad=1 + 2 * k, n=n, dur_s=0.025 * n, q_sum=100 + 606 * k, w_sum=50 + 404 * k
    )


KSERVE = """# HELP request_predict_seconds predict request latency
# TYPE request_predict_seconds histogram
request_predict_seconds_bucket{{le="0.005",model_name="sklearn-iris"}} 0.0
request_predict_seconds_bucket{{le="+Inf",model_name="sklearn-iris"}} {n}
request_predict_seconds_count{{model_name="sklearn-iris"}} {n}
request_predict_seconds_sum{{model_name="sklearn-iris"}} {s}
request_predict_seconds_created{{model_name="sklearn-iris"}} 1.7e9
# HELP request_preprocess_seconds pre-process request latency
# TYPE request_preprocess_seconds histogram
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes {rss}
"""


def inferload_pages() -> tuple[str, str]:
    """Two scrapes of a real inferload registry (server/metrics.py): between them, 20 successes (4 ms queued, 10 ms
    compute, 16 ms in the server), 5 rejected, 5 batches of 4 items on 2 instances busy 0.5 s each."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    from server.metrics import ServerMetrics

    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    sm = ServerMetrics(reg)
    sm.add_model("m", 2)
    sm.add_model("other", 1)
    sm.admission_limit.labels("m").set(24)
    sm.track_admission("m", lambda: 7)
    mm, ob = sm.model("m"), sm.observer("m")
    mm.outcome["success"].inc(3)
    mm.queue_duration.observe(1.0)  # history before the window must not leak into it
    before = sm.expose()[0].decode()
    for i in range(20):
        mm.outcome["success"].inc()
        mm.queue_duration.observe(0.004)
        mm.compute_duration.observe(0.010)
        mm.request_duration.observe(0.016)
        if i % 4 == 0:
            ob.on_batch(i % 2, 4, 4, 0.2)
    mm.outcome["rejected"].inc(5)
    ob.on_queue_depth(5)
    return before, sm.expose()[0].decode()


# ----------------------------------------------------------------------------------------------- parsing --
def test_parser_reads_tricky_label_values_timestamps_and_special_numbers():
    text = r"""# HELP weird A help line with a \\ backslash and \n newline escape
# TYPE weird gauge
weird{path="/a,b{c}=d",msg="say \"hi\" \\ back",nl="line1\nline2",empty=""} 1.5 1700000000000
weird{ a = "1" , } NaN
inf_up +Inf
inf_down -Inf
sci 2.5e+07
lat_bucket{le="0.1"} 8 # {trace_id="abc"} 0.05 1.6e9
# EOF
"""
    snap = parse(text)
    w = snap.by_name["weird"]
    assert w[0].labels == {"path": "/a,b{c}=d", "msg": 'say "hi" \\ back', "nl": "line1\nline2", "empty": ""}
    assert w[0].value == 1.5 and w[0].timestamp == 1.7e12
    assert w[1].labels == {"a": "1"} and math.isnan(w[1].value)
    assert snap.by_name["inf_up"][0].value == math.inf and snap.by_name["inf_down"][0].value == -math.inf
    assert snap.by_name["sci"][0].value == 2.5e7 and snap.by_name["lat_bucket"][0].value == 8
    assert snap.types == {"weird": "gauge"} and snap.skipped == 0


@pytest.mark.parametrize(
    "line",
    ['bad{a="1" 2', "bad{a=1} 2", 'bad{a="1"}', "bad 1 2 3", "bad abc", "bad 1_000", '{a="1"} 2', 'bad{a="x\\'],
)
def test_parser_skips_malformed_lines_and_keeps_the_rest(line):
    snap = parse(f"good 1\n{line}\ngood 2\n")
    assert parse_sample(line) is None
    assert [s.value for s in snap.by_name["good"]] == [1.0, 2.0] and snap.skipped == 1


def test_nan_series_do_not_count_as_exported():
    snap = parse('process_resident_memory_bytes NaN\nnv_inference_request_success{model="m"} 3\n')
    assert "rss_bytes" not in SM.read(snap, "m")


# ------------------------------------------------------------------------------------------------ families --
@pytest.mark.parametrize(
    ("text", "family"),
    [
        (triton(0), "triton"),
        (mlserver(0), "mlserver"),
        (KSERVE.format(n=1, s=0.1, rss=1e8), "kserve"),
        (inferload_pages()[0], "inferload"),
        ("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.2\n", "generic"),
        # a labelled KServe family that served nothing yet: only its TYPE line is there
        ("# TYPE request_predict_seconds histogram\n", "kserve"),
    ],
)
def test_family_is_detected_from_the_series_present(text, family):
    assert SM.detect_family(parse(text)) == family


# ----------------------------------------------------------------------------------------- window figures --
def test_triton_window_known_answers_and_what_it_does_not_export():
    w = SM.window(parse(triton(1)), parse(triton(2)), "mobilenet_v2", window_s=10.0)
    f = w["figures"]
    assert w["family"] == "triton" and w["basis"] == SM.BASIS
    assert f["requests"] == 400 and f["failures"] == 6  # 5 REJECTED + 1 BACKEND, summed over `reason`
    assert f["request_rate_rps"] == pytest.approx(40.6)
    assert f["queue_ms_mean"] == pytest.approx(4.0) and f["compute_ms_mean"] == pytest.approx(10.2)
    assert f["request_ms_mean"] == pytest.approx(16.0) and f["batch_size_mean"] == pytest.approx(8.0)
    assert f["rss_mb"] is None and f["system_memory_used_mb"] > 1000
    assert w["unavailable"] == ["rss_mb", "queue_depth", "inflight", "admission_limit"]
    lines = SM.unavailable_lines(w["unavailable"], w["reasons"])
    assert "queue depth: not exported by this server (triton)" in lines
    assert "resident memory: not exported by this server (triton)" in lines
    assert "machine" in w["caveat"]


def test_triton_cache_hits_have_no_compute_time():
    """core src/infer_stats.cc: a cache hit counts as a success with queue time but no compute time."""
    hits = '# TYPE nv_cache_num_hits_per_model counter\nnv_cache_num_hits_per_model{{model="mobilenet_v2",version="1"}} {}\n'
    w = SM.window(parse(triton(1) + hits.format(0)), parse(triton(2) + hits.format(200)), "mobilenet_v2")
    assert w["figures"]["compute_ms_mean"] == pytest.approx(10.2 * 2)  # the compute of 400 requests over 200
    assert w["figures"]["queue_ms_mean"] == pytest.approx(4.0)


def test_triton_pending_count_is_the_queue_depth_when_exported():
    w = SM.window(parse(triton(1, pending=3)), parse(triton(2, pending=11)), "mobilenet_v2", window_s=10.0)
    assert w["gauges"]["queue_depth"] == {"start": 3.0, "end": 11.0}
    assert "queue_depth" not in w["unavailable"] and "inflight" in w["unavailable"]


def test_mlserver_window_known_answers():
    w = SM.window(parse(mlserver(1)), parse(mlserver(2)), "iris", window_s=20.0)
    f = w["figures"]
    assert w["family"] == "mlserver"
    assert (f["requests"], f["failures"]) == (200, 2) and f["request_rate_rps"] == pytest.approx(10.1)
    assert f["request_ms_mean"] == pytest.approx(25.0)
    assert f["queue_depth_mean"] == pytest.approx(3.0) and f["worker_inflight_mean"] == pytest.approx(2.0)
    assert w["gauges"]["inflight"] == {"start": 5.0, "end": 5.0}  # every REST request in progress, server-wide
    gone = ["queue_ms_mean", "compute_ms_mean", "batch_size_mean", "rss_mb", "queue_depth", "admission_limit"]
    assert w["unavailable"] == gone
    assert w["reasons"]["compute_ms_mean"] == "not exported by this server (mlserver)"


def test_kserve_window_reads_the_predict_histogram():
    before = parse(KSERVE.format(n=10, s=0.5, rss=100 * 2**20))
    after = parse(KSERVE.format(n=110, s=0.5 + 100 * 0.012, rss=103 * 2**20))
    w = SM.window(before, after, "sklearn-iris", window_s=4.0)
    f = w["figures"]
    assert w["family"] == "kserve" and f["compute_ms_mean"] == pytest.approx(12.0) and f["requests"] == 100
    assert f["rss_mb"] == 103.0 and f["rss_growth_mb"] == 3.0 and "failures" in w["unavailable"]


def test_inferload_window_from_a_real_registry():
    before, after = inferload_pages()
    w = SM.window(parse(before), parse(after), "m", window_s=2.0)
    f = w["figures"]
    assert w["family"] == "inferload" and w["unavailable"] == []
    assert (f["requests"], f["failures"]) == (20, 5) and f["request_rate_rps"] == pytest.approx(12.5)
    assert f["queue_ms_mean"] == pytest.approx(4.0) and f["compute_ms_mean"] == pytest.approx(10.0)
    assert f["request_ms_mean"] == pytest.approx(16.0) and f["batch_size_mean"] == pytest.approx(4.0)
    assert f["instance_utilisation"] == pytest.approx(1.0 / (2.0 * 2))  # 5 x 0.2 s busy over 2 instances x 2 s
    assert f["rss_mb"] > 0
    assert w["gauges"]["queue_depth"]["end"] == 5.0 and w["gauges"]["inflight"]["end"] == 7.0
    assert w["gauges"]["admission_limit"]["end"] == 24.0
    # the overload watcher's gauges from the same page
    g = SM.gauges(parse(after), "m")
    assert (g["queue_depth"], g["inflight"], g["admission_limit"]) == (5.0, 7.0, 24.0) and g["rss_bytes"] > 0


def test_generic_server_gives_memory_and_cpu_and_lists_the_rest():
    page = "process_resident_memory_bytes {}\nprocess_cpu_seconds_total {}\n"
    w = SM.window(parse(page.format(5e8, 10.0)), parse(page.format(5e8 + 2**20, 11.5)), "m", window_s=3.0)
    assert w["family"] == "generic" and w["figures"]["process_cpu_percent"] == pytest.approx(50.0)
    assert w["figures"]["rss_growth_mb"] == 1.0
    assert set(w["unavailable"]) == set(SM.FIGURES + SM.GAUGES) - {"rss_mb"}


def test_wrong_model_is_said_once_with_the_models_the_server_has():
    w = SM.window(parse(triton(1)), parse(triton(2)), "nope", window_s=1.0)
    assert "requests" in w["unavailable"] and "queue_ms_mean" in w["unavailable"]
    lines = SM.unavailable_lines(w["unavailable"], w["reasons"])
    model_lines = [x for x in lines if "no series for model 'nope'" in x]
    assert len(model_lines) == 1 and "mobilenet_v2, other" in model_lines[0] and "queue time" in model_lines[0]


def test_no_requests_and_restarted_counters_are_said_not_hidden():
    same = SM.window(parse(triton(2)), parse(triton(2)), "mobilenet_v2", window_s=5.0)
    assert same["figures"]["requests"] == 0 and same["figures"]["queue_ms_mean"] is None
    assert same["reasons"]["queue_ms_mean"] == "no requests completed in the window"
    back = SM.window(parse(triton(3)), parse(triton(0)), "mobilenet_v2", window_s=5.0)
    assert back["figures"]["requests"] is None and "restarted" in back["reasons"]["requests"]
    assert "requests" not in back["unavailable"]


def test_window_seconds_from_the_scrape_times():
    w = SM.window(parse(triton(0), t_s=100.0), parse(triton(1), t_s=104.0), "mobilenet_v2")
    assert w["window_s"] == 4.0 and w["figures"]["request_rate_rps"] == pytest.approx(406 / 4)


# ------------------------------------------------------------------------------------------- result block --
def test_server_metrics_section_is_small_json_and_redacts_the_url():
    sec = SM.server_metrics_section(
        triton(0), triton(1), "mobilenet_v2", "http://u:pw@h:8002/metrics?token=abc", window_s=10.0
    )
    assert sec["url"] == "http://h:8002/metrics?<redacted>"
    assert sec["family"] == "triton" and sec["window_s"] == 10.0 and sec["basis"] == SM.BASIS
    assert sec["figures"]["batch_size_mean"] == 8.0 and "queue_depth" in sec["unavailable"]
    encoded = json.dumps(sec)
    assert len(encoded) < 3000 and "pw" not in encoded and "abc" not in encoded


def test_server_metrics_section_says_when_the_metrics_could_not_be_read():
    sec = SM.server_metrics_section(None, triton(1), "m", "http://h/metrics", error="HTTP 404 from http://h/metrics")
    assert sec["error"] == "HTTP 404 from http://h/metrics" and sec["figures"] == {}
    assert set(sec["unavailable"]) == set(SM.FIGURES + SM.GAUGES)
    json.dumps(sec)


def test_forced_family_overrides_detection():
    w = SM.window(parse(triton(0)), parse(triton(1)), "mobilenet_v2", window_s=1.0, family="generic")
    assert w["family"] == "generic" and w["figures"]["requests"] is None


# -------------------------------------------------------------------------------------------- the scraper --
def test_scrape_never_raises_and_says_why():
    def refused(url: str) -> str:
        raise metrics_scrape.ScrapeError(f"cannot read {url}: connection refused")

    s = metrics_scrape.scrape("http://h:8002/metrics", fetch=refused)
    assert not s.ok and s.error == "cannot read http://h:8002/metrics: connection refused"
    s = metrics_scrape.scrape("http://h:8000/metrics", fetch=lambda u: "<html><body>Not Found</body></html>")
    assert not s.ok and "without any Prometheus sample" in s.error
    s = metrics_scrape.scrape("http://h:8002/metrics", fetch=lambda u: triton(0))
    assert s.ok and s.error is None and s.text == triton(0)


def test_metrics_source_sends_the_targets_headers_only_to_its_host():
    from loadgen.engine.scenario import Scenario

    base = dict(model="m", mode="open", rate_rps=1, headers=["Authorization: Bearer s3cret", "Host: api.example"])
    same = metrics_scrape.source_for(
        Scenario(target="http://127.0.0.1:8000", server_metrics="http://127.0.0.1:8002/metrics", **base)
    )
    assert same.url == "http://127.0.0.1:8002/metrics" and same.headers == {"Authorization": "Bearer s3cret"}
    other = metrics_scrape.source_for(
        Scenario(target="http://127.0.0.1:8000", server_metrics="http://metrics.example:8002/metrics", **base)
    )
    assert other.headers == {} and "another host" in (other.note or "")
    default = metrics_scrape.source_for(Scenario(target="http://127.0.0.1:8000/serving/", **base))
    assert default.url == "http://127.0.0.1:8000/serving/metrics"
    assert default.headers == {"Authorization": "Bearer s3cret", "Host": "api.example"}


def test_window_scrape_gives_the_run_results_block():
    pages = iter([triton(1), triton(2)])
    src = metrics_scrape.MetricsSource("http://h:8002/metrics", fetcher=lambda u: next(pages))
    ws = metrics_scrape.WindowScrape(src)
    assert not ws.started
    ws.start()
    ws.end()
    sec = ws.section("mobilenet_v2")
    assert sec["family"] == "triton" and sec["figures"]["queue_ms_mean"] == pytest.approx(4.0)
    assert sec["window_s"] is not None and sec["window_s"] >= 0 and "error" not in sec
    json.dumps(sec)

    def down(url: str) -> str:
        raise metrics_scrape.ScrapeError("cannot read http://h:8002/metrics: connection refused")

    ws = metrics_scrape.WindowScrape(metrics_scrape.MetricsSource("http://h:8002/metrics", fetcher=down))
    ws.start()
    ws.end()
    sec = ws.section("mobilenet_v2")
    assert sec["error"] == "cannot read http://h:8002/metrics: connection refused" and sec["figures"] == {}
    never = metrics_scrape.WindowScrape(metrics_scrape.MetricsSource("http://h/metrics", fetcher=down)).section("m")
    assert "not reached" in never["error"]


def test_fetch_sends_headers_and_reports_http_errors():
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            body = triton(0).encode() if self.path == "/metrics" else b"not here"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        s = metrics_scrape.scrape(base + "/metrics", headers={"Authorization": "Bearer t"}, timeout_s=2)
        assert s.ok and SM.detect_family(parse(s.text)) == "triton"
        assert seen[-1].get("Authorization") == "Bearer t"
        s = metrics_scrape.scrape(base + "/v2/metrics", timeout_s=2)
        assert not s.ok and s.error.startswith("HTTP 404") and "8002" in s.error
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(timeout=2)


def test_summary_lines_label_window_averages_and_say_what_is_missing():
    from loadgen.report.server_metrics_view import summary_lines

    sec = {
        "url": "http://h:8002/metrics",
        "family": "triton",
        "window_s": 10.0,
        "figures": {"queue_ms_mean": 1.5, "compute_ms_mean": 4.0, "batch_size_mean": 3.2},
        "unavailable": ["rss_mb"],
        "reasons": {"rss_mb": "not exported by this server (triton)"},
    }
    lines = summary_lines(sec)
    assert lines[0].startswith("server metrics (triton, http://h:8002/metrics), window averages over 10 s")
    assert "queue 1.5 ms" in lines[0] and "compute 4 ms" in lines[0] and "batch 3.2 items" in lines[0]
    assert any("not exported by this server (triton)" in x for x in lines[1:])
    assert summary_lines(None) == []
    failed = summary_lines({"url": "u", "family": None, "error": "HTTP 404", "figures": {}})
    assert failed == ["server metrics (unknown, u): HTTP 404"]
