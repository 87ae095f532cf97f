"""The peak search against simulated M/M/1 servers whose true percentile curve is known, and against a simulated MLPerf
LoadGen (the cross-check of benchmarks/vs_mlperf.py with LoadGen's runs simulated too). Pure: no sockets, no sleeps;
a search takes a fraction of a second. Used by tests/curves/test_peak_mm1.py; run it for more seeds:

    .venv/bin/python -m tests.curves.peak_sim --seeds 40 --independent --loadgen
    .venv/bin/python -m tests.curves.peak_sim --seeds 40 --loadgen --service-rps 1000

Two servers with the same true p99 curve (the bound is met up to mm1_true_peak_rps):
- `independent`: each query's latency drawn on its own from the M/M/1 stationary law, the independent queries a
  binomial verdict (inferload's, LoadGen's early stopping) assumes; there every pooled verdict is an exact 99% statement.
- the queue itself (Lindley's recursion from an empty queue): latencies are correlated, the tail comes in bursts (the
  queries over the bound arrive together during a long busy period), and no binomial verdict holds its stated
  confidence: a run at the true boundary passes far more often than 1%.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loadgen.results.analysis import judge_slo
from loadgen.results.recorded import decode_histogram
from tests.curves.fakes import mm1_run, mm1_scenario_run, mm1_true_peak_rps

SERVICE_RPS = 176.0  # with a 100-ms bound: true peak ~130 req/s, like mobilenet_v2 on the 2-core VM of docs/mlperf.md
BOUND_MS = 100.0


@dataclass
class Search:
    seed: int
    service_rps: float
    truth_rps: float
    peak_rps: float | None
    status: str
    probes: int
    seconds: float  # measured + warm-up seconds of every run the search made
    doc: dict


def service_rate(seed: int, service_rps: float = SERVICE_RPS, spread: float = 0.1) -> float:
    """The seed's server: capacity varied by +-spread so the answer lands at every position of the bisection's grid."""
    return service_rps * math.exp(random.Random(seed).uniform(-spread, spread))


def search(
    seed: int,
    rule: str = "pooled",
    *,
    independent: bool = True,
    service_rps: float = SERVICE_RPS,
    bound_ms: float = BOUND_MS,
    duration_s: float = 10.0,
    confirm: int = 3,
) -> Search:
    """`inferload peak` with default flags (capacity probe, sized probes, bracket, bisect, confirm) on the seed's server."""
    from loadgen.engine.scenario import Scenario
    from loadgen.search.peaksearch import PeakOptions, run_peak_search

    mu = service_rate(seed, service_rps)
    base = Scenario(
        target="http://127.0.0.1:9",
        model="m",
        mode="open",
        rate_rps=1,
        duration_s=duration_s,
        warmup_s=2,
        slo_p99_ms=bound_ms,
        seed=seed * 1000,
    )
    with tempfile.TemporaryDirectory() as d:
        doc = run_peak_search(
            base,
            mm1_scenario_run(mu, independent=independent),
            Path(d),
            PeakOptions(slo_ms=bound_ms, confirm=confirm, confirm_rule=rule),
        )
    seconds = sum(a["duration_s"] + (a.get("warmup_s") or 0) for p in doc["probes"] for a in p["info"]["attempts"])
    return Search(
        seed,
        mu,
        mm1_true_peak_rps(mu, bound_ms),
        doc["peak_rps"],
        doc["status"],
        len(doc["probes"]),
        seconds,
        doc,
    )


def loadgen_valid(rate: float, service_rps: float, seed: int, independent: bool, bound_ms: float = BOUND_MS) -> bool:
    """One simulated LoadGen Server run: 30 s from an empty queue, no warm-up, VALID when its p99 verdict passes
    (LoadGen's early stopping is the same binomial statement, docs/mlperf.md)."""
    r = mm1_run(rate, service_rps=service_rps, duration_s=30.0, warmup_s=0.0, seed=seed, independent=independent)
    return judge_slo(decode_histogram(r["histogram_b64"]), 0, bound_ms)["verdict"] == "pass"


def loadgen_boundary(
    peak: float, service_rps: float, seed: int, independent: bool, refine: float = 0.025
) -> float | None:
    """benchmarks/vs_mlperf.py's bracket of LoadGen's VALID boundary around inferload's peak (its own `bracket`), on
    simulated runs."""
    from benchmarks.vs_mlperf import bracket

    k = 0

    def measure(rate: float) -> dict:
        nonlocal k
        k += 1
        return {"valid": loadgen_valid(rate, service_rps, 10_000 + seed * 100 + k, independent)}

    lo, _, _ = bracket(measure, peak, refine, max_runs=12)
    return None if lo is None else lo * peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--rules", default="majority,pooled")
    ap.add_argument("--independent", action="store_true", help="independent queries (else: the queue itself)")
    ap.add_argument("--service-rps", type=float, default=SERVICE_RPS)
    ap.add_argument("--duration", type=float, default=10.0, help="--duration of the peak search's probes")
    ap.add_argument("--confirm", type=int, default=3)
    ap.add_argument("--loadgen", action="store_true", help="also bracket a simulated LoadGen's VALID boundary")
    a = ap.parse_args()
    for rule in a.rules.split(","):
        rows = [
            search(
                s, rule, independent=a.independent, service_rps=a.service_rps, duration_s=a.duration, confirm=a.confirm
            )
            for s in range(a.seeds)
        ]
        r = [x.peak_rps / x.truth_rps for x in rows if x.peak_rps]
        line = (
            f"{rule:9s} {'independent' if a.independent else 'queue'} mu~{a.service_rps:g}/s: peak / truth mean "
            f"{statistics.mean(r):.3f} sd {statistics.pstdev(r):.3f} min {min(r):.3f} max {max(r):.3f}, above "
            f"truth {sum(x > 1 for x in r)}/{len(r)}; runs {statistics.mean(x.probes for x in rows):.1f}, "
            f"{statistics.mean(x.seconds for x in rows):.0f} s"
        )
        if a.loadgen:
            g, valid = [], 0
            for x in rows:
                if x.peak_rps:
                    b = loadgen_boundary(x.peak_rps, x.service_rps, x.seed, a.independent)
                    if b:
                        g.append(x.peak_rps / b)
                    valid += loadgen_valid(x.peak_rps, x.service_rps, 777 + x.seed, a.independent)
            line += (
                f"; peak / LoadGen boundary mean {statistics.mean(g):.3f} min {min(g):.3f} max {max(g):.3f}, >= 0.95 "
                f"{sum(v >= 0.95 for v in g)}/{len(g)}, > 1 {sum(v > 1 for v in g)}/{len(g)}; LoadGen VALID at the "
                f"peak {valid}/{len(rows)}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
