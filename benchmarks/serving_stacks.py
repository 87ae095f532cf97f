#!/usr/bin/env python3
"""Serving stacks side by side: `inferload peak` against each given server, one table (issue 17, item 6; not CI).

The same ONNX model (default mobilenet_v2, models/mobilenet_v2/model.onnx) served on one box by:

  inferload  inferload's own server            OIP REST, binary tensors; queue/compute from its Server-Timing
  mlserver   MLServer (custom ORT runtime)     OIP REST, JSON tensors (its REST front has no binary extension)
  litserve   LitServe (a LitAPI running ORT)   not OIP: POST /predict with a JSON body template
  triton     Triton through PyTriton           OIP REST, binary tensors; queue/compute from its Prometheus metrics

This script installs nothing and starts no server: start the ones you want first (docs/other-servers.md gives the
commands), pass their base URLs, and it runs `inferload peak` against each in turn (one at a time: two searches at
once would share the CPUs), then prints server, protocol/payload, status (found / capped / generator-limited /
never-passed), peak req/s, the percentile at the peak, its confidence, the queue/compute split where one is known,
and the exact command used. Results land in OUT/<name>/ (peak.json, probe-NNN.json, peak.log, command.txt) and
OUT/summary.json + OUT/summary.md. Results of earlier runs into the same OUT are kept and shown too, so the servers
can be measured one at a time (start one, measure it, stop it, next) and the table still has them all.

Usage:
  .venv/bin/python benchmarks/serving_stacks.py --inferload http://127.0.0.1:8201 --mlserver http://127.0.0.1:8202 \\
      --litserve http://127.0.0.1:8203 --triton http://127.0.0.1:8204 --triton-metrics http://127.0.0.1:8206/metrics \\
      --slo-ms 50 --out results/serving-stacks
  .venv/bin/python benchmarks/serving_stacks.py --out results/serving-stacks        # table of what OUT holds
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The LitServe endpoint of docs/other-servers.md: {"input": <nested list [1,3,224,224]>} -> {"output": [[...]]}.
# Body-template syntax of `--protocol http-json` (docs/http-json.md); the same text as examples/templates/litserve.json.
LITSERVE_TEMPLATE = '{"input": {{tensor:input:nested}}}\n'
LITSERVE_TEMPLATE_FILE = REPO / "examples" / "templates" / "litserve.json"

SERVERS: dict[str, dict[str, str]] = {
    "inferload": {"label": "inferload serve", "protocol": "OIP REST, binary tensors"},
    "mlserver": {"label": "MLServer", "protocol": "OIP REST, JSON tensors"},
    "litserve": {"label": "LitServe", "protocol": "HTTP JSON (/predict, body template)"},
    "triton": {"label": "Triton (PyTriton)", "protocol": "OIP REST, binary tensors"},
}

STATUS = {
    "found": "found",
    "capped": "capped",
    "generator_limited": "generator-limited",
    "never_passed": "never-passed",
    "probe_limit": "probe-limit",
}

# Triton's per-model counters (cumulative microseconds / counts), PyTriton's default metrics layout.
TRITON_SERIES = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--inferload", metavar="URL", help="inferload's own server (OIP, binary tensors)")
    p.add_argument("--mlserver", metavar="URL", help="MLServer (OIP REST, JSON tensors)")
    p.add_argument("--litserve", metavar="URL", help="LitServe base URL (POST --litserve-path with a JSON template)")
    p.add_argument("--triton", metavar="URL", help="Triton / PyTriton HTTP endpoint (OIP, binary tensors)")
    p.add_argument(
        "--triton-metrics", metavar="URL", help="Triton's Prometheus metrics (PyTriton: HTTP port + 2, /metrics)"
    )
    p.add_argument(
        "--mlserver-metrics", metavar="URL", help="MLServer's Prometheus metrics (its metrics_port, /metrics)"
    )
    p.add_argument("--slo-ms", type=float, default=50.0, help="bound on p99 (or --percentile) latency, ms (default 50)")
    p.add_argument("--percentile", type=float, default=None, help="percentile the SLO applies to (inferload: 99)")
    p.add_argument("--model", default="mobilenet_v2", help="model name on every server (default mobilenet_v2)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default results/serving-stacks-<time>)")
    p.add_argument("--inferload-bin", default=None, help="the inferload CLI (default: .venv/bin/inferload, or PATH)")
    p.add_argument("--litserve-path", default="/predict", help="LitServe request path (default /predict)")
    p.add_argument(
        "--litserve-template",
        type=Path,
        default=None,
        help="LitServe body template file (default: examples/templates/litserve.json)",
    )
    p.add_argument("--input-shape", default="input:1,3,224,224", help="--shape given to the http-json run")
    p.add_argument("--duration", type=float, default=None, help="peak: measured seconds per probe")
    p.add_argument("--warmup", type=float, default=None, help="peak: warm-up seconds per probe")
    p.add_argument("--max-probes", type=int, default=None, help="peak: at most this many probes")
    p.add_argument("--max-probe-duration", type=float, default=None, help="peak: longest probe window (s)")
    p.add_argument("--max-rate", type=float, default=None, help="peak: never probe above this (req/s)")
    p.add_argument(
        "--peak-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every `inferload peak` (repeatable), e.g. --peak-arg=--workers=1",
    )
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return p.parse_args(argv)


def inferload_bin(given: str | None) -> str:
    if given:
        return given
    local = REPO / ".venv" / "bin" / "inferload"
    if local.exists():
        return str(local)
    found = shutil.which("inferload")
    if not found:
        sys.exit("error: no inferload CLI (give --inferload-bin, or run from the repo with .venv built)")
    return found


def peak_flags(cli: str) -> set[str]:
    """The long options `inferload peak` accepts (so a flag that has not landed is reported, not guessed)."""
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run([cli, "peak", "--help"], capture_output=True, text=True, env=env)
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", out.stdout))


def server_args(name: str, url: str, a: argparse.Namespace, out: Path) -> list[str]:
    """The flags that say how to talk to one server."""
    if name == "inferload":
        return ["--target", url, "--payload", "binary"]
    if name == "mlserver":
        extra = ["--server-metrics", a.mlserver_metrics] if a.mlserver_metrics else []
        return ["--target", url, "--payload", "json", *extra]
    if name == "triton":
        extra = ["--server-metrics", a.triton_metrics] if a.triton_metrics else []
        return ["--target", url, "--payload", "binary", *extra]
    if name == "litserve":
        template = a.litserve_template
        if template is None and LITSERVE_TEMPLATE_FILE.exists():
            template = LITSERVE_TEMPLATE_FILE
        if template is None:
            template = out / "body-template.json"
            if not a.dry_run:
                template.parent.mkdir(parents=True, exist_ok=True)
                template.write_text(LITSERVE_TEMPLATE)
        shape = ["--shape", a.input_shape] if a.input_shape else []
        return [
            "--target",
            url,
            "--protocol",
            "http-json",
            "--path",
            a.litserve_path,
            "--body-template",
            str(template),
            "--expect",
            "/output",
            *shape,
        ]
    raise ValueError(name)


def peak_command(cli: str, name: str, url: str, a: argparse.Namespace, out: Path, known: set[str]) -> list[str]:
    slo_flag = "--slo-ms" if "--slo-ms" in known or not known else "--slo-p99-ms"  # --slo-p99-ms: the older name
    cmd = [cli, "peak", "--model", a.model, slo_flag, f"{a.slo_ms:g}", "--out", str(out)]
    if a.percentile is not None:
        cmd += ["--percentile", f"{a.percentile:g}"]
    for flag, value in (
        ("--duration", a.duration),
        ("--warmup", a.warmup),
        ("--max-probes", a.max_probes),
        ("--max-probe-duration", a.max_probe_duration),
        ("--max-rate", a.max_rate),
    ):
        if value is not None:
            cmd += [flag, f"{value:g}"]
    return cmd + server_args(name, url, a, out) + list(a.peak_arg)


def missing_flags(cmd: list[str], known: set[str]) -> list[str]:
    return [c.split("=")[0] for c in cmd if c.startswith("--") and c.split("=")[0] not in known]


# --- Triton's Prometheus counters ------------------------------------------------------------------------------


def scrape(url: str, model: str) -> dict[str, float] | None:
    """Sum of each TRITON_SERIES for `model` (all versions), or None when the endpoint does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    out = dict.fromkeys(TRITON_SERIES, 0.0)
    pattern = re.compile(r"^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)")
    for line in text.splitlines():
        m = pattern.match(line)
        if m and m.group(1) in out and f'model="{model}"' in m.group(2):
            out[m.group(1)] += float(m.group(3))
    return out


def triton_split(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any] | None:
    """Mean queue and compute per request over everything between two scrapes (the whole search)."""
    if not before or not after:
        return None
    d = {k: after[k] - before[k] for k in TRITON_SERIES}
    n = d["nv_inference_request_success"]
    if n <= 0:
        return None
    compute_us = sum(d[k] for k in TRITON_SERIES if k.startswith("nv_inference_compute_"))
    return {
        "requests": int(n),
        "queue_mean_ms": d["nv_inference_queue_duration_us"] / n / 1000.0,
        "compute_mean_ms": compute_us / n / 1000.0,
        "mean_batch": d["nv_inference_count"] / d["nv_inference_exec_count"] if d["nv_inference_exec_count"] else None,
        "scope": "mean per request over the whole search, from nv_inference_* counters scraped before and after",
    }


def cpu_busy_percent(interval_s: float = 1.0) -> float | None:
    """Share of all CPUs busy over `interval_s` (Linux /proc/stat), recorded beside each result: these figures need
    an otherwise idle box, and a test suite running beside a search changes its answer."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        t0, i0 = sample()
        time.sleep(interval_s)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100.0 * (1.0 - (i1 - i0) / (t1 - t0)), 1) if t1 > t0 else None


# --- reading one result -----------------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def split_from_run(run: dict[str, Any]) -> str | None:
    """Queue/compute of one probe: per-request Server-Timing means if the server sent them, else the window means of
    the run's `server_metrics` block (the server's Prometheus counters before/after the window), else None."""
    dec = run.get("decomposition_ms") or {}
    q, c = (dec.get("queue") or {}).get("mean"), (dec.get("compute") or {}).get("mean")
    if q is not None or c is not None:
        return f"{_fmt(q)} / {_fmt(c)} (Server-Timing)"
    sm = run.get("server_metrics")
    figs = (sm.get("figures") or {}) if isinstance(sm, dict) else {}
    q, c, b = figs.get("queue_ms_mean"), figs.get("compute_ms_mean"), figs.get("batch_size_mean")
    fam = sm.get("family") if isinstance(sm, dict) else None
    if q is not None or c is not None:
        batch = f", batch {b:.1f}" if b is not None else ""
        return f"{_fmt(q)} / {_fmt(c)} ({fam} metrics{batch})"
    if figs.get("request_ms_mean") is not None:
        return f"not exported; request mean {figs['request_ms_mean']:.1f} ({fam} metrics)"
    return None


def summarize(name: str, d: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, **SERVERS.get(name, {"label": name, "protocol": "?"})}
    row["command"] = (d / "command.txt").read_text().strip() if (d / "command.txt").exists() else None
    meta = _load(d / "meta.json") or {}
    row["exit_code"] = meta.get("exit_code")
    row["cpu_busy_percent_before"] = meta.get("cpu_busy_percent_before")
    doc = _load(d / "peak.json")
    if doc is None:
        row["status"] = f"error (exit {meta.get('exit_code')}; see {d / 'peak.log'})"
        return row
    row["has_result"] = True
    row["status"] = STATUS.get(doc.get("status"), str(doc.get("status")))
    row["peak_rps"] = doc.get("peak_rps")
    row["percentile"] = doc.get("percentile", 99.0)
    row["slo_ms"] = doc.get("slo_ms")
    row["reason"] = (
        (doc.get("reason") or {}).get("message") if isinstance(doc.get("reason"), dict) else doc.get("reason")
    )
    if row["status"] == "generator-limited":
        row["generator_rps"] = doc.get("generator_ceiling_rps") or doc.get("generator_rps")
    conf = doc.get("confirmation") or {}
    probes = doc.get("probes") or []
    at_peak = [p for p in probes if doc.get("peak_rps") is not None and p.get("rate_rps") == doc["peak_rps"]]
    ref = [p for p in at_peak if p.get("passed")] or at_peak
    if not ref and probes:  # no answer: describe the lowest rate tried
        ref = [min(probes, key=lambda p: p.get("rate_rps") or 0.0)]
        row["lowest_rps"] = ref[0].get("rate_rps")
    pct = (conf.get("percentile_ms") or {}).get("median")
    if pct is None and ref:
        pct = (ref[-1].get("info") or {}).get("p99_ms")
    row["percentile_ms"] = pct
    ucbs = [u for u in (conf.get("ucb_ms") or []) if u is not None]
    if not ucbs and ref:
        u = ((ref[-1].get("info") or {}).get("verdict") or {}).get("ucb_ms")
        ucbs = [u] if u is not None else []
    c = doc.get("confidence")
    parts = []
    if c is not None and ucbs:
        parts.append(f"{c:.0%} UCB <= {max(ucbs):.1f} ms")
    if conf.get("runs"):
        parts.append(f"{conf.get('passes')}/{conf.get('runs')} runs pass")
    row["confidence"] = ", ".join(parts) or "-"
    split = None
    if ref:
        files = (ref[-1].get("info") or {}).get("files") or [ref[-1].get("file")]
        run = _load(d / str(files[-1])) if files and files[-1] else None
        split = split_from_run(run) if run else None
    tri = _load(d / "server-metrics.json")
    if split is None and tri:
        split = f"{_fmt(tri['queue_mean_ms'])} / {_fmt(tri['compute_mean_ms'])} (metrics, whole search)"
    row["queue_compute_ms"] = split
    return row


# --- the table ----------------------------------------------------------------------------------------------------

COLUMNS = (
    ("server", lambda r: r["label"]),
    ("protocol / payload", lambda r: r["protocol"]),
    ("status", lambda r: r["status"]),
    ("peak req/s", lambda r: _fmt(r.get("peak_rps"))),
    ("p99 ms", lambda r: pct_cell(r)),
    ("confidence", lambda r: r.get("confidence") or "-"),
    ("queue / compute ms", lambda r: r.get("queue_compute_ms") or ("not exported" if r.get("has_result") else "-")),
    ("cmd", lambda r: f"[{r['index']}]"),
)


def pct_cell(r: dict[str, Any]) -> str:
    """The percentile at the peak, or (no peak) at the lowest rate tried, saying so."""
    v = _fmt(r.get("percentile_ms"))
    if v != "-" and r.get("lowest_rps") is not None:
        return f"{v} at {r['lowest_rps']:.3g} req/s (lowest)"
    return v


def notes_of(r: dict[str, Any]) -> str:
    bits = []
    busy = r.get("cpu_busy_percent_before")
    if busy is not None and busy > 10.0:
        bits.append(f"CPUs {busy:.0f}% busy before the run (shared box?)")
    if r.get("status") == "generator-limited" and r.get("generator_rps"):
        bits.append(f"generator ceiling ~{r['generator_rps']:.1f} req/s")
    if r.get("lowest_rps") is not None:
        bits.append(f"lowest rate tried {r['lowest_rps']:.3g} req/s")
    if r.get("reason") and r.get("status") != "found":
        bits.append(str(r["reason"]))
    return "; ".join(bits)


def heading(h: str, rows: list[dict[str, Any]]) -> str:
    if h == "p99 ms":
        pcts = {r.get("percentile") for r in rows if r.get("percentile") is not None}
        return f"p{pcts.pop():g} ms" if len(pcts) == 1 else "percentile ms"
    return h


def render_text(rows: list[dict[str, Any]]) -> str:
    cells = [[heading(h, rows) for h, _ in COLUMNS]] + [[f(r) for _, f in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        n = notes_of(r)
        if n:
            lines.append(f"  {r['label']}: {n}")
    lines.append("")
    for r in rows:
        earlier = "   (earlier run)" if r.get("earlier_run") else ""
        lines.append(f"[{r['index']}] {r.get('command') or '(no command recorded)'}{earlier}")
    return "\n".join(lines)


def render_markdown(rows: list[dict[str, Any]]) -> str:
    head = [heading(h, rows) for h, _ in COLUMNS[:-1]] + ["notes"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([f(r) for _, f in COLUMNS[:-1]] + [notes_of(r) or ""]) + " |")
    out.append("")
    out += [f"- {r['label']}: `{r.get('command') or '-'}`" for r in rows]
    return "\n".join(out) + "\n"


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    out = a.out or REPO / "results" / f"serving-stacks-{datetime.now():%Y%m%d-%H%M%S}"
    given = {n: getattr(a, n) for n in SERVERS if getattr(a, n)}
    if a.triton_metrics and not a.triton:
        print("warning: --triton-metrics without --triton is ignored", file=sys.stderr)
    cli = inferload_bin(a.inferload_bin) if given else ""
    known = peak_flags(cli) if given else set()
    skipped: dict[str, str] = {}
    for name, url in given.items():
        d = out / name
        cmd = peak_command(cli, name, url, a, d, known)
        text = shlex.join(cmd)
        lacking = missing_flags(cmd, known)
        if lacking:
            skipped[name] = f"`inferload peak` has no {', '.join(lacking)} yet"
            print(f"skip {name}: {skipped[name]}", file=sys.stderr)
            continue
        print(f"\n== {SERVERS[name]['label']} at {url}\n$ {text}", flush=True)
        if a.dry_run:
            continue
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("peak.json", "server-metrics.json", "meta.json"):
            (d / stale).unlink(missing_ok=True)
        (d / "command.txt").write_text(text + "\n")
        before = scrape(a.triton_metrics, a.model) if name == "triton" and a.triton_metrics else None
        if name == "triton" and a.triton_metrics and before is None:
            print(f"warning: {a.triton_metrics} did not answer; no queue/compute split for Triton", file=sys.stderr)
        busy_before = cpu_busy_percent()
        if busy_before is not None and busy_before > 10.0:
            print(f"warning: the CPUs were {busy_before:.0f}% busy just before this run: is something else running?")
        t0 = time.monotonic()
        with open(d / "peak.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
            rc = proc.wait()
        meta = {
            "exit_code": rc,
            "elapsed_s": round(time.monotonic() - t0, 1),
            "url": url,
            "cpu_busy_percent_before": busy_before,
        }
        (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        if before is not None:
            split = triton_split(before, scrape(a.triton_metrics, a.model))
            if split:
                (d / "server-metrics.json").write_text(json.dumps(split, indent=2) + "\n")
    if a.dry_run:
        return 0
    names = [n for n in SERVERS if (out / n / "command.txt").exists()]
    rows = []
    for i, n in enumerate(names, 1):
        row = summarize(n, out / n)
        row["index"] = i
        row["earlier_run"] = n not in given
        rows.append(row)
    for n, why in skipped.items():
        rows.append({"name": n, **SERVERS[n], "status": f"skipped: {why}", "index": len(rows) + 1})
    if not rows:
        print(f"nothing to show: no server given and no results in {out}", file=sys.stderr)
        return 2
    print()
    print(render_text(rows))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"slo_ms": a.slo_ms, "model": a.model, "rows": rows}, indent=2) + "\n")
    (out / "summary.md").write_text(render_markdown(rows))
    print(f"\nwritten: {out / 'summary.json'}, {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
