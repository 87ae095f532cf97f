"""Shared helpers for the deployment tests (no locust import: gevent must stay out of the test process)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DEPLOY = ROOT / "deploy"
DS_PROVISIONING = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# Pinned metric families (server + load generator); dashboards may only query these (plus `up`).
SERVER_FAMILIES = {
    "inferload_requests_total",
    "inferload_request_duration_seconds",
    "inferload_queue_duration_seconds",
    "inferload_preprocess_duration_seconds",
    "inferload_compute_duration_seconds",
    "inferload_batch_size",
    "inferload_inference_items_total",
    "inferload_inference_executions_total",
    "inferload_queue_depth",
    "inferload_inflight_requests",
    "inferload_instance_busy_seconds_total",
    "inferload_model_ready",
    "inferload_model_execution_provider",
    "inferload_queue_dropped_total",
    "inferload_http_unknown_model_total",
}
LOADGEN_FAMILIES = {
    "inferload_loadgen_offered_requests_total",
    "inferload_loadgen_requests_total",
    "inferload_loadgen_errors_total",
    "inferload_loadgen_latency_seconds",
    "inferload_loadgen_in_flight",
    "inferload_loadgen_delayed_requests_total",
    "inferload_loadgen_dropped_requests_total",
    "inferload_loadgen_target_rate_rps",
    "inferload_loadgen_users",
}
HISTOGRAMS = {
    "inferload_request_duration_seconds",
    "inferload_queue_duration_seconds",
    "inferload_preprocess_duration_seconds",
    "inferload_compute_duration_seconds",
    "inferload_batch_size",
    "inferload_loadgen_latency_seconds",
}

METRIC_RE = re.compile(r"\b(inferload_[a-z0-9_]+)")


def family_of(sample_name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in HISTOGRAMS:
            return sample_name[: -len(suffix)]
    return sample_name


def load_dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def panel_targets(board: dict):
    """Yield (panel, target) for every query of every (non-row) panel, rows' nested panels included."""
    for panel in board["panels"]:
        inner = panel.get("panels", []) if panel.get("type") == "row" else [panel]
        for p in inner:
            for t in p.get("targets", []):
                yield p, t


def substitute(expr: str, rate_interval: str = "5s") -> str:
    """Replace Grafana's template variables as an all-selected dashboard would."""
    out = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "1s").replace("$__range", "1m")
    out = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", out)  # $model, $target, $job with "All" → allValue ".*"
    return out


def compose_tool() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works, else the Python `docker-compose`, else None."""
    if shutil.which("docker"):
        try:
            r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
            if r.returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None
