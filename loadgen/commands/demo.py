"""`inferload demo`: the whole product in a few minutes on one machine.

Starts the server on a free loopback port with the built-in models, then runs — each as the `inferload`
command a user would type, printed before it runs — the in-process baseline, the latency preset and the
throughput preset against `mobilenet_v2`, the same two questions in MLPerf's terms (LoadGen's SingleStream p90 for
the camera, Offline samples/s for the archivist; skipped when `inferload[mlperf]` is not installed), a short
open-loop run against `resnet50`, and a peak search under a p99 SLO; writes everything to `results/`, renders the
HTML report, prints its path and stops the server.

This process never imports locust: each load-generating step runs in its own `inferload` process.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import typer


def _inferload(args: list[str], console, *, may_fail: bool = False) -> bool:
    # The demo shows INVALID results and says why; they are part of the story, not a failed step.
    allow = ["--allow-invalid"] if args and args[0] in ("run", "sweep", "peak", "tune", "mlperf") else []
    cmd = [sys.executable, "-m", "loadgen.cli", *args, *allow]
    console.rule(f"[bold]$ inferload {' '.join(shlex.quote(a) for a in args)}", align="left")
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        console.print(f"[red]step failed with exit code {proc.returncode}[/red]")
        if not may_fail:
            raise typer.Exit(proc.returncode)
    return proc.returncode == 0


def demo(
    models: Path = typer.Option(Path("models"), "--models", help="Model repository directory."),
    out: Path = typer.Option(Path("results"), "--out", help="Directory for result JSON and the HTML report."),
    model: str = typer.Option("mobilenet_v2", "--model", help="Model for the latency, throughput and peak steps."),
    heavy_model: str = typer.Option("resnet50", "--heavy-model", help="Model for the short open-loop step."),
    heavy_rate: float = typer.Option(15.0, "--heavy-rate", min=0.1, help="Open-loop rate (req/s) for the heavy model."),
    duration: float = typer.Option(8.0, "--duration", min=1.0, help="Measured seconds per run."),
    warmup: float = typer.Option(2.0, "--warmup", min=0.0, help="Warm-up seconds per run."),
    slo_p99_ms: float = typer.Option(
        100.0, "--slo-ms", "--slo-p99-ms", min=0.01, help="p99 bound (ms) for the peak search."
    ),
    peak_duration: float = typer.Option(
        12.0,
        "--peak-duration",
        min=1.0,
        help="Shortest measured window of a peak probe (s), longer if its verdict needs "
        "it (838 queries for p99 at 99% confidence). Server tails on a shared "
        "VM come in bursts: longer windows average more of them, so repeated "
        "demos agree better.",
    ),
    target_rps: float = typer.Option(
        1000.0,
        "--target-rps",
        min=0.001,
        help="Sizing example: replicas needed to serve this many req/s under the SLO.",
    ),
    server_nice: int = typer.Option(
        19,
        "--server-nice",
        min=0,
        max=19,
        help="CPU niceness of the server process, so the co-located generator keeps its schedule.",
    ),
) -> None:
    """Start the server, run short load tests, print the summaries, write results/ and the HTML report."""
    from rich.console import Console

    from loadgen.baseline.serverproc import ServerProcess
    from loadgen.commands._repo import repository_or_exit
    from server.cpus import available_cpus

    console = Console()
    names = [model, heavy_model]
    repository_or_exit(console, models, names, build=True)  # before anything is written
    run_dir = out / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)

    console.rule("[bold]inferload demo")
    console.print(f"starting the model server with {', '.join(names)} (log: {run_dir / 'server.log'}) ...")
    t0 = time.perf_counter()
    # Server and load generator share this machine. The server runs at a lower CPU priority so that the
    # generator, which needs little CPU, still wakes on time for its schedule when the server saturates the CPUs
    # (a starved generator makes open-loop runs INVALID, as it should). On separate machines this is moot.
    console.print(
        f"server and load generator share {available_cpus()} CPUs: the server runs at nice {server_nice} "
        "so the generator keeps its schedule"
    )
    with ServerProcess(models, model_names=names, log_path=run_dir / "server.log", nice=server_nice) as srv:
        console.print(f"server ready at [bold]{srv.url}[/bold] in {time.perf_counter() - t0:.1f}s")
        common = ["--target", srv.url, "--duration", f"{duration:g}", "--warmup", f"{warmup:g}"]
        bench = run_dir / f"bench-{model}.json"
        _inferload(
            [
                "bench",
                "--model",
                model,
                "--models",
                str(models),
                "--batch",
                "1,8",
                "--instances",
                "1",
                "--duration",
                f"{max(2.0, duration / 2):g}",
                "--warmup",
                "1",
                "--out",
                str(bench),
            ],
            console,
        )
        _inferload(
            ["run", *common, "--model", model, "--preset", "latency", "--out", str(run_dir / f"{model}-latency.json")],
            console,
        )
        _inferload(
            [
                "run",
                *common,
                "--model",
                model,
                "--preset",
                "throughput",
                "--out",
                str(run_dir / f"{model}-throughput.json"),
            ],
            console,
        )
        mlperf_docs = _mlperf_steps(console, srv.url, model, run_dir, duration, run_dir / f"{model}-throughput.json")
        _inferload(
            [
                "run",
                *common,
                "--model",
                heavy_model,
                "--mode",
                "open",
                "--rate",
                f"{heavy_rate:g}",
                "--out",
                str(run_dir / f"{heavy_model}-open.json"),
            ],
            console,
        )
        peak_common = ["--target", srv.url, "--duration", f"{peak_duration:g}", "--warmup", f"{warmup:g}"]
        peak_dir = run_dir / f"peak-{model}"
        _inferload(
            [
                "peak",
                *peak_common,
                "--model",
                model,
                "--slo-ms",
                f"{slo_p99_ms:g}",
                "--precision",
                "0.05",
                "--max-probes",
                "16",  # the demo's budget (~6 min in all): at most ~16 x 14 s of peak probes, even on a bursty VM
                "--max-probe-duration",
                "30",
                "--target-rps",
                f"{target_rps:g}",
                "--raw-limit",
                str(bench),
                "--out",
                str(peak_dir),
            ],
            console,
            may_fail=True,
        )
    console.print("server stopped")
    html = run_dir / "report.html"
    _inferload(
        [
            "report",
            str(run_dir / f"{model}-latency.json"),
            str(run_dir / f"{model}-throughput.json"),
            str(run_dir / f"{heavy_model}-open.json"),
            *[str(p) for p in mlperf_docs],
            str(peak_dir),
            str(bench),
            "--html",
            str(html),
        ],
        console,
    )
    console.rule("[bold green]demo done")
    console.print(answer_lines(peak_dir / "peak.json", model))
    console.print(mlperf_lines(mlperf_docs))
    console.print(f"results: {run_dir}/")
    console.print(f"HTML report: [bold]{html.resolve()}[/bold]")


def _mlperf_steps(console, url: str, model: str, run_dir: Path, duration: float, throughput_json: Path) -> list[Path]:
    """LoadGen SingleStream (the camera: p90) and Offline (the archivist: samples/s; it expects 1.5x the throughput
    preset's items/s: LoadGen sizes its one query from that, and a query that ends before the minimum duration is
    INVALID); each a short run of about `duration` s. Returns the mlperf.json files written."""
    import importlib.util

    if importlib.util.find_spec("mlperf_loadgen") is None:
        console.print(
            "[yellow]MLPerf LoadGen not installed (pip install 'inferload[mlperf]'): skipping its steps[/yellow]"
        )
        return []
    import orjson

    try:
        expected = 1.5 * float(orjson.loads(throughput_json.read_bytes()).get("items_per_s") or 0) or 150.0
    except (OSError, ValueError):
        expected = 150.0
    common = ["--target", url, "--model", model, "--min-duration", f"{duration:g}"]
    steps = {
        "singlestream": ["--scenario", "singlestream"],
        "offline": ["--scenario", "offline", "--target-qps", f"{expected:.4g}", "--max-in-flight", "16"],
    }
    done = []
    for name, args in steps.items():
        out = run_dir / f"mlperf-{name}"
        if _inferload(["mlperf", *args, *common, "--out", str(out)], console, may_fail=True):
            done.append(out / "mlperf.json")
    return done


def mlperf_lines(docs: list[Path]) -> str:
    """The two users' answers in MLPerf LoadGen's terms (one line each), or nothing."""
    import orjson

    from loadgen.report.terminal_mlperf import answer_line

    lines = []
    for p in docs:
        try:
            doc = orjson.loads(p.read_bytes())
        except (OSError, ValueError):
            continue
        who = {"singlestream": "the camera", "offline": "the archivist"}.get(doc.get("scenario"), "")
        lines.append(f"[bold]MLPerf LoadGen ({who}):[/bold] {answer_line(doc)}")
    return "\n".join(lines)


def answer_lines(peak_json: Path, model: str) -> str:
    """The demo's answer: the peak under the SLO and the sizing line, or why there is none and what to do."""
    import orjson

    try:
        doc = orjson.loads(peak_json.read_bytes())
    except (OSError, ValueError):
        return f"[red]no peak search result ({peak_json} missing)[/red]"
    pct, slo = doc.get("percentile", 99), doc.get("slo_ms")
    if doc.get("peak_rps") is None:
        return f"[red]no peak ({doc.get('status')})[/red]: {doc.get('reason')}\nadvice: {doc.get('advice')}"
    lines = [
        f"[bold green]answer:[/bold green] {model} on this machine sustains [bold]{doc['peak_rps']:.4g} req/s[/bold] "
        f"at p{pct:g} <= {slo:g} ms ({doc.get('confidence', 0.99):.0%} confidence, {doc.get('status')})"
    ]
    s = doc.get("sizing") or {}
    if s.get("replicas"):
        p99 = f", expected p99 ~{s['expected_p99_ms']:.0f} ms" if s.get("expected_p99_ms") is not None else ""
        lines.append(
            f"[bold]sizing:[/bold] {s['replicas']} replicas for {s['target_rps']:g} req/s at p{pct:g} <= "
            f"{slo:g} ms ({s['headroom']:.0%} headroom{p99})"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
