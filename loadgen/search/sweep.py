"""Rate and concurrency sweeps: the latency–throughput curve, point by point.

Each point is one full load test (warm-up, measurement, validity) made by an injected `run(scenario) -> result`
callable — `loadgen.engine.runner.run_scenario` in the CLI, a simulation in tests — so this module never imports
locust. Results are written as they arrive: `point-000.json`, ... and `sweep.json` (rewritten after every
point, so an interrupted sweep still leaves a readable file).

`--rates auto`: geometric steps (× factor from a start rate) until a stop condition holds:
  * the SLO is broken (p99 > SLO, when an SLO is set),
  * the server saturates: achieved < 0.95 × offered,
  * errors appear (any failed request),
  * or the step / rate limit is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.results.confidence import min_queries
from loadgen.results.io import write_json
from loadgen.results.points import percentile_of, summarize_point
from loadgen.results.schema import SCHEMA_VERSION
from loadgen.search.sizing import sizing_for
from loadgen.util.numbers import parse_numbers

SATURATION_RATIO = 0.95

RunFn = Callable[[Any], dict]
PointCallback = Callable[[dict, dict], None]  # (summary row, full result)


def stop_reason(row: dict, slo_ms: float | None, percentile: float = 99) -> str | None:
    """Why an auto sweep stops after this point (None: keep going)."""
    lat = percentile_of(row, percentile)
    if slo_ms is not None and lat is not None and lat > slo_ms:
        return f"SLO broken: p{percentile:g} {lat:.1f} ms > {slo_ms:g} ms"
    off, ach = row.get("offered_rps"), row.get("achieved_rps")
    if row.get("mode") == "open" and off and ach is not None and ach < SATURATION_RATIO * off:
        return f"saturated: achieved {ach:.1f} < {SATURATION_RATIO:.2f} x offered {off:.1f} req/s"
    if row.get("failed"):
        return f"errors appeared: {row['failed']} failed requests {row.get('errors') or ''}".strip()
    return None


def auto_rates(start_rps: float, factor: float, max_rps: float | None, max_points: int) -> Iterable[float]:
    if start_rps <= 0 or factor <= 1:
        raise ValueError("auto rates need start > 0 and factor > 1")
    r = start_rps
    for _ in range(max_points):
        if max_rps is not None and r > max_rps * (1 + 1e-9):
            return
        yield round(r, 3)
        r *= factor


def peak_from_points(points: list[dict], slo_ms: float | None, percentile: float = 99) -> dict | None:
    """Highest *measured* point that was VALID and met the SLO (conservative: no interpolation), or None. A point
    with an SLO verdict (schema 2) must have passed it with confidence; older points compare the estimate."""
    if slo_ms is None:
        return None

    def meets(p: dict) -> bool:
        if (
            p.get("slo_verdict") is not None
            and p.get("slo_bound_ms") == slo_ms
            and p.get("slo_percentile") == percentile
        ):
            return p["slo_verdict"] == "pass"
        lat = percentile_of(p, percentile)
        return lat is not None and lat <= slo_ms

    ok = [p for p in points if p.get("valid") and meets(p)]
    if not ok:
        undecided = sum(1 for p in points if p.get("valid") and p.get("slo_verdict") == "undecided")
        why = (
            f" ({undecided} undecided: too few samples for a confident verdict; raise --duration or use "
            "`inferload peak`, which sizes each probe)"
            if undecided
            else ""
        )
        return {"rate_rps": None, "reason": f"no valid point passed p{percentile:g} <= {slo_ms:g} ms{why}"}
    best = max(ok, key=lambda p: p.get("achieved_rps") or 0)
    return {
        "rate_rps": best.get("offered_rps") or best.get("achieved_rps"),
        "achieved_rps": best.get("achieved_rps"),
        "items_per_s": best.get("items_per_s"),
        "latency_ms": percentile_of(best, percentile),
        "percentile": percentile,
        "index": best.get("index"),
        "method": "highest measured valid point whose SLO verdict passed (no interpolation)",
    }


def run_sweep(
    base_scenario: Any,
    run: RunFn,
    out_dir: Path,
    *,
    rates: list[float] | None = None,
    users: list[int] | None = None,
    auto: dict | None = None,
    slo_ms: float | None = None,
    percentile: float = 99,
    raw_limit: dict | None = None,
    on_point: PointCallback | None = None,
) -> dict:
    """Run the points and write the sweep directory. Exactly one of rates / users / auto.

    auto = {"start_rps": 5, "factor": 1.5, "max_rps": None, "max_points": 12}
    """
    if sum(x is not None for x in (rates, users, auto)) != 1:
        raise ValueError("give exactly one of rates, users or auto")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if users is not None:
        updates = [{"mode": "closed", "users": int(u), "rate_rps": None} for u in users]
        kind = "users"
    elif rates is not None:
        updates = [{"mode": "open", "rate_rps": float(r), "users": None} for r in rates]
        kind = "rates"
    else:
        updates = (
            {"mode": "open", "rate_rps": float(r), "users": None}
            for r in auto_rates(
                auto.get("start_rps", 5.0), auto.get("factor", 1.5), auto.get("max_rps"), auto.get("max_points", 12)
            )
        )
        kind = "auto"

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "sweep",
        "sweep": kind,
        "auto": auto,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": _dump(base_scenario),
        "slo_p99_ms": slo_ms,
        "percentile": percentile,
        "points": [],
        "peak": None,
        "raw_limit": raw_limit,
        "stopped": None,
        "notes": [],
    }
    if kind == "users":
        doc["notes"].append(
            "closed loop: each user waits for its answer, so latency under overload hides "
            "server stalls (coordinated omission); use an open-loop rate sweep for SLO questions"
        )
    for i, update in enumerate(updates):
        scenario = base_scenario.model_copy(update=update)
        result = run(scenario)
        fname = f"point-{i:03d}.json"
        write_json(out_dir / fname, result)
        row = summarize_point(result, fname, i)
        doc["points"].append(row)
        doc["peak"] = peak_from_points(doc["points"], slo_ms, percentile)
        why = stop_reason(row, slo_ms, percentile) if kind == "auto" else None
        if why:
            doc["stopped"] = why
        write_json(out_dir / "sweep.json", doc)
        if on_point is not None:
            on_point(row, result)
        if why:
            break
    else:
        if kind == "auto":
            doc["stopped"] = "step limit reached before the SLO broke or the server saturated"
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(out_dir / "sweep.json", doc)
    return doc


def _dump(scenario: Any) -> dict:
    if hasattr(scenario, "model_dump"):
        return scenario.model_dump(mode="json")
    return dict(scenario)


@dataclass(frozen=True)
class SweepPlan:
    """What to sweep: explicit rates, explicit user counts, or auto rates (geometric steps)."""

    rates: list[float] | None = None
    users: list[int] | None = None
    auto: dict[str, Any] | None = None

    @classmethod
    def parse(
        cls,
        rates: str | None,
        users: str | None,
        *,
        start_rps: float,
        factor: float,
        max_rps: float | None,
        max_points: int,
    ) -> SweepPlan:
        """--rates '5,10' | 'auto', or --users '1,2,4' (exactly one); ValueError with the fix otherwise."""
        if (rates is None) == (users is None):
            raise ValueError("give exactly one of --rates (open loop) or --users (closed loop)")
        if users is not None:
            return cls(users=parse_numbers(users, "--users", int, minimum=1, allow_minimum=True))
        assert rates is not None
        if rates.strip().lower() == "auto":
            return cls(auto={"start_rps": start_rps, "factor": factor, "max_rps": max_rps, "max_points": max_points})
        return cls(rates=parse_numbers(rates, "--rates", float))

    def first(self) -> dict[str, Any]:
        """Scenario fields of the first point (mode and load)."""
        if self.users:
            return {"mode": "closed", "users": self.users[0]}
        return {"mode": "open", "rate_rps": self.rates[0] if self.rates else (self.auto or {})["start_rps"]}

    def describe(self) -> str:
        if self.users:
            return f"users {self.users}"
        if self.rates:
            return f"rates {self.rates} req/s"
        a = self.auto or {}
        return f"auto rates from {a['start_rps']:g} req/s × {a['factor']:g}"

    def undecided_note(self, scenario: Any, slo_ms: float | None) -> str | None:
        """Rates too low to ever reach a confident verdict in the measured window (they can only be undecided)."""
        if self.users or not slo_ms:
            return None
        need = min_queries(scenario.slo_percentile / 100.0, scenario.confidence) or 0
        floor = need / scenario.duration_s
        low = [r for r in (self.rates or [(self.auto or {})["start_rps"]]) if r < floor]
        if not low:
            return None
        return (
            f"a {scenario.confidence:.0%}-confident p{scenario.slo_percentile:g} verdict needs >= {need} queries; "
            f"with {scenario.duration_s:g}s measured, points below {floor:.4g} req/s "
            f"({', '.join(f'{r:g}' for r in low)}) can only be undecided — raise --duration, or use "
            "`inferload peak`, which sizes each probe"
        )


def add_sizing(doc: dict[str, Any], out_dir: Path, target_rps: float | None, headroom: float) -> None:
    """The replicas needed for `target_rps` from the sweep's peak (rewrites sweep.json when there is a target)."""
    peak = doc.get("peak") or {}
    sizing = sizing_for(target_rps, headroom, peak.get("achieved_rps"), doc["points"], doc.get("slo_p99_ms"))
    if sizing:
        doc["sizing"] = sizing
        write_json(out_dir / "sweep.json", doc)
