#!/usr/bin/env python3
"""CPU vs OpenVINO execution provider, in-process (no HTTP): items/s per model × precision × batch × provider, and the
OpenVINO/CPU ratio, all measured in one run on one machine (docs/providers.md, "Measured").

Run it in the OpenVINO environment (`make openvino`) on a quiet machine:

    .venv-openvino/bin/python benchmarks/providers.py                      # ~6 min: 2 models x 2 precisions x 2 batches
    .venv-openvino/bin/python benchmarks/providers.py --markdown           # + the table for docs/providers.md

Each point is `loadgen.baseline.bench.bench_point` (the `inferload bench` loop): one instance with all usable CPUs as
intra-op threads (OpenVINO gets the same count as `num_of_threads`), `--duration` s measured after `--warmup` s.
Providers alternate inside each point and their order flips every round (`--rounds`), so drift on a shared machine
spreads evenly; the figure is the median over the rounds. int8 models are built with onnxruntime.quantization into
`--work` (default results/providers-models; nothing in models/ is touched).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen.baseline.bench import bench_point  # noqa: E402
from loadgen.results.machine import machine_info  # noqa: E402
from server.cpus import available_cpus  # noqa: E402
from server.providers import parse_provider_list  # noqa: E402
from server.repository import ensure_built, load_model_config, scaffold_builtin  # noqa: E402
from server.runtime import check_providers  # noqa: E402


def model_path(work: Path, name: str, precision: str) -> Path:
    """The built-in `name` at `precision`, built (deterministically) under `work`."""
    if not (work / name / "config.toml").exists():
        shutil.copytree(ROOT / "models" / name, work / name, ignore=shutil.ignore_patterns("*.onnx"))
    folder = work / name if precision == "fp32" else scaffold_builtin(work, name, precision)
    cfg = load_model_config(folder)
    ensure_built(cfg)
    return cfg.model_path


def measure(args: argparse.Namespace) -> dict:
    providers = parse_provider_list(args.providers)
    check_providers(providers, "benchmarks/providers.py --providers")
    threads = args.threads or available_cpus()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            path = model_path(work, model, precision)
            for batch in (int(b) for b in args.batches.split(",")):
                samples: dict[str, list[float]] = {p: [] for p in providers}
                for rnd in range(args.rounds):
                    for p in providers if rnd % 2 == 0 else list(reversed(providers)):
                        r = bench_point(path, batch, 1, threads, args.duration, args.warmup, idle_calls=0, provider=p)
                        assert r["provider"] == p, f"{p} requested, {r['provider']} ran"
                        samples[p].append(r["throughput_items_per_s"])
                figures = {p: statistics.median(v) for p, v in samples.items()}
                row = {
                    "model": model,
                    "precision": precision,
                    "batch": batch,
                    "items_per_s": figures,
                    "rounds": samples,
                }
                if figures.get("cpu") and figures.get("openvino"):
                    row["openvino_vs_cpu"] = figures["openvino"] / figures["cpu"]
                rows.append(row)
                print(line(row, providers), flush=True)
    return {
        "kind": "providers-benchmark",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "threads": threads,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "providers": providers,
        "results": rows,
    }


def line(row: dict, providers: list[str]) -> str:
    figs = "  ".join(f"{p} {row['items_per_s'][p]:8.1f}" for p in providers)
    ratio = f"  openvino/cpu {row['openvino_vs_cpu']:.2f}" if "openvino_vs_cpu" in row else ""
    if not all(row["items_per_s"].values()):
        ratio += "  (no call finished inside --duration: make it longer)"
    return f"{row['model']:>14} {row['precision']:>5} batch {row['batch']:>2}: {figs} items/s{ratio}"


def markdown(doc: dict) -> str:
    m = doc["machine"]
    head = (
        f"Measured {doc['started_at']} on {m['cpu_model']} ({m['cpus']} usable CPUs), {doc['threads']} threads, "
        f"{m.get('onnxruntime_distribution')} {m.get('onnxruntime')}, {doc['duration_s']:g} s per point, median of "
        f"{doc['rounds']} rounds (`benchmarks/providers.py`).\n\n"
    )
    provs = doc["providers"]
    out = ["| model | precision | batch | " + " | ".join(f"{p} items/s" for p in provs) + " | OpenVINO / CPU |"]
    out.append("| --- | --- | ---: | " + " | ".join("---:" for _ in provs) + " | ---: |")
    for r in doc["results"]:
        ratio = f"{r['openvino_vs_cpu']:.2f}" if "openvino_vs_cpu" in r else "–"
        figs = " | ".join(f"{r['items_per_s'][p]:.1f}" for p in provs)
        out.append(f"| {r['model']} | {r['precision']} | {r['batch']} | {figs} | {ratio} |")
    return head + "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--providers", default="cpu,openvino")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: usable CPUs)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per point and provider")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "results" / "providers-models"))
    ap.add_argument("--out", default=None, help="write the JSON document here")
    ap.add_argument("--markdown", action="store_true", help="also print the table for docs/providers.md")
    args = ap.parse_args(argv)
    doc = measure(args)
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.markdown:
        print()
        print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
