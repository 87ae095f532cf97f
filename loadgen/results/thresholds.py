"""CI thresholds (`--assert 'p99<50ms' --assert 'errors<0.1%' --assert 'throughput>=100rps'`), pure.

Grammar (whitespace optional): `<metric> <op> <number>[unit]`, op one of `<  <=  >  >=  ==`.

| metric | meaning | units (default first) |
|---|---|---|
| `p50` `p90` `p95` `p99` `p99.9` (`p999`) | run, mlperf: `latency_ms.<p>`, the point estimate (successes, ms) | `ms`, `s`, `us` |
| `p50_ucb` ... `p99_ucb`, `p99.9_ucb` | run: `latency_ucb_ms.<p>`, the upper confidence bound (`confidence`, 99%) | `ms`, `s`, `us` |
| `errors` | run: failed / (completed + failed) | fraction, `%` |
| `throughput` | run: `achieved_rate_rps` (successes/s); mlperf: `samples_per_s`; sweep: the highest achieved rate of a valid point; tune: the recommended configuration's pooled max throughput | `rps` |
| `goodput` | run: successes within the SLO per second (`slo.samples - slo.over` over `duration_s`); without an SLO, successes/s | `rps` |
| `items` | run, mlperf: `items_per_s` | `items/s` |
| `peak` | peak: `peak_rps`; sweep: `peak.rate_rps`; tune: the recommended configuration's pooled peak | `rps` |

**Percentiles: point estimate or bound.** `p99<50ms` compares the estimate, as a dashboard would; `p99_ucb<50ms`
passes only when the true p99 is shown to be under 50 ms with the run's confidence (the same event as an SLO
verdict of *pass* at that bound). A bound that does not exist yet (too few samples) fails its threshold: it was
not shown. A metric with no value in the document (no successes) fails too; a metric the document kind does not
have (`peak` of a run) is a usage error.

**Exit codes** (`exit_code`): 0 every threshold passed; 1 a threshold failed; 2 usage error (`ThresholdError`:
bad expression, metric not in the document); 3 the measurement is INVALID. *Invalid wins over a failed
threshold*: the figures of an INVALID run (or a generator-limited peak) are not trustworthy, so neither is a
verdict on them, pass or fail; a CI job should fix the measurement before it reads the numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from loadgen.results.schema import upgrade

Op = Literal["<", "<=", ">", ">=", "=="]
Status = Literal["pass", "fail"]
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3
_EXPR = re.compile(
    r"^\s*([A-Za-z][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*"
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%/µ]*)\s*$"
)
_PCT = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "p99.9": "p999", "p999": "p999"}
_UNITS: dict[str, dict[str, float]] = {
    "latency": {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001},
    "fraction": {"": 1.0, "%": 0.01},
    "rate": {"": 1.0, "rps": 1.0, "req/s": 1.0},
    "items": {"": 1.0, "items/s": 1.0, "ips": 1.0},
}
_CANON = {"latency": "ms", "fraction": "", "rate": "rps", "items": "items/s"}


class ThresholdError(ValueError):
    """A threshold that cannot be used (usage error, exit code 2); the message says what is allowed."""


Getter = Callable[[dict[str, Any], str], float | None]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # latency | fraction | rate | items
    kinds: tuple[str, ...]  # document kinds that have it
    get: Getter
    what: str


def _num(v: Any) -> float | None:
    return None if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) else float(v)


def _lat(field: str, key: str) -> Getter:
    return lambda d, _k: _num((d.get(field) or {}).get(key))


def _errors(d: dict[str, Any], _k: str) -> float | None:
    ok, bad = int(d.get("completed") or 0), int(d.get("failed") or 0)
    return None if ok + bad == 0 else bad / (ok + bad)


def _throughput(d: dict[str, Any], k: str) -> float | None:
    if k == "tune":
        return _num((d.get("recommended_pooled") or {}).get("max_throughput_rps"))
    if k == "sweep":
        vals = [_num(p.get("achieved_rps")) for p in d.get("points") or [] if p.get("valid")]
        return max((v for v in vals if v is not None), default=None)
    if k == "mlperf":
        return _num(d.get("samples_per_s"))
    return _num(d.get("achieved_rate_rps"))


def _goodput(d: dict[str, Any], _k: str) -> float | None:
    slo, T = d.get("slo") or {}, _num(d.get("duration_s"))
    if slo.get("samples") is not None and slo.get("over") is not None and T:
        return (int(slo["samples"]) - int(slo["over"])) / T
    return _num(d.get("achieved_rate_rps"))


def _peak(d: dict[str, Any], k: str) -> float | None:
    if k == "peak":
        return _num(d.get("peak_rps"))
    if k == "sweep":
        return _num((d.get("peak") or {}).get("rate_rps"))
    return _num((d.get("recommended_pooled") or {}).get("peak_rps"))


def _metrics() -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name, key in _PCT.items():
        out[name] = Metric(name, "latency", ("run", "mlperf"), _lat("latency_ms", key), f"latency {name} estimate (ms)")
        out[name + "_ucb"] = Metric(
            name + "_ucb",
            "latency",
            ("run",),
            _lat("latency_ucb_ms", key),
            f"upper confidence bound of latency {name} (ms)",
        )
    out["errors"] = Metric("errors", "fraction", ("run",), _errors, "failed / (completed + failed)")
    out["throughput"] = Metric(
        "throughput", "rate", ("run", "sweep", "tune", "mlperf"), _throughput, "successes (mlperf: samples) per second"
    )
    out["goodput"] = Metric("goodput", "rate", ("run",), _goodput, "successes within the SLO per second")
    out["items"] = Metric(
        "items", "items", ("run", "mlperf"), lambda d, _k: _num(d.get("items_per_s")), "items per second"
    )
    out["peak"] = Metric("peak", "rate", ("peak", "sweep", "tune"), _peak, "peak rate under the SLO (req/s)")
    return out


METRICS = _metrics()
ALLOWED = (
    "metrics: " + ", ".join(k for k in METRICS if k != "p999" and k != "p999_ucb") + "; ops: < <= > >= ==; "
    "units: ms s us (latency), % (errors), rps (rates)"
)


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold; `bound` in the metric's canonical unit (ms, fraction, rps, items/s)."""

    text: str
    metric: str
    op: Op
    bound: float
    unit: str

    def holds(self, observed: float) -> bool:
        b = self.bound
        return {
            "<": observed < b,
            "<=": observed <= b,
            ">": observed > b,
            ">=": observed >= b,
            "==": math.isclose(observed, b, rel_tol=1e-9, abs_tol=1e-12),
        }[self.op]

    def describe(self, value: float) -> str:
        """A value in the threshold's own unit, e.g. '63.2 ms', '0.3%'."""
        kind = METRICS[self.metric].kind
        unit = self.unit or _CANON[kind]
        v = value / _UNITS[kind].get(unit, 1.0)
        return f"{v:.4g}{unit}" if unit == "%" else f"{v:.4g} {unit}".rstrip()


def parse_threshold(text: str) -> Threshold:
    """Parse one `--assert` expression; ThresholdError says what is wrong and what is allowed."""
    m = _EXPR.match(text or "")
    if not m:
        raise ThresholdError(
            f"cannot parse threshold {text!r}: expected <metric> <op> <number>[unit], e.g. "
            f"'p99<50ms', 'errors<0.1%', 'throughput>=100rps' ({ALLOWED})"
        )
    name, op, num, unit = m.group(1).lower(), m.group(2), float(m.group(3)), m.group(4)
    metric = METRICS.get(name)
    if metric is None:
        raise ThresholdError(f"threshold {text!r}: unknown metric {name!r} ({ALLOWED})")
    units = _UNITS[metric.kind]
    unit_key = unit if unit in units else unit.lower()
    if unit_key not in units:
        allowed = ", ".join(u for u in units if u) or "none"
        raise ThresholdError(
            f"threshold {text!r}: unit {unit!r} does not fit {name} ({metric.what}); "
            f"allowed: {allowed} (or no unit: {_CANON[metric.kind] or 'a fraction'})"
        )
    if metric.kind == "fraction" and not 0 <= num * units[unit_key] <= 1:
        raise ThresholdError(f"threshold {text!r}: {name} is a share between 0 and 1 (or 0% and 100%)")
    return Threshold(text.strip(), metric.name, op, num * units[unit_key], unit_key)  # type: ignore[arg-type]


def parse_thresholds(texts: list[str], kind: str | None = None) -> list[Threshold]:
    """Parse every expression; with `kind` (the document the command will write), also refuse metrics that
    document does not have — so a CI job learns of a bad threshold before any load is generated."""
    out = [parse_threshold(t) for t in texts]
    if kind is not None:
        for t in out:
            kinds = METRICS[t.metric].kinds
            if kind not in kinds:
                raise ThresholdError(
                    f"threshold {t.text!r}: a {kind} document has no {t.metric} (it is read from: {', '.join(kinds)})"
                )
    return out


@dataclass(frozen=True)
class Outcome:
    threshold: Threshold
    observed: float | None  # canonical unit; None: the document has no value for it
    status: Status
    message: str


@dataclass(frozen=True)
class Evaluation:
    kind: str  # the document kind: result | peak | sweep | tune
    valid: bool
    invalid_reasons: tuple[str, ...]
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "fail"]


def document_kind(doc: dict[str, Any]) -> str:
    kind = upgrade(doc).get("kind")
    if kind in ("run", "peak", "sweep", "tune", "matrix", "overload", "bench", "mlperf"):
        return str(kind)
    raise ThresholdError("not an inferload result, peak, sweep, tune or mlperf document")


def validity_of(doc: dict[str, Any], kind: str) -> tuple[bool, tuple[str, ...]]:
    """Is the measurement trustworthy? run, mlperf: `valid`; peak: not generator-limited; sweep: some valid point."""
    if kind in ("run", "mlperf"):
        reasons = tuple(
            r.get("message", str(r)) if isinstance(r, dict) else str(r) for r in doc.get("invalid_reasons") or []
        )
        return bool(doc.get("valid")), reasons or (() if doc.get("valid") else ("run marked INVALID",))
    if kind == "peak" and doc.get("status") == "generator_limited":
        return False, (f"peak search was generator-limited: {doc.get('reason') or doc.get('advice') or ''}".strip(),)
    if kind == "sweep" and doc.get("points") and not any(p.get("valid") for p in doc["points"]):
        return False, ("every point of the sweep is INVALID",)
    return True, ()


def evaluate(doc: dict[str, Any], thresholds: list[Threshold]) -> Evaluation:
    """Each threshold against the document; ThresholdError when a metric does not exist for its kind."""
    kind = document_kind(doc)
    valid, reasons = validity_of(doc, kind)
    outs = []
    for t in thresholds:
        metric = METRICS[t.metric]
        if kind not in metric.kinds:
            raise ThresholdError(
                f"threshold {t.text!r}: a {kind} document has no {t.metric} "
                f"(it is read from: {', '.join(metric.kinds)})"
            )
        v = metric.get(doc, kind)
        if v is None:
            why = (
                "no upper bound yet: too few samples at this confidence"
                if t.metric.endswith("_ucb")
                else "no value in the document"
            )
            outs.append(Outcome(t, None, "fail", f"{t.text}: {why}"))
            continue
        ok = t.holds(v)
        msg = f"{t.metric} = {t.describe(v)}, bound {t.op} {t.describe(t.bound)}"
        outs.append(Outcome(t, v, "pass" if ok else "fail", msg))
    return Evaluation(kind, valid, reasons, tuple(outs))


def exit_code(ev: Evaluation) -> int:
    """3 INVALID (wins: the figures are untrustworthy), 1 a threshold failed, 0 all passed."""
    if not ev.valid:
        return EXIT_INVALID
    return EXIT_FAIL if ev.failed else EXIT_PASS
