"""`inferload mlperf`: MLPerf LoadGen's scenarios (SingleStream, MultiStream, Server, Offline) against any target
inferload can load, through inferload's own request options and codecs (loadgen.engine.mlperf_driver).

LoadGen (`pip install 'inferload[mlperf]'`) runs in this process, which never imports locust: gevent's
monkey-patching would reach LoadGen's threads and the SUT's asyncio loop. Writes LoadGen's own logs and
`mlperf.json` (kind `mlperf`) into --out.
"""

from __future__ import annotations

from pathlib import Path

import typer

from loadgen.commands import _assert as A
from loadgen.commands import _curves as C
from loadgen.commands._request import request_options


@request_options
def mlperf(
    scenario_name: str = typer.Option(
        ..., "--scenario", help="singlestream (the camera: p90) | multistream | server (p99 under a bound) | offline"
    ),
    target_qps: float | None = typer.Option(
        None,
        "--target-qps",
        min=0.001,
        help="Server: Poisson arrival rate (the start of --find-peak); Offline: expected samples/s (sizes the query).",
    ),
    latency_bound_ms: float = typer.Option(
        100.0, "--latency-bound-ms", min=0.001, help="Server: target latency its percentile must meet (ms)."
    ),
    latency_percentile: float | None = typer.Option(
        None,
        "--latency-percentile",
        min=1.0,
        max=99.999,
        help="Percentile LoadGen judges (default: SingleStream 90, MultiStream and Server 99).",
    ),
    expected_latency_ms: float | None = typer.Option(
        None, "--expected-latency-ms", min=0.001, help="SingleStream / MultiStream: the latency LoadGen expects."
    ),
    min_duration: float = typer.Option(10.0, "--min-duration", min=0.1, help="LoadGen's minimum duration (s)."),
    max_duration: float | None = typer.Option(None, "--max-duration", min=0.1, help="LoadGen's maximum duration (s)."),
    min_query_count: int | None = typer.Option(None, "--min-query-count", min=1, help="LoadGen's minimum query count."),
    max_query_count: int | None = typer.Option(None, "--max-query-count", min=1, help="LoadGen's maximum query count."),
    samples_per_query: int = typer.Option(
        8, "--samples-per-query", min=1, help="MultiStream: samples per query (streams)."
    ),
    qsl_samples: int = typer.Option(
        64, "--qsl-samples", min=1, help="Distinct samples (request bodies) in the QuerySampleLibrary."
    ),
    seed: int | None = typer.Option(None, "--seed", help="LoadGen's QSL, sample-index and schedule RNG seeds."),
    find_peak: bool = typer.Option(
        False, "--find-peak", help="Server: LoadGen's FindPeakPerformance (bracket and bisect the target QPS)."
    ),
    max_in_flight: int = typer.Option(
        256, "--max-in-flight", min=1, help="The SUT's cap on requests in flight (a sample waits for a slot)."
    ),
    warmup_queries: int = typer.Option(
        32, "--warmup-queries", min=0, help="Untimed requests before LoadGen starts (16 at a time; 0 = none)."
    ),
    target: str | None = C.TARGET,
    model: str | None = C.MODEL,
    payload: str | None = C.PAYLOAD,
    batch: int | None = C.BATCH,
    timeout_ms: float | None = C.TIMEOUT_MS,
    scenario_file: Path | None = typer.Option(
        None, "--scenario-file", help="Scenario TOML for the target, model and request options (flags override it)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: results/mlperf-<time>)."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    asserts: list[str] | None = A.assert_option("mlperf"),
    allow_invalid: bool = A.ALLOW_INVALID,
    junit: Path | None = A.JUNIT,
    request: dict | None = None,
) -> None:
    """Run MLPerf LoadGen (official harness) against the target; keep its logs and write mlperf.json."""
    from rich.console import Console

    from loadgen.engine.mlperf_driver import MlperfError, MlperfOptions, check_options, run_mlperf
    from loadgen.engine.payloads import PayloadError
    from loadgen.report.terminal_mlperf import print_mlperf
    from loadgen.results.io import write_json

    console = Console()
    thresholds = A.parse(asserts, "mlperf")
    base = C.build_scenario(
        scenario_file,
        **(request or {}),
        target=target,
        model=model,
        payload=payload,
        batch=batch,
        timeout_ms=timeout_ms,
        mode="closed",
        users=1,
    )
    try:
        opts = MlperfOptions(
            scenario=scenario_name.lower(),  # type: ignore[arg-type]
            target_qps=target_qps,
            latency_bound_ms=latency_bound_ms,
            latency_percentile=latency_percentile,
            expected_latency_ms=expected_latency_ms,
            min_duration_s=min_duration,
            max_duration_s=max_duration,
            min_query_count=min_query_count,
            max_query_count=max_query_count,
            samples_per_query=samples_per_query,
            qsl_samples=qsl_samples,
            seed=seed,
            find_peak=find_peak,
            max_in_flight=max_in_flight,
            timeout_s=base.timeout_ms / 1000.0,
            warmup_queries=warmup_queries,
        )
        check_options(opts)
        out = out or C.default_out("mlperf")
        doc = run_mlperf(base, opts, out, say=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (MlperfError, PayloadError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    path = out / "mlperf.json"
    write_json(path, doc)
    print_mlperf(console, doc, path)
    C.write_html_of(console, path, html)
    A.check(console, doc, thresholds, junit, source=str(path), allow_invalid=allow_invalid)


def register(app: typer.Typer) -> None:
    app.command("mlperf")(mlperf)
