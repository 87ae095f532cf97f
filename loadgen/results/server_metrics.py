"""Any server's Prometheus metrics as the same few figures: queue, compute, batch size, requests, memory (pure, no I/O).

loadgen.results.promtext parses the text format. One adapter per server family maps its series, for one model, onto
shared keys; `detect_family` picks the adapter from the series present; `window(before, after, model)` turns two
scrapes into window averages (deltas of cumulative counters: a mean over every request the server finished between
them, never a per-request figure) and lists what the server did not export, and why. `server_metrics_section` is the
`server_metrics` block of a run result.

Families and what they export (sources checked, not guessed):
- inferload: server/metrics.py (histograms in seconds, `inferload_requests_total{model,outcome}`, items and
  executions counters, queue depth / in-flight / admission-limit gauges, process_* from prometheus_client).
- triton: counters in microseconds, labels {model, version} (triton-inference-server/core src/metrics.cc;
  src/infer_stats.cc: durations are added per *successful* request only, compute not for cache hits, failures carry
  a `reason` label in recent releases). `nv_inference_pending_request_count` (gauge, per model) exists in recent
  releases only. Triton exports no process memory; `nv_cpu_memory_used_bytes` is the whole machine's.
- mlserver (SeldonIO/MLServer 1.7.1): mlserver/handlers/dataplane.py registers Counters
  `model_infer_request_success` / `model_infer_request_failure` and a Summary `model_infer_request_duration` (seconds)
  labelled {model, version} -- `model`, not `model_name`; mlserver/batching/adaptive.py logs `batch_request_queue`, a
  Histogram of the adaptive-batching queue size seen by each arriving request, labelled {model_name, model_version}
  (mlserver/metrics/context.py); mlserver/parallel/dispatcher.py observes `parallel_request_queue` (no labels: requests
  in flight to the inference workers); the REST app adds starlette_exporter's `rest_server_requests_total`,
  `rest_server_request_duration_seconds`, `rest_server_requests_in_progress` (app_name="mlserver", server-wide). Metrics
  are served on their own port (settings.metrics_port 8082, /metrics). With parallel workers (default 1) the endpoint
  is prometheus_client's MultiProcessCollector, which has no process_* series, so memory is normally not exported.
  No queue time, compute time or batch size.
- kserve (the KServe Python ModelServer, kserve/metrics.py): Histograms `request_preprocess_seconds`,
  `request_predict_seconds`, `request_postprocess_seconds`, `request_explain_seconds` labelled {model_name}.
- generic: anything else; only the standard process series (`process_resident_memory_bytes`,
  `process_cpu_seconds_total`), which prometheus_client and Go servers export and Triton does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from loadgen.results.promtext import Match, Snapshot, parse, select, total

MIB = 1024.0 * 1024.0
FAMILIES = ("inferload", "triton", "mlserver", "kserve", "generic")
BASIS = "window averages from metric deltas, not per request"

FIGURES = (
    "requests",
    "failures",
    "request_rate_rps",
    "request_ms_mean",
    "queue_ms_mean",
    "compute_ms_mean",
    "batch_size_mean",
    "rss_mb",
)
"""The figures every window reports (None when undefined); those a server cannot give are listed as unavailable."""
GAUGES = ("queue_depth", "inflight", "admission_limit")
"""Instantaneous values, sampled at each scrape."""

LABELS = {
    "requests": "successful requests",
    "failures": "failed requests",
    "request_rate_rps": "request rate",
    "request_ms_mean": "server request time",
    "queue_ms_mean": "queue time",
    "compute_ms_mean": "compute time",
    "batch_size_mean": "batch size",
    "rss_mb": "resident memory",
    "queue_depth": "queue depth",
    "inflight": "requests in flight",
    "admission_limit": "admission limit",
}

# The cumulative keys each figure needs (an adapter's reading holds the keys its server exported).
_NEEDS: dict[str, tuple[str, ...]] = {
    "requests": ("success",),
    "failures": ("failure",),
    "request_rate_rps": ("success",),
    "request_ms_mean": ("request_s_sum", "request_count"),
    "queue_ms_mean": ("queue_s_sum", "queue_count"),
    "compute_ms_mean": ("compute_s_sum", "compute_count"),
    "batch_size_mean": ("items", "executions"),
    "rss_mb": ("rss_bytes",),
    "queue_depth": ("queue_depth",),
    "inflight": ("inflight",),
    "admission_limit": ("admission_limit",),
}
# What a figure means on a family where it differs from the rest.
CAVEATS = {
    "triton": "no process memory in Triton's metrics; system_memory_used_mb is the whole machine's",
    "mlserver": "inflight counts the REST requests of every model (server-wide); queue_depth_mean is the adaptive "
    "batching queue seen by each arriving request",
    "kserve": "requests counts predict calls, failed ones included; compute is the predict step",
}
# Means that are reported when the server has them, never listed as unavailable: (sum key, count key, scale).
_EXTRA_MEANS = {
    "preprocess_ms_mean": ("preprocess_s_sum", "preprocess_count", 1000.0),
    "postprocess_ms_mean": ("postprocess_s_sum", "postprocess_count", 1000.0),
    "queue_depth_mean": ("queue_depth_sum", "queue_depth_count", 1.0),
    "worker_inflight_mean": ("worker_inflight_sum", "worker_inflight_count", 1.0),
}


def _counter(base: str) -> tuple[str, str]:
    """A counter's sample name with prometheus_client's `_total` suffix, then without (Triton, older clients)."""
    return (base + "_total", base)


def _put(out: dict[str, float], key: str, value: float | None, scale: float = 1.0) -> None:
    if value is not None:
        out[key] = value * scale


def _put_mean(out: dict[str, float], snap: Snapshot, prefix: str, base: str, where: Match) -> None:
    """`<prefix>_s_sum` / `<prefix>_count` from a histogram or summary's `_sum` and `_count`."""
    s, c = total(snap, (base + "_sum",), where), total(snap, (base + "_count",), where)
    if s is not None and c is not None:
        out[prefix + "_s_sum"], out[prefix + "_count"] = s, c


def _rss(snap: Snapshot, out: dict[str, float]) -> None:
    """The standard process series, whichever family: resident memory and CPU seconds."""
    _put(out, "rss_bytes", total(snap, ("process_resident_memory_bytes",)))
    _put(out, "cpu_s", total(snap, _counter("process_cpu_seconds")))


# -------------------------------------------------------------------------------------------------- adapters --
Reading = dict[str, float]


def read_inferload(snap: Snapshot, model: str) -> Reading:
    m = {"model": model}
    out: Reading = {}
    everything = total(snap, _counter("inferload_requests"), m)
    ok = total(snap, _counter("inferload_requests"), {**m, "outcome": "success"})
    _put(out, "success", ok)
    if everything is not None and ok is not None:
        out["failure"] = everything - ok
    _put_mean(out, snap, "request", "inferload_request_duration_seconds", m)
    _put_mean(out, snap, "queue", "inferload_queue_duration_seconds", m)
    _put_mean(out, snap, "compute", "inferload_compute_duration_seconds", m)
    _put_mean(out, snap, "preprocess", "inferload_preprocess_duration_seconds", m)
    items = total(snap, _counter("inferload_inference_items"), m)
    execs = total(snap, _counter("inferload_inference_executions"), m)
    if items is None or execs is None:  # the batch-size histogram carries the same two numbers
        items, execs = total(snap, ("inferload_batch_size_sum",), m), total(snap, ("inferload_batch_size_count",), m)
    _put(out, "items", items)
    _put(out, "executions", execs)
    busy = select(snap, _counter("inferload_instance_busy_seconds"), m)
    if busy:
        out["busy_s"], out["instances"] = sum(s.value for s in busy), float(len(busy))
    _put(out, "queue_depth", total(snap, ("inferload_queue_depth",), m))
    _put(out, "inflight", total(snap, ("inferload_inflight_requests",), m))
    _put(out, "admission_limit", total(snap, ("inferload_admission_limit",), m))
    _rss(snap, out)
    return out


def read_triton(snap: Snapshot, model: str) -> Reading:
    m = {"model": model}
    out: Reading = {}
    us = 1e-6
    ok = total(snap, ("nv_inference_request_success",), m)
    _put(out, "success", ok)
    _put(out, "failure", total(snap, ("nv_inference_request_failure",), m))  # summed over `reason` when present
    _put(out, "items", total(snap, ("nv_inference_count",), m))
    _put(out, "executions", total(snap, ("nv_inference_exec_count",), m))
    if ok is not None:  # Triton adds each duration once per successful request (core src/infer_stats.cc)
        req = total(snap, ("nv_inference_request_duration_us",), m)
        if req is not None:
            out["request_s_sum"], out["request_count"] = req * us, ok
        queue = total(snap, ("nv_inference_queue_duration_us",), m)
        if queue is not None:
            out["queue_s_sum"], out["queue_count"] = queue * us, ok
        parts = [total(snap, (f"nv_inference_compute_{p}_duration_us",), m) for p in ("input", "infer", "output")]
        if parts[1] is not None:
            hits = total(snap, ("nv_cache_num_hits_per_model",), m) or 0.0  # cache hits have no compute time
            out["compute_s_sum"] = sum(p for p in parts if p is not None) * us
            out["compute_count"] = ok - hits
    _put(out, "queue_depth", total(snap, ("nv_inference_pending_request_count",), m))
    _put(out, "system_memory_used_bytes", total(snap, ("nv_cpu_memory_used_bytes",)))
    _rss(snap, out)
    return out


def read_mlserver(snap: Snapshot, model: str) -> Reading:
    m = {"model": model}  # dataplane.py's counters and summary use `model`; batch_request_queue uses `model_name`
    out: Reading = {}
    _put(out, "success", total(snap, _counter("model_infer_request_success"), m))
    _put(out, "failure", total(snap, _counter("model_infer_request_failure"), m))
    _put_mean(out, snap, "request", "model_infer_request_duration", m)
    bq = {"model_name": model}
    s, c = total(snap, ("batch_request_queue_sum",), bq), total(snap, ("batch_request_queue_count",), bq)
    if s is not None and c is not None:
        out["queue_depth_sum"], out["queue_depth_count"] = s, c
    s, c = total(snap, ("parallel_request_queue_sum",)), total(snap, ("parallel_request_queue_count",))
    if s is not None and c is not None:
        out["worker_inflight_sum"], out["worker_inflight_count"] = s, c
    in_progress = [
        x
        for name, group in snap.by_name.items()
        if name.endswith("_requests_in_progress")
        for x in group
        if x.labels.get("app_name") == "mlserver"
    ]
    if in_progress:  # starlette_exporter's gauge: every REST request of every model (server-wide)
        out["inflight"] = sum(x.value for x in in_progress)
    _rss(snap, out)
    return out


def read_kserve(snap: Snapshot, model: str) -> Reading:
    m = {"model_name": model}
    out: Reading = {}
    _put_mean(out, snap, "compute", "request_predict_seconds", m)
    if "compute_count" in out:  # every predict call is timed, failed ones too: requests, not successes
        out["success"] = out["compute_count"]
    _put_mean(out, snap, "preprocess", "request_preprocess_seconds", m)
    _put_mean(out, snap, "postprocess", "request_postprocess_seconds", m)
    _rss(snap, out)
    return out


def read_generic(snap: Snapshot, model: str) -> Reading:
    out: Reading = {}
    _rss(snap, out)
    return out


ADAPTERS: dict[str, Callable[[Snapshot, str], Reading]] = {
    "inferload": read_inferload,
    "triton": read_triton,
    "mlserver": read_mlserver,
    "kserve": read_kserve,
    "generic": read_generic,
}
_MODEL_KEYS = ("model", "model_name")
_MLSERVER_MARKS = ("model_infer_request_", "batch_request_queue", "parallel_request_queue")
_KSERVE_MARKS = ("request_predict_seconds", "request_preprocess_seconds", "request_postprocess_seconds")


def detect_family(snap: Snapshot) -> str:
    """The server family from the series present (inferload > triton > mlserver > kserve > generic)."""
    names = snap.names()
    if any(n.startswith("inferload_") for n in names):
        return "inferload"
    if any(n.startswith("nv_inference_") for n in names):
        return "triton"
    if any(n.startswith(_MLSERVER_MARKS) for n in names):
        return "mlserver"
    if any(n.startswith(_KSERVE_MARKS) for n in names):
        return "kserve"
    return "generic"


def read(snap: Snapshot, model: str, family: str | None = None) -> Reading:
    fam = family or detect_family(snap)
    return ADAPTERS.get(fam, read_generic)(snap, model)


def gauges(snap: Snapshot, model: str, family: str | None = None) -> dict[str, float]:
    """The instantaneous values of one scrape: queue_depth, inflight, admission_limit, rss_bytes (those exported)."""
    r = read(snap, model, family)
    return {k: r[k] for k in (*GAUGES, "rss_bytes", "system_memory_used_bytes") if k in r}


# ----------------------------------------------------------------------------------------------- the window --
def model_names(snap: Snapshot) -> list[str]:
    """The models the server's series name (labels `model` or `model_name`)."""
    return sorted(
        {v for group in snap.by_name.values() for x in group for k, v in x.labels.items() if k in _MODEL_KEYS}
    )


def why_missing(figure: str, family: str, model: str, snap: Snapshot) -> str:
    """Why a figure is missing: no series names this model at all (a wrong model name, or a model not used yet), or
    the server does not export it."""
    if figure not in ("rss_mb",):
        names = model_names(snap)
        if model not in names:
            there = f"; models there: {', '.join(names[:5])}" if names else ""
            return f"no series for model {model!r} in the server's metrics ({family}{there})"
    return f"not exported by this server ({family})"


def unavailable_lines(unavailable: list[str], reasons: Mapping[str, str]) -> list[str]:
    """`queue depth: not exported by this server (triton)`, one line per figure; the figures missing for one cause
    that is not about the figure (no series for the model at all) share one line."""
    groups: dict[str, list[str]] = {}
    for f in unavailable:
        why = reasons.get(f, "not available")
        groups.setdefault(why if why.startswith("no series") else f"{f}\0{why}", []).append(LABELS.get(f, f))
    return [f"{', '.join(names)}: {key.split(chr(0))[-1]}" for key, names in groups.items()]


def missing(reading: Reading, figures: tuple[str, ...]) -> list[str]:
    return [f for f in figures if not all(k in reading for k in _NEEDS[f])]


def window(
    before: Snapshot,
    after: Snapshot,
    model: str,
    *,
    window_s: float | None = None,
    family: str | None = None,
) -> dict[str, Any]:
    """Figures over the window between two scrapes: counters as deltas, means as Δsum/Δcount (window averages, not per
    request), gauges at both ends; `unavailable` names what the server did not export, `reasons` says why."""
    fam = family or detect_family(after)
    if fam == "generic" and family is None:
        fam = detect_family(before)
    a, b = read(before, model, fam), read(after, model, fam)
    if window_s is None and before.t_s is not None and after.t_s is not None:
        window_s = after.t_s - before.t_s
    reasons: dict[str, str] = {}
    lost: set[str] = set()

    def delta(key: str) -> float | None:
        if key not in a or key not in b:
            return None
        d = b[key] - a[key]
        if d < 0:
            lost.add(key)
            return None
        return d

    def mean(s_key: str, c_key: str, scale: float) -> float | None:
        s, c = delta(s_key), delta(c_key)
        return None if s is None or not c else s / c * scale

    ok, bad = delta("success"), delta("failure")
    rate = None
    if ok is not None and window_s:
        rate = (ok + (bad or 0.0)) / window_s
    rss = b.get("rss_bytes")
    figures: dict[str, Any] = {
        "requests": _r(ok, 0),
        "failures": _r(bad, 0),
        "request_rate_rps": _r(rate, 3),
        "request_ms_mean": _r(mean("request_s_sum", "request_count", 1000.0), 3),
        "queue_ms_mean": _r(mean("queue_s_sum", "queue_count", 1000.0), 3),
        "compute_ms_mean": _r(mean("compute_s_sum", "compute_count", 1000.0), 3),
        "batch_size_mean": _r(mean("items", "executions", 1.0), 3),
        "rss_mb": None if rss is None else round(rss / MIB, 1),
    }
    if rss is not None and "rss_bytes" in a:
        figures["rss_growth_mb"] = round((rss - a["rss_bytes"]) / MIB, 1)
    for name, (s_key, c_key, scale) in _EXTRA_MEANS.items():
        if s_key in b:
            figures[name] = _r(mean(s_key, c_key, scale), 3)
    busy, inst = delta("busy_s"), b.get("instances")
    if busy is not None and inst and window_s:
        figures["instance_utilisation"] = round(busy / (window_s * inst), 4)
    cpu = delta("cpu_s")
    if cpu is not None and window_s:
        figures["process_cpu_percent"] = round(100.0 * cpu / window_s, 1)
    if "system_memory_used_bytes" in b:
        figures["system_memory_used_mb"] = round(b["system_memory_used_bytes"] / MIB, 1)

    unavailable = sorted(set(missing(a, FIGURES)) | set(missing(b, FIGURES)), key=(FIGURES + GAUGES).index)
    for f in unavailable:
        reasons[f] = why_missing(f, fam, model, after)
    for f in FIGURES:
        if f in unavailable:
            continue
        if any(k in lost for k in _NEEDS[f]):
            reasons[f] = "a counter went backwards: the server restarted during the window"
        elif figures[f] is None and f.endswith("_mean"):
            reasons[f] = "no requests completed in the window"
    gauge_block: dict[str, dict[str, float | None]] = {}
    for g in GAUGES:
        if g in a or g in b:
            gauge_block[g] = {"start": a.get(g), "end": b.get(g)}
        else:
            unavailable.append(g)
            reasons[g] = why_missing(g, fam, model, after)
    out: dict[str, Any] = {"family": fam, "window_s": _r(window_s, 3), "figures": figures, "gauges": gauge_block}
    out.update(basis=BASIS, unavailable=unavailable, reasons=reasons)
    if fam in CAVEATS:
        out["caveat"] = CAVEATS[fam]
    return out


def _r(v: float | None, digits: int) -> float | int | None:
    if v is None:
        return None
    return int(round(v)) if digits == 0 else round(v, digits)


def redact_url(url: str) -> str:
    """The URL without credentials (user:password@) or query (tokens travel there)."""
    out = re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url)
    return out.split("?", 1)[0] + ("?<redacted>" if "?" in out else "")


def server_metrics_section(
    before_text: str | None,
    after_text: str | None,
    model: str,
    url: str,
    family: str | None = None,
    *,
    window_s: float | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The `server_metrics` block of a run result: the server's own figures over the measurement window (scrapes
    before and after it). A scrape that failed gives its text as `error` (and None text); the block then says so."""
    if before_text is None or after_text is None:
        return {
            "url": redact_url(url),
            "family": family,
            "window_s": _r(window_s, 3),
            "figures": {},
            "basis": BASIS,
            "unavailable": list(FIGURES + GAUGES),
            "error": error or "the server's metrics could not be read",
        }
    w = window(parse(before_text), parse(after_text), model, window_s=window_s, family=family)
    return {"url": redact_url(url), **w}
