"""`inferload matrix`: max_batch_size × instances (× max_queue_delay_ms) on a local server, one configuration
at a time: low-load latency, max throughput, peak under the SLO; plus the in-process baseline."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from loadgen.commands import _curves as C


def _baseline(models: Path, model: str, batches: list[int], instances: list[int], duration: float,
              warmup: float, console) -> tuple[dict | None, str | None]:
    """In-process run_bench over the same batch sizes × instances (before locust is imported)."""
    try:
        from loadgen.baseline.bench import run_bench
        from server.repository import ensure_built, load_repository
    except ImportError as e:  # pragma: no cover - depends on the install
        return None, f"in-process baseline skipped: loadgen.baseline.bench not importable ({e})"
    try:
        cfg = load_repository(models, [model])[model]
        ensure_built(cfg)
        console.print(f"baseline: in-process ONNX Runtime, batch {batches} × instances {instances}, {duration:g}s each")
        return run_bench(cfg.model_path, batches, instances, None, duration, warmup, model_name=model), None
    except Exception as e:  # noqa: BLE001 - report and carry on with the served matrix
        return None, f"in-process baseline failed: {type(e).__name__}: {e}"


def matrix(
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    model: str = typer.Option(..., "--model", help="Model name in the repository."),
    max_batch_size: str = typer.Option("1,4,8,16", "--max-batch-size", help="Server max_batch_size values."),
    instances: str = typer.Option("1,2", "--instances", help="Server instance counts."),
    max_queue_delay_ms: str = typer.Option("0", "--max-queue-delay-ms", help="Server batching delays (ms), e.g. 0,2."),
    slo_p99_ms: float = typer.Option(..., "--slo-p99-ms", min=0.001, help="Latency bound (ms) for the peak search."),
    percentile: float = typer.Option(99.0, "--percentile", min=1.0, max=99.999),
    precision: float = typer.Option(0.1, "--precision", min=0.001, max=0.9, help="Peak-search relative precision."),
    max_probes: int = typer.Option(10, "--max-probes", min=1, help="Peak-search runs per configuration (confirmations included)."),
    confirm: int = typer.Option(3, "--confirm", min=1, help="Runs at each configuration's peak; a majority must pass."),
    max_probe_duration: float = typer.Option(60.0, "--max-probe-duration", min=1.0,
                                             help="Longest measured window of one peak probe (s)."),
    low_load: bool = typer.Option(True, "--low-load/--no-low-load", help="Measure p99 with 1 closed-loop user."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also run the in-process baseline."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: results/matrix-<time>)."),
    server_nice: int = typer.Option(19, "--server-nice", min=0, max=19,
                                    help="CPU niceness of the local server, so the load generator on the same CPUs keeps its schedule."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML report here."),
    target_rps: Optional[float] = C.TARGET_RPS,
    headroom: float = C.HEADROOM,
    duration: Optional[float] = C.DURATION,
    warmup: Optional[float] = C.WARMUP,
    payload: Optional[str] = C.PAYLOAD,
    batch: Optional[int] = C.BATCH,
    arrival: Optional[str] = C.ARRIVAL,
    seed: Optional[int] = C.SEED,
    workers: Optional[int] = C.WORKERS,
    timeout_ms: Optional[float] = C.TIMEOUT_MS,
) -> None:
    """Batch × instances matrix on a local server: best configuration for latency and for throughput.

    For each configuration: start the server (loopback, free port, overrides via INFERLOAD_OVERRIDES), measure p99 at low load (1 user), max throughput (closed loop, users = 2 × max_batch × instances) and the peak rate under the SLO (open loop); stop it. Writes matrix.json.
    """
    from rich.console import Console
    from rich.table import Table

    from loadgen.search.matrix import choose_best, config_label, matrix_configs, measure_config, overrides_for
    from loadgen.baseline.serverproc import ServerProcess
    from loadgen.results.io import write_json

    console = Console()
    batches = C.parse_ints(max_batch_size, "--max-batch-size")
    insts = C.parse_ints(instances, "--instances")
    delays = [float(x) for x in max_queue_delay_ms.split(",") if x.strip()]
    configs = matrix_configs(batches, insts, delays)
    base = C.build_scenario(None, target="http://127.0.0.1:1", model=model, duration_s=duration, warmup_s=warmup,
                            payload=payload, batch=batch, arrival=arrival, seed=seed, workers=workers,
                            timeout_ms=timeout_ms, slo_p99_ms=slo_p99_ms, mode="closed", users=1)
    out = out or C.default_out("matrix")
    out.mkdir(parents=True, exist_ok=True)
    doc: dict = {
        "schema_version": 2, "kind": "matrix", "model": model, "models_dir": str(models),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "slo_ms": slo_p99_ms, "percentile": percentile, "precision": precision,
        "scenario": base.model_dump(mode="json"), "configs": [], "best": {}, "baseline": None, "notes": [
            "low load = closed loop, 1 user (MLPerf SingleStream-like)",
            "max throughput = closed loop with users = max(4, 2 x max_batch_size x instances / items per request), "
            "capped at 64: enough to fill every batch on every instance",
            "peak = the open-loop peak search of `inferload peak` (probes sized to a confident p99 verdict, retried "
            "when the generator fell short; bracket x1.25 from 60% of the closed-loop rate, bisect, confirm by "
            "majority of 3 runs)",
        ],
    }
    if baseline:
        bdur = base.duration_s if duration is not None else 3.0
        doc["baseline"], note = _baseline(models, model, batches, insts, bdur, min(base.warmup_s, 1.0), console)
        if note:
            doc["baseline_note"] = note
            console.print(f"[yellow]{note}[/yellow]")
    else:
        doc["baseline_note"] = "in-process baseline not run (--no-baseline)"
    from loadgen.results.machine import machine_info

    doc["machine"] = machine_info()
    run = C.runner(progress=False)  # imports locust now, after the in-process baseline
    for i, cfg in enumerate(configs):
        label = config_label(cfg)
        console.rule(f"[bold]{i + 1}/{len(configs)}[/bold] {label}")
        if base.batch > cfg["max_batch_size"]:
            doc["configs"].append({**cfg, "label": label, "error": f"--batch {base.batch} > max_batch_size"})
            continue
        log = out / f"server-{label.replace('·', '_')}.log"
        try:
            with ServerProcess(models, model_names=[model], overrides=overrides_for(cfg), log_path=log,
                               ready_timeout_s=300, nice=server_nice) as srv:
                row = measure_config(base, run, cfg, srv.url, out, slo_ms=slo_p99_ms, percentile=percentile,
                                     precision=precision, max_probes=max_probes, confirm=confirm,
                                     max_probe_s=max_probe_duration, low_load=low_load,
                                     on_event=lambda m: console.print(f"  {m}"))
        except Exception as e:  # noqa: BLE001 - one bad configuration must not lose the others
            row = {**cfg, "label": label, "error": f"{type(e).__name__}: {e}", "server_log": log.name}
            console.print(f"[red]  {label}: {row['error']}[/red]")
        raw = next((r for r in (doc.get("baseline") or {}).get("results") or []
                    if r.get("batch_size") == cfg["max_batch_size"] and r.get("instances") == cfg["instances"]), None)
        row["raw_items_per_s"] = raw.get("throughput_items_per_s") if raw else None
        doc["configs"].append(row)
        doc["best"] = choose_best(doc["configs"])
        write_json(out / "matrix.json", doc)

    doc["best"] = choose_best(doc["configs"])
    best_peak = next((r for r in doc["configs"] if r.get("label") == doc["best"].get("peak")), None)
    if target_rps is not None:
        curve = [p["info"] for p in ((best_peak or {}).get("peak") or {}).get("probes") or []]
        doc["sizing"] = C.sizing_for(target_rps, headroom, (best_peak or {}).get("peak_rps"), curve, slo_p99_ms)
        if doc["sizing"]:
            doc["sizing"]["configuration"] = (best_peak or {}).get("label")
    doc["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / "matrix.json", doc)

    f = lambda v: "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731

    def fv(run: dict | None, key: str) -> str:  # a figure from a run, starred when the run was INVALID
        run = run or {}
        return f(run.get(key)) + ("" if run.get("valid") or run.get(key) is None else "*")
    t = Table(title=f"Matrix: {model}, SLO p{percentile:g} <= {slo_p99_ms:g} ms", title_justify="left")
    width = max([len(r["label"]) for r in doc["configs"]] + [6])
    for c in ("config", "p99 low load ms", "max items/s", "raw items/s", "peak req/s", "peak items/s",
              "p99 at peak ms", "status"):
        if c == "config":  # never cut a configuration's name (an 80-column terminal wraps the other columns)
            t.add_column(c, justify="left", no_wrap=True, min_width=width)
        else:
            t.add_column(c, justify="left" if c == "status" else "right")
    if doc.get("baseline"):
        lim = max(doc["baseline"]["results"], key=lambda r: r["throughput_items_per_s"])
        t.add_row(f"in-process baseline (b{lim['batch_size']}·i{lim['instances']})", "–",
                  "–", f(lim["throughput_items_per_s"]), "–", "–", "–", "no HTTP", style="dim")
    best_labels = set(doc["best"].values())
    for r in doc["configs"]:
        t.add_row(r["label"], fv(r.get("low_load"), "p99_ms"), f(r.get("max_items_per_s")),
                  f(r.get("raw_items_per_s")), f(r.get("peak_rps")), f(r.get("peak_items_per_s")),
                  f(r.get("p99_at_peak_ms")), r.get("error") or (r.get("peak") or {}).get("status", ""),
                  style="bold green" if r["label"] in best_labels else None)
    console.print(t)
    console.print("[dim]* from an INVALID run (not used to pick the best); see matrix.json for the reasons[/dim]")
    if doc.get("baseline_note"):
        console.print(f"[dim]{doc['baseline_note']}[/dim]")
    b = doc["best"]
    console.print(f"best for latency (lowest p99 at low load): [bold]{b.get('latency') or '–'}[/bold]")
    console.print(f"best peak under the SLO: [bold]{b.get('peak') or '–'}[/bold]")
    console.print(f"best for throughput (max items/s): [bold]{b.get('throughput') or '–'}[/bold]")
    if doc.get("sizing"):
        console.print(f"[bold]sizing[/bold] ({doc['sizing'].get('configuration')}): {doc['sizing']['note']}")
    console.print(f"wrote {out / 'matrix.json'}")
    C.write_html_of(console, out, html)


def register(app: typer.Typer) -> None:
    app.command("matrix")(matrix)
