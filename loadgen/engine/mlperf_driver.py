"""MLPerf LoadGen as a second driver over inferload's transports (DESIGN.md §1 "Drivers"): `inferload mlperf`.

`run_mlperf(scenario, opts, out_dir)` reads the model's metadata, builds one request body per QSL sample with
inferload's own codec (loadgen.engine.codec), starts the non-blocking SUT (loadgen.engine.mlperf_sut), runs LoadGen
(module `mlperf_loadgen`, `pip install 'inferload[mlperf]'`) with `loadgen_settings(opts)`, reads LoadGen's detail log
(loadgen.results.mlperf_log) and returns the `mlperf` document. LoadGen keeps its own logs in `out_dir`.

LoadGen runs threads of its own and the SUT an asyncio loop: this must never run in a process that imported locust
(gevent's monkey-patching); `run_mlperf` refuses to.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from loadgen.results.mlperf_log import loadgen_section, read_detail
from loadgen.results.schema import SCHEMA_VERSION

MlperfScenario = Literal["singlestream", "multistream", "server", "offline"]
SCENARIOS: tuple[str, ...] = ("singlestream", "multistream", "server", "offline")
_LG_NAME = {"singlestream": "SingleStream", "multistream": "MultiStream", "server": "Server", "offline": "Offline"}
LAG_WARN_SHARE = 0.05
"""A SUT issue lag p99 above this share of LoadGen's p50 latency (and above 1 ms) is warned about."""


class MlperfError(ValueError):
    """Options that cannot run, or LoadGen missing; the message says the fix."""


@dataclass(frozen=True)
class MlperfOptions:
    scenario: MlperfScenario
    target_qps: float | None = None
    """Server: the Poisson arrival rate; Offline: the expected samples/s (sizes the one big query)."""
    latency_bound_ms: float = 100.0
    """Server: the target latency its percentile must meet (LoadGen's default 100 ms)."""
    latency_percentile: float | None = None
    """None: LoadGen's per-scenario default (SingleStream 90, MultiStream 99, Server 99)."""
    expected_latency_ms: float | None = None
    """SingleStream / MultiStream: the latency LoadGen expects (it sizes the query schedule); None: LoadGen's default."""
    min_duration_s: float = 10.0
    max_duration_s: float | None = None
    min_query_count: int | None = None
    max_query_count: int | None = None
    samples_per_query: int = 8
    """MultiStream: samples in each query (LoadGen's default 8: eight cameras)."""
    qsl_samples: int = 64
    """Distinct samples in the QuerySampleLibrary (each one request body, built before the run)."""
    seed: int | None = None
    """Sets LoadGen's qsl, sample-index and schedule RNG seeds (None: LoadGen's own defaults)."""
    find_peak: bool = False
    """Server: LoadGen's FindPeakPerformance mode (bracket and bisect the target QPS) instead of one run."""
    max_in_flight: int = 256
    timeout_s: float = 30.0
    warmup_queries: int = 32
    """Requests sent (16 at a time, not timed) before LoadGen starts: a fresh server's first answers are slow, new
    connections cost the server, and LoadGen's own run has no warm-up."""


def check_options(o: MlperfOptions) -> None:
    """MlperfError for options LoadGen would reject or misread."""
    if o.scenario not in SCENARIOS:
        raise MlperfError(f"--scenario {o.scenario!r}: one of {', '.join(SCENARIOS)}")
    if o.scenario in ("server", "offline") and (o.target_qps is None or o.target_qps <= 0):
        what = "the arrival rate" if o.scenario == "server" else "the samples/s you expect (it sizes the one query)"
        raise MlperfError(f"--scenario {o.scenario} needs --target-qps > 0 ({what})")
    if o.find_peak and o.scenario != "server":
        raise MlperfError("--find-peak is LoadGen's FindPeakPerformance mode: --scenario server only")
    if o.latency_percentile is not None and not 0 < o.latency_percentile < 100:
        raise MlperfError("--latency-percentile must be between 0 and 100 (e.g. 99)")
    if o.min_duration_s <= 0 or o.qsl_samples < 1 or o.samples_per_query < 1 or o.max_in_flight < 1:
        raise MlperfError("--min-duration, --qsl-samples, --samples-per-query and --max-in-flight must be > 0")


def loadgen_settings(o: MlperfOptions, lg: Any) -> Any:
    """LoadGen's TestSettings for these options (`lg`: the mlperf_loadgen module)."""
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, _LG_NAME[o.scenario])
    s.mode = lg.TestMode.FindPeakPerformance if o.find_peak else lg.TestMode.PerformanceOnly
    s.min_duration_ms = int(round(o.min_duration_s * 1000))
    if o.max_duration_s is not None:
        s.max_duration_ms = int(round(o.max_duration_s * 1000))
    if o.min_query_count is not None:
        s.min_query_count = int(o.min_query_count)
    if o.max_query_count is not None:
        s.max_query_count = int(o.max_query_count)
    if o.target_qps is not None:
        s.server_target_qps = float(o.target_qps)
        s.offline_expected_qps = float(o.target_qps)
    s.server_target_latency_ns = int(round(o.latency_bound_ms * 1e6))
    if o.latency_percentile is not None:
        frac = o.latency_percentile / 100.0
        s.server_target_latency_percentile = frac
        s.single_stream_target_latency_percentile = frac
        s.multi_stream_target_latency_percentile = frac
    if o.expected_latency_ms is not None:
        s.single_stream_expected_latency_ns = int(round(o.expected_latency_ms * 1e6))
        s.multi_stream_expected_latency_ns = int(round(o.expected_latency_ms * 1e6))
    s.multi_stream_samples_per_query = int(o.samples_per_query)
    s.performance_sample_count_override = int(o.qsl_samples)
    if o.seed is not None:
        s.qsl_rng_seed = s.sample_index_rng_seed = s.schedule_rng_seed = int(o.seed)
    return s


def percentile_of(o: MlperfOptions) -> float:
    if o.latency_percentile is not None:
        return o.latency_percentile
    return 90.0 if o.scenario == "singlestream" else 99.0


PROTOCOLS = ("oip", "http-json", "grpc")


def check_transport(scenario: Any) -> None:
    """The SUT's client speaks OIP REST (binary or JSON), http-json templates or OIP gRPC; MlperfError otherwise."""
    protocol = getattr(scenario, "protocol", "oip")
    if protocol not in PROTOCOLS:
        raise MlperfError(f"inferload mlperf sends --protocol {' | '.join(PROTOCOLS)}, not {protocol}")


def import_loadgen() -> Any:
    if "gevent" in sys.modules or "locust" in sys.modules:
        raise MlperfError(
            "MLPerf LoadGen must not run in a process that imported locust/gevent (monkey-patched threads); "
            "run `inferload mlperf` in its own process"
        )
    try:
        import mlperf_loadgen
    except ImportError:
        raise MlperfError(
            "MLPerf LoadGen is not installed: pip install 'inferload[mlperf]' (mlcommons-loadgen)"
        ) from None
    return mlperf_loadgen


def build_bodies(scenario: Any, info: dict[str, Any], n: int) -> tuple[Any, list[bytes], list[dict[str, str]]]:
    """n request bodies (and their headers) from the scenario's codec: the QSL's samples."""
    from loadgen.engine.codec import make_codec

    codec = make_codec(scenario, info, seed=scenario.seed)
    bodies, headers = [], []
    for _ in range(n):
        parts, h = codec.next_parts()
        bodies.append(b"".join(bytes(p) for p in parts))
        headers.append(dict(h))
    return codec, bodies, headers


def run_mlperf(scenario: Any, opts: MlperfOptions, out_dir: Path, say: Any = print) -> dict[str, Any]:
    """One LoadGen test (or a FindPeakPerformance search); returns the `mlperf` document (not yet written)."""
    check_options(opts)
    check_transport(scenario)
    lg = import_loadgen()
    from loadgen.engine.mlperf_sut import AsyncSut, grpc_sender, http_sender
    from loadgen.engine.preflight import preflight, target_or_error
    from loadgen.results.machine import machine_info

    target = target_or_error(scenario)
    info = preflight(scenario)  # PayloadError (the command exits 2) before LoadGen starts
    codec, bodies, headers = build_bodies(scenario, info, opts.qsl_samples)
    common = {**target.request_headers(), **({"Host": target.host_override()} if target.host_override() else {})}
    headers = [{**common, **h} for h in headers]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def complete(sid: int) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sid, 0, 0)])

    if scenario.protocol == "grpc":
        sender = grpc_sender(target, bodies, timeout_s=opts.timeout_s)
    else:
        sender = http_sender(
            target.origin + codec.path,
            bodies,
            headers,
            ssl_context=target.ssl_context(),
            timeout_s=opts.timeout_s,
            connections=opts.max_in_flight,
        )
    sut_core = AsyncSut(
        sender,
        complete,
        max_in_flight=opts.max_in_flight,
        judge=lambda _i, b, h: codec.judge(b, h),
        success=codec.success,
    ).start()
    if opts.warmup_queries:
        # 16 at a time: the connections a burst will need are open before LoadGen's clock runs
        ok = sut_core.warm(
            [i % len(bodies) for i in range(opts.warmup_queries)], concurrency=min(16, opts.max_in_flight)
        )
        say(f"warm-up: {ok} of {opts.warmup_queries} requests answered (not timed)")
    settings = loadgen_settings(opts, lg)
    log = lg.LogSettings()
    log.log_output.outdir = str(out_dir)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    sut = lg.ConstructSUT(lambda qs: sut_core.issue([(q.id, q.index) for q in qs]), sut_core.flush)
    qsl = lg.ConstructQSL(len(bodies), len(bodies), lambda _s: None, lambda _s: None)
    try:
        say(
            f"MLPerf LoadGen {_LG_NAME[opts.scenario]}{' FindPeakPerformance' if opts.find_peak else ''} against {target.describe()['url']} ..."
        )
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        sut_core.stop()
    wall_s = time.perf_counter() - t0
    values, errors, warnings = read_detail(out_dir)
    return build_document(
        scenario,
        opts,
        values,
        errors,
        warnings,
        sut_core.stats.summary(),
        started,
        wall_s,
        target.describe(),
        machine_info(),
    )


def build_document(
    scenario: Any,
    opts: MlperfOptions,
    values: dict[str, Any],
    errors: list[str],
    warnings: list[str],
    sut: dict[str, Any],
    started: str,
    wall_s: float,
    target: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    """The `mlperf` document (loadgen.results.schema.MlperfDoc) from LoadGen's values and the SUT's figures (pure)."""
    lgs = loadgen_section(values, errors, warnings, opts.scenario)
    reasons = list(lgs.pop("loadgen_reasons"))
    if sut.get("failed"):
        reasons.append(
            {
                "code": "sut_failures",
                "message": f"{sut['failed']} of {sut['sent']} requests failed ({sut['failures']}): LoadGen timed them "
                "as answered, so its latencies and rates are not the server's",
            }
        )
    warns: list[dict[str, str]] = [{"code": "loadgen_warning", "message": w} for w in lgs.pop("loadgen_warnings")[:5]]
    lag99 = (sut.get("issue_lag_ms") or {}).get("p99")
    p50 = (lgs.get("latency_ms") or {}).get("p50")
    if lag99 is not None and p50 and lag99 > max(1.0, LAG_WARN_SHARE * p50):
        warns.append(
            {
                "code": "sut_issue_lag",
                "message": f"the SUT took up to {lag99:.3g} ms (p99) to take samples from LoadGen's issue call, beside a "
                f"p50 latency of {p50:.3g} ms: LoadGen's latencies include that lag (pessimistic)",
            }
        )
    if opts.scenario != "offline" and sut.get("waited_for_slot"):
        warns.append(
            {
                "code": "sut_in_flight_cap",
                "message": f"{sut['waited_for_slot']} samples waited for one of the SUT's {opts.max_in_flight} "
                "in-flight slots (raise --max-in-flight): LoadGen's latencies include that wait",
            }
        )
    pct = percentile_of(opts)
    lat = lgs["latency_ms"] if opts.scenario != "multistream" else (lgs.get("query_latency_ms") or lgs["latency_ms"])
    key = f"p{pct:g}".replace(".", "")
    if opts.scenario in ("singlestream", "multistream"):
        result = {"metric": f"{key}_latency_ms", "value": lat.get(key), "unit": "ms"}
    elif opts.find_peak:
        result = {"metric": "peak_qps", "value": (lgs.get("find_peak") or {}).get("peak_qps"), "unit": "queries/s"}
    elif opts.scenario == "server":
        result = {
            "metric": "target_qps",
            "value": values.get("effective_target_qps", opts.target_qps),
            "unit": "queries/s",
        }
    else:
        result = {"metric": "samples_per_s", "value": lgs.get("samples_per_s"), "unit": "samples/s"}
    batch = int(getattr(scenario, "batch", 1) or 1)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "mlperf",
        "tool": "inferload",
        "driver": "mlperf_loadgen",
        "started_at": started,
        "wall_s": round(wall_s, 3),
        "scenario": opts.scenario,
        "mode": "find_peak" if opts.find_peak else "performance",
        "model": scenario.model,
        "target": target,
        "settings": {**asdict(opts), "latency_percentile": pct},
        "result": result,
        "valid": lgs["loadgen_result"] == "VALID" and not any(r["code"] == "sut_failures" for r in reasons),
        "invalid_reasons": reasons,
        "warnings": warns,
        **lgs,
        "items_per_request": batch,
        "items_per_s": None if lgs.get("samples_per_s") is None else lgs["samples_per_s"] * batch,
        "sut": {**sut, "client": "aiohttp (asyncio, own thread)", "max_in_flight": opts.max_in_flight},
        "request": scenario.model_dump(mode="json"),
        "logs": {"summary": "mlperf_log_summary.txt", "detail": "mlperf_log_detail.txt"},
        "machine": machine,
        "notes": [
            "latency runs from LoadGen's scheduled issue instant to the SUT's QuerySamplesComplete (the answer read)",
            "one LoadGen sample = one request of items_per_request items",
        ],
    }
