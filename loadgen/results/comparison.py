"""Compare that answers a question: of two results, which is better under the SLO, and by how much — with bounds.

Each side's figure becomes an `Estimate`: a value and an interval that holds the true figure.
- **Runs** (result documents): the p-th percentile of latency, interval [LCB, UCB] from the exact order-statistic
  bounds of loadgen.results.confidence on the run's encoded histogram. Each bound is one-sided at (1 + c) / 2, so that
  both sides' intervals hold together with probability >= c (Bonferroni): "B's p99 is lower than A's with 99%
  confidence" is said only when B's UCB < A's LCB. A run without its histogram falls back to its reported UCB and
  a lower bound of 0 (so it can only be shown worse, never better).
- **Peaks** (peak.json): the true peak lies in [peak_rps, upper_rps): the confirmed passing rate and the lowest
  rate above it that did not pass (both confirmed by a majority of runs; each run's verdict at the search's
  confidence). **Sweeps**: [the highest passing point's rate, the next measured rate above it).
  **Tune documents**: the recommended configuration's peak (or max throughput without an SLO), interval
  [min, max] over its repeated measurements (a range, no stated confidence).
- B is better when its interval lies wholly on the better side of A's (B.lo >= A.hi for rates, B.hi < A.lo for
  latency); worse symmetrically; otherwise "no significant difference". "By how much" is an interval too:
  [B.lo - A.hi, B.hi - A.lo] for rates, in units and as a share of A's value.
An INVALID run or a generator-limited peak makes the comparison `undecidable`: its figures cannot be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from loadgen.results.confidence import lower_rank, upper_rank
from loadgen.results.thresholds import ThresholdError, document_kind, validity_of

Better = Literal["A", "B", "neither", "undecidable"]
_PKEY = {50.0: "p50", 90.0: "p90", 95.0: "p95", 99.0: "p99", 99.9: "p999"}


@dataclass(frozen=True)
class Estimate:
    value: float | None
    lo: float | None  # None: unbounded below (0 for latencies and rates)
    hi: float | None  # None: unbounded above
    basis: str  # how the interval was obtained


@dataclass(frozen=True)
class Verdict:
    """The answer to one question ('which has the lower p99?', 'which sustains more req/s under the SLO?')."""

    question: str
    unit: str
    higher_is_better: bool
    a: Estimate
    b: Estimate
    better: Better
    delta_lo: float | None  # bounds on B - A (None: unbounded)
    delta_hi: float | None
    confidence: float | None  # None: a range without a stated confidence
    message: str

    @property
    def significant(self) -> bool:
        return self.better in ("A", "B")


def run_latency_estimate(result: dict[str, Any], percentile: float = 99.0, confidence: float = 0.99) -> Estimate:
    """[LCB, UCB] of a run's latency percentile, each one-sided at (1 + confidence) / 2 (module docstring)."""
    key = _PKEY.get(percentile)
    value = (result.get("latency_ms") or {}).get(key) if key else None
    side = (1.0 + confidence) / 2.0
    b64 = result.get("histogram_b64")
    if b64:
        from loadgen.results.analysis import us_to_ms, value_at_rank
        from loadgen.results.recorded import decode_histogram

        h = decode_histogram(b64)
        n = int(h.get_total_count())
        if n:
            lo_k, hi_k = lower_rank(n, percentile / 100.0, side), upper_rank(n, percentile / 100.0, side)
            lo = us_to_ms(value_at_rank(h, lo_k)) if lo_k else None
            hi = us_to_ms(value_at_rank(h, hi_k)) if hi_k else None
            return Estimate(value, lo, hi, f"exact order-statistic bounds, {side:.1%} each side, n = {n}")
    ucb = (result.get("latency_ucb_ms") or {}).get(key) if key else None
    return Estimate(value, None, ucb, "reported upper bound only (no histogram in the result)")


def peak_estimate(doc: dict[str, Any], kind: str) -> Estimate:
    """The true peak rate's bracket from a peak, sweep or tune document."""
    if kind == "peak":
        return Estimate(
            doc.get("peak_rps"),
            doc.get("peak_rps"),
            doc.get("upper_rps"),
            "confirmed passing rate .. lowest rate above it that did not pass",
        )
    if kind == "sweep":
        peak = (doc.get("peak") or {}).get("rate_rps")
        above = [
            p.get("offered_rps")
            for p in doc.get("points") or []
            if p.get("offered_rps") is not None and peak is not None and p["offered_rps"] > peak
        ]
        return Estimate(peak, peak, min(above) if above else None, "highest passing point .. the next rate measured")
    if kind == "tune":
        rec = doc.get("recommended") or {}
        row = next((c for c in doc.get("configs") or [] if c.get("name") == rec.get("name")), None)
        slo = (doc.get("constraints") or {}).get("slo_p99_ms") is not None
        field = "peak_rps" if slo else "max_throughput_rps"
        vals = [m.get(field) or 0.0 for m in (row or {}).get("measurements") or []]
        value = ((row or {}).get("pooled") or {}).get(field)
        return Estimate(
            value,
            min(vals) if vals else None,
            max(vals) if vals else None,
            f"{rec.get('name')}: range over {len(vals)} measurements",
        )
    raise ThresholdError(f"a {kind} document has no peak to compare")


def _delta(a: Estimate, b: Estimate) -> tuple[float | None, float | None]:
    lo = None if b.lo is None or a.hi is None else b.lo - a.hi
    hi = None if b.hi is None or a.lo is None else b.hi - a.lo
    return lo, hi


def judge(
    question: str, unit: str, higher_is_better: bool, a: Estimate, b: Estimate, confidence: float | None
) -> Verdict:
    """Which side is better, from the two intervals (module docstring)."""
    lo, hi = _delta(a, b)
    if a.value is None or b.value is None:
        who: Better = "undecidable"
    elif higher_is_better:
        who = (
            "B"
            if lo is not None and lo >= 0 and b.value > a.value
            else "A"
            if hi is not None and hi <= 0 and b.value < a.value
            else "neither"
        )
    else:
        who = "B" if hi is not None and hi < 0 else "A" if lo is not None and lo > 0 else "neither"
    conf = "" if confidence is None else f" with {confidence:.0%} confidence"
    f = _fmt
    if who == "undecidable":
        msg = f"{question}: cannot say (a side has no value)"
    elif who == "neither":
        msg = (
            f"{question}: no significant difference (A {f(a.value)} {unit} in [{f(a.lo)}, {f(a.hi)}], "
            f"B {f(b.value)} {unit} in [{f(b.lo)}, {f(b.hi)}]: the intervals overlap)"
        )
    else:
        word = ("higher" if who == "B" else "lower") if higher_is_better else ("lower" if who == "B" else "higher")
        pct = ""
        if a.value:
            pl = "?" if lo is None else f"{100 * lo / a.value:+.1f}%"
            ph = "?" if hi is None else f"{100 * hi / a.value:+.1f}%"
            pct = f" ({pl} .. {ph} of A)"
        msg = (
            f"{question}: B's is {word} than A's{conf}: B - A in [{f(lo)}, {f(hi)}] {unit}{pct}; "
            f"{'B' if (who == 'B') else 'A'} is better"
        )
    return Verdict(question, unit, higher_is_better, a, b, who, lo, hi, confidence, msg)


def _fmt(v: float | None) -> str:
    return "?" if v is None else f"{v:.4g}"


@dataclass(frozen=True)
class Comparison:
    kind_a: str
    kind_b: str
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...]

    @property
    def summary(self) -> str:
        """The headline: the first verdict's message, or why there is none."""
        return self.verdicts[0].message if self.verdicts else "; ".join(self.notes)


def _undecidable(question: str, unit: str, higher: bool, why: str) -> Verdict:
    e = Estimate(None, None, None, why)
    return Verdict(question, unit, higher, e, e, "undecidable", None, None, None, f"{question}: undecidable — {why}")


def compare_documents(
    a: dict[str, Any], b: dict[str, Any], *, percentile: float = 99.0, confidence: float = 0.99
) -> Comparison:
    """Compare two run / peak / sweep / tune documents (runs with runs; the others with each other)."""
    ka, kb = document_kind(a), document_kind(b)
    notes: list[str] = []
    for name, doc, kind in (("A", a, ka), ("B", b, kb)):
        ok, why = validity_of(doc, kind)
        if not ok:
            notes.append(f"{name} is INVALID: {'; '.join(why)}")
    if ka == kb == "run":
        q = f"p{percentile:g} latency"
        if notes:
            return Comparison(ka, kb, (_undecidable(q, "ms", False, "; ".join(notes)),), tuple(notes))
        slo_a, slo_b = (a.get("slo") or {}), (b.get("slo") or {})
        if slo_a.get("bound_ms") is not None and slo_a.get("bound_ms") == slo_b.get("bound_ms"):
            notes.append(
                f"SLO p{slo_a.get('percentile', 99):g} <= {slo_a['bound_ms']:g} ms: A {slo_a.get('verdict')}, "
                f"B {slo_b.get('verdict')}"
            )
        v = judge(
            q,
            "ms",
            False,
            run_latency_estimate(a, percentile, confidence),
            run_latency_estimate(b, percentile, confidence),
            confidence,
        )
        return Comparison(ka, kb, (v,), tuple(notes))
    if {ka, kb} <= {"peak", "sweep", "tune"}:
        q = "peak rate under the SLO"
        if notes:
            return Comparison(ka, kb, (_undecidable(q, "req/s", True, "; ".join(notes)),), tuple(notes))
        ea, eb = peak_estimate(a, ka), peak_estimate(b, kb)
        for name, doc in (("A", a), ("B", b)):
            if doc.get("slo_ms") is not None or doc.get("slo_p99_ms") is not None:
                notes.append(f"{name}: SLO {doc.get('slo_ms') or doc.get('slo_p99_ms'):g} ms")
        v = judge(q, "req/s", True, ea, eb, None)  # majority-confirmed brackets: no single confidence level
        return Comparison(ka, kb, (v,), tuple(notes))
    raise ThresholdError(f"cannot compare a {ka} with a {kb}: give two runs, or two of peak / sweep / tune")


def verdict_lines(c: Comparison) -> list[str]:
    """Plain-text lines for a renderer (loadgen.report.compare prints them under its table)."""
    out = [v.message for v in c.verdicts]
    out += [f"  A: {v.a.basis}; B: {v.b.basis}" for v in c.verdicts if v.better != "undecidable"]
    return out + [f"note: {n}" for n in c.notes]
