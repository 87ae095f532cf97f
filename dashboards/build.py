"""Generate the Grafana dashboards in this folder (stdlib only):  python dashboards/build.py

The JSON files are committed (Grafana provisions them from deploy/grafana/provisioning/dashboards/); edit this
script, not the JSON, and re-run it. tests/deploy checks the JSON is what this script produces and that every
panel query returns data from a real Prometheus scraping a real server and load generator.

Conventions:
- datasource: a `datasource` template variable (type prometheus) defaulting to uid DS_UID, the uid that
  deploy/grafana/provisioning/datasources/prometheus.yml gives the compose stack's Prometheus;
- rates use $__rate_interval; latency percentiles use histogram_quantile over `sum by (le, ...)`;
- the server's per-instance counter has a label named `instance`, stored by Prometheus as `exported_instance`
  (the target keeps `instance`), see deploy/prometheus.yml.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DS_UID = "inferload-prometheus"
DS = {"type": "prometheus", "uid": "${datasource}"}
HERE = Path(__file__).resolve().parent


class Board:
    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def _place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def add(self, kind: str, title: str, targets: list[tuple[str, str]], *, w: int = 12, h: int = 8,
            unit: str = "short", description: str = "", max_: float | None = None, stack: bool = False,
            heatmap: bool = False, decimals: int | None = None) -> None:
        refs = "ABCDEFGHIJ"
        tgts = []
        for i, (expr, legend) in enumerate(targets):
            t = {"datasource": DS, "refId": refs[i], "expr": expr, "legendFormat": legend, "range": True,
                 "instant": False, "editorMode": "code"}
            if heatmap:
                t["format"] = "heatmap"
            tgts.append(t)
        defaults: dict = {"unit": unit, "color": {"mode": "palette-classic"}, "custom": {}}
        if max_ is not None:
            defaults["max"] = max_
            defaults["min"] = 0
        if decimals is not None:
            defaults["decimals"] = decimals
        panel: dict = {"type": kind, "title": title, "id": self._id(), "datasource": DS, "description": description,
                       "gridPos": self._place(w, h), "targets": tgts,
                       "fieldConfig": {"defaults": defaults, "overrides": []}, "options": {}}
        if kind == "timeseries":
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if not stack else 40,
                                  "showPoints": "never", "spanNulls": False,
                                  "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
            panel["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
                                "tooltip": {"mode": "multi", "sort": "desc"}}
        elif kind == "stat":
            defaults["color"] = {"mode": "thresholds"}
            defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
            panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                                "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                                "orientation": "auto"}
        elif kind == "heatmap":
            panel["options"] = {"calculate": False, "yAxis": {"axisPlacement": "left", "unit": unit},
                                "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                                                        "exponent": 0.5, "fill": "dark-orange", "steps": 64},
                                "rowsFrame": {"layout": "le"}, "tooltip": {"show": True, "yHistogram": True},
                                "legend": {"show": True}, "filterValues": {"le": 1e-9}}
            for t in tgts:
                t["legendFormat"] = "{{le}}"
        self.panels.append(panel)


def ds_var() -> dict:
    return {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {"selected": True, "text": "Prometheus", "value": DS_UID}, "hide": 0, "refresh": 1,
            "regex": "", "options": [], "includeAll": False, "multi": False}


def query_var(name: str, label: str, query: str) -> dict:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-var"},
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 1, "hide": 0,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "regex": ""}


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict], links: list[dict]) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["inferload"],
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"}, "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]},
        "timezone": "", "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                                  "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                                  "type": "dashboard"}]},
        "links": links,
        "templating": {"list": variables},
        "panels": board.panels,
        "__inputs": [], "__requires": [],
    }


RI = "$__rate_interval"
OK = ', outcome="success"'
NOT_OK = ', outcome!="success"'
FAIL = ', outcome="failure"'
PROTO = ', protocol=~"$protocol"'  # the request metrics' front end: http | grpc (a bounded label)
REQUEST_METRICS = (
    "inferload_requests_total",
    "inferload_request_duration_seconds",
    "inferload_queue_duration_seconds",
    "inferload_preprocess_duration_seconds",
    "inferload_compute_duration_seconds",
)


def server_dashboard() -> dict:
    sel = 'model=~"$model", instance=~"$target"'
    b = Board()

    def rate(metric: str, extra: str = "") -> str:
        proto = PROTO if metric.startswith(REQUEST_METRICS) else ""
        return f"rate({metric}{{{sel}{proto}{extra}}}[{RI}])"

    def quantile(q: float, metric: str, by: str = "model") -> str:
        return f"histogram_quantile({q}, sum by (le, {by}) ({rate(metric + '_bucket')}))"

    def mean(metric: str, by: str = "model") -> str:
        return f"sum by ({by}) ({rate(metric + '_sum')}) / sum by ({by}) ({rate(metric + '_count')})"

    b.row("Overview")
    b.add("stat", "Successful requests/s", [(f'sum({rate("inferload_requests_total", OK)})', "req/s")],
          w=4, h=4, unit="reqps", decimals=1)
    b.add("stat", "Non-success ratio", [(f'sum({rate("inferload_requests_total", NOT_OK)}) / sum({rate("inferload_requests_total")})', "ratio")],
          w=4, h=4, unit="percentunit", decimals=2, description="rejected + timeout + invalid + error + cancelled over all requests.")
    b.add("stat", "p99 server latency", [(f"histogram_quantile(0.99, sum by (le) ({rate('inferload_request_duration_seconds_bucket')}))", "p99")],
          w=4, h=4, unit="s", description="All selected models together; per model below.")
    b.add("stat", "Items/s", [(f"sum({rate('inferload_inference_items_total')})", "items/s")], w=4, h=4, unit="short", decimals=1)
    b.add("stat", "Models ready", [(f"sum(inferload_model_ready{{{sel}}})", "ready")], w=4, h=4, decimals=0)
    b.add("stat", "Servers up", [('sum(up{job="inferload-server", instance=~"$target"})', "up")], w=4, h=4, decimals=0,
          description="Server replicas Prometheus scraped successfully.")

    b.row("Throughput and latency")
    b.add("timeseries", "Requests/s by model and outcome", [(f"sum by (model, outcome) ({rate('inferload_requests_total')})", "{{model}} {{outcome}}")],
          unit="reqps", description="inferload_requests_total by outcome: success|rejected|timeout|invalid|error|cancelled.")
    b.add("timeseries", "Successful requests/s by protocol (REST vs gRPC)", [
        (f"sum by (protocol) ({rate('inferload_requests_total', OK)})", "{{protocol}}")],
        unit="reqps", description="The protocol label: http = REST (OIP JSON/binary, images), grpc = the OIP gRPC service.")
    b.add("timeseries", "Server p99 by protocol (REST vs gRPC)", [
        (quantile(0.99, "inferload_request_duration_seconds", "protocol"), "{{protocol}} p99")],
        unit="s", description="inferload_request_duration_seconds by front end: request arrival to response, in the server.")
    b.add("timeseries", "Inference items/s and executions/s", [
        (f"sum by (model) ({rate('inferload_inference_items_total')})", "{{model}} items/s"),
        (f"sum by (model) ({rate('inferload_inference_executions_total')})", "{{model}} executions/s")],
        unit="short", description="Items are batch rows; executions are batches run. items/executions = mean batch size.")
    b.add("timeseries", "Server latency p50 / p95 / p99 by model", [
        (quantile(0.5, "inferload_request_duration_seconds"), "{{model}} p50"),
        (quantile(0.95, "inferload_request_duration_seconds"), "{{model}} p95"),
        (quantile(0.99, "inferload_request_duration_seconds"), "{{model}} p99")],
        w=24, unit="s", description="inferload_request_duration_seconds: body read to response, inside the server. "
                                    "Histogram buckets bound the precision; the load generator's HdrHistograms are exact.")

    b.row("Where the time goes: queue vs compute")
    b.add("timeseries", "Mean time per stage by model", [
        (mean("inferload_preprocess_duration_seconds"), "{{model}} preprocess"),
        (mean("inferload_queue_duration_seconds"), "{{model}} queue"),
        (mean("inferload_compute_duration_seconds"), "{{model}} compute")],
        unit="s", description="Mean per request. Queue growing while compute stays flat = saturation (add instances/replicas "
                              "or raise max_batch_size); compute growing with batch size is the batching trade-off.")
    b.add("timeseries", "p95 queue vs p95 compute by model", [
        (quantile(0.95, "inferload_queue_duration_seconds"), "{{model}} queue p95"),
        (quantile(0.95, "inferload_compute_duration_seconds"), "{{model}} compute p95")], unit="s")

    b.row("Batching and queue")
    b.add("heatmap", "Executed batch size distribution (items)", [
        (f"sum by (le) (increase(inferload_batch_size_bucket{{{sel}}}[{RI}]))", "{{le}}")],
        w=8, unit="short", heatmap=True, description="inferload_batch_size buckets 1,2,4,...,256: batches per bucket per interval.")
    b.add("timeseries", "Mean executed batch size", [
        (f"sum by (model) ({rate('inferload_inference_items_total')}) / sum by (model) ({rate('inferload_inference_executions_total')})", "{{model}}")],
        w=8, unit="short", description="Items per execution. Grows by itself under load when max_queue_delay_ms or a busy instance lets requests gather.")
    b.add("timeseries", "Queue depth and in-flight requests", [
        (f"sum by (model) (inferload_queue_depth{{{sel}}})", "{{model}} queued"),
        (f"sum by (model) (inferload_inflight_requests{{{sel}}})", "{{model}} in flight")],
        w=8, unit="short", description="Gauges, summed over replicas. A queue at max_queue_size means 503 rejections.")

    b.row("Rejections and timeouts")
    b.add("timeseries", "Non-success requests/s by outcome", [
        (f"sum by (model, outcome) ({rate('inferload_requests_total', NOT_OK)})", "{{model}} {{outcome}}")],
        unit="reqps", stack=True, description="rejected = 503 queue full; timeout = 504 deadline passed before compute; "
                                              "invalid = 4xx; error = 5xx from the model; cancelled = client went away.")
    b.add("timeseries", "Dropped from the queue before compute", [
        (f"sum by (model, reason) ({rate('inferload_queue_dropped_total')})", "{{model}} {{reason}}"),
        (f"sum(rate(inferload_http_unknown_model_total{{instance=~\"$target\"}}[{RI}]))", "unknown model (all)")],
        unit="reqps", description="Expired deadlines and disconnected clients removed from the queue; requests naming no loaded model.")

    b.row("Instances")
    b.add("timeseries", "Instance utilisation (busy fraction)", [
        (f"sum by (model, exported_instance, instance) ({rate('inferload_instance_busy_seconds_total')})", "{{model}} #{{exported_instance}} @ {{instance}}")],
        unit="percentunit", max_=1, description="rate(inferload_instance_busy_seconds_total): fraction of wall time each model "
                                                 "instance spent executing. Near 1 on every instance = compute-bound; add replicas.")
    b.add("timeseries", "Model ready", [(f"max by (model, instance) (inferload_model_ready{{{sel}}})", "{{model}} @ {{instance}}")],
          unit="short", max_=1, description="1 when loaded, warmed up and accepting requests; 0 while loading or draining.")

    variables = [ds_var(),
                 query_var("model", "Model", "label_values(inferload_model_ready, model)"),
                 query_var("protocol", "Protocol", "label_values(inferload_requests_total, protocol)"),
                 query_var("target", "Server", 'label_values(up{job="inferload-server"}, instance)')]
    links = [{"title": "Load test", "type": "link", "url": "/d/inferload-loadtest", "icon": "dashboard", "targetBlank": False,
              "keepTime": True, "includeVars": False, "asDropdown": False, "tags": [], "tooltip": ""}]
    return dashboard("inferload-server", "inferload — server",
                     "OIP v2 model server: throughput, latency percentiles, queue vs compute, batching, rejections, utilisation.",
                     b, variables, links)


def loadtest_dashboard() -> dict:
    sel = 'job=~"$job"'
    b = Board()

    def rate(metric: str, extra: str = "") -> str:
        proto = PROTO if metric.startswith(REQUEST_METRICS) else ""
        return f"rate({metric}{{{sel}{proto}{extra}}}[{RI}])"

    def cq(q: float) -> str:
        return f"histogram_quantile({q}, sum by (le) ({rate('inferload_loadgen_latency_seconds_bucket')}))"

    b.row("Overview")
    b.add("stat", "Target rate", [(f"sum(inferload_loadgen_target_rate_rps{{{sel}}})", "target")], w=4, h=4, unit="reqps", decimals=1,
          description="Open loop: the schedule's rate (0 for a closed-loop run).")
    b.add("stat", "Achieved (completed) rate", [(f"sum({rate('inferload_loadgen_requests_total')})", "achieved")], w=4, h=4, unit="reqps", decimals=1)
    b.add("stat", "Success ratio", [(f'sum({rate("inferload_loadgen_requests_total", OK)}) / sum({rate("inferload_loadgen_requests_total")})', "ok")],
          w=4, h=4, unit="percentunit", decimals=2)
    b.add("stat", "Client p99", [(cq(0.99), "p99")], w=4, h=4, unit="s",
          description="From the scheduled send time (open loop), so queueing in the generator counts. Histogram-bucketed; "
                      "the run's report has the exact HdrHistogram figure.")
    b.add("stat", "In flight", [(f"sum(inferload_loadgen_in_flight{{{sel}}})", "in flight")], w=4, h=4, decimals=0)
    b.add("stat", "Users", [(f"sum(inferload_loadgen_users{{{sel}}})", "users")], w=4, h=4, decimals=0)

    b.row("Offered vs achieved")
    b.add("timeseries", "Target, offered and achieved rate", [
        (f"sum(inferload_loadgen_target_rate_rps{{{sel}}})", "target"),
        (f"sum({rate('inferload_loadgen_offered_requests_total')})", "offered (sent)"),
        (f"sum({rate('inferload_loadgen_requests_total')})", "achieved (completed)"),
        (f'sum({rate("inferload_loadgen_requests_total", OK)})', "succeeded")],
        w=24, unit="reqps", description="A VALID open-loop run keeps achieved/target ≥ 0.99. Offered below target means the "
                                        "generator could not keep up (see delayed/dropped); achieved below offered means the server is saturated.")

    b.row("Client latency")
    b.add("timeseries", "Client latency percentiles", [
        (cq(0.5), "p50"), (cq(0.9), "p90"), (cq(0.95), "p95"), (cq(0.99), "p99"), (cq(0.999), "p99.9")],
        unit="s")
    b.add("timeseries", "Client p99 vs server p99", [
        (cq(0.99), "client p99"),
        (f"histogram_quantile(0.99, sum by (le) (rate(inferload_request_duration_seconds_bucket[{RI}])))", "server p99 (all models)")],
        unit="s", description="The gap is network + HTTP + client-side lag. Server side sums every model served.")

    b.row("Errors, in-flight, delayed")
    b.add("timeseries", "Errors/s by status", [
        (f"sum by (status) ({rate('inferload_loadgen_errors_total')})", "{{status}}"),
        (f'sum({rate("inferload_loadgen_requests_total", FAIL)})', "all failures")],
        w=8, unit="reqps", stack=False, description="HTTP status of failed requests (0 = connection error / timeout).")
    b.add("timeseries", "In flight and users", [
        (f"sum(inferload_loadgen_in_flight{{{sel}}})", "in flight"),
        (f"sum(inferload_loadgen_users{{{sel}}})", "users")], w=8, unit="short",
        description="In-flight climbing steadily under a fixed rate = the server is falling behind.")
    b.add("timeseries", "Delayed and dropped requests/s", [
        (f"sum({rate('inferload_loadgen_delayed_requests_total')})", "delayed (sent late)"),
        (f"sum({rate('inferload_loadgen_dropped_requests_total')})", "dropped (in-flight cap)"),
        (f"sum({rate('inferload_loadgen_delayed_requests_total')}) / sum({rate('inferload_loadgen_offered_requests_total')})", "delayed fraction")],
        w=8, unit="short", description="A VALID run has delayed fraction ≤ 1% and no drops; otherwise the generator, not the "
                                       "server, is the bottleneck (add workers).")

    variables = [ds_var(), query_var("job", "Load generator job", "label_values(inferload_loadgen_users, job)")]
    links = [{"title": "Server", "type": "link", "url": "/d/inferload-server", "icon": "dashboard", "targetBlank": False,
              "keepTime": True, "includeVars": False, "asDropdown": False, "tags": [], "tooltip": ""}]
    return dashboard("inferload-loadtest", "inferload — load test",
                     "Load generator view (Locust master or headless `inferload run`): offered vs achieved, client percentiles, errors.",
                     b, variables, links)


BOARDS = {"inferload-server.json": server_dashboard, "inferload-loadtest.json": loadtest_dashboard}


def render(fn) -> str:
    return json.dumps(fn(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, fn in BOARDS.items():
        path = HERE / name
        text = render(fn)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)} (run: python dashboards/build.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
