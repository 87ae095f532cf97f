"""Recorded data: exact HdrHistograms per phase and per-second bins, and their wire form (pure data, no I/O).

Units: histograms record MICROSECONDS (1 us .. 60 s, 3 significant digits; per-second windows use 2).
Phases (by the request's SCHEDULED instant; closed loop: its send instant):
    warmup  [0, warmup_s)   measure [warmup_s, warmup_s + duration_s)   drain  [end, ...)
Only `measure` feeds the reported figures. Successes and failures live in separate histograms; failures
are counted by HTTP status ("503") or exception kind ("ConnectionRefusedError", "Timeout", ...).

Distribution: a worker periodically hands its accumulated `RecordData` (a delta) to the master as a
wire dict (`to_wire`, histograms HdrHistogram-encoded base64); the master `merge`s them. HdrHistogram
addition is exact: percentiles of the merge equal those of one histogram holding every sample.
The engine's `Recorder` (loadgen.engine.recorder) fills these; results/ builds documents from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
WINDOW_SIGNIFICANT_DIGITS = 2
PHASES = ("warmup", "measure", "drain")


def phase_of(t: float, warmup_s: float, end_s: float) -> str:
    """The phase of instant `t` (seconds from t0): warmup [0, warmup_s), measure [warmup_s, end_s), drain after.
    The one classifier: the recorder (per request, by its scheduled instant), the per-second time series and the
    progress display all use it."""
    return "warmup" if t < warmup_s else ("measure" if t < end_s else "drain")


SERVER_STAGES = ("read", "queue", "preprocess", "compute", "total")
REFUSAL_STATUSES = frozenset({429, 503})
HIST_NAMES = ("success", "failure", "lag", "service", "network", "refusal", "refusal_server") + SERVER_STAGES
"""refusal: client-side latency of 429/503 answers (from the scheduled instant); refusal_server: the server's own
time to refuse them (Server-Timing total), i.e. how fast overload is turned away."""


GRPC_REFUSALS = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})
"""gRPC's refusals (the server shedding load or not serving), keyed by status code name as gRPC failures are."""
REFUSAL_KEYS = frozenset(str(s) for s in REFUSAL_STATUSES) | GRPC_REFUSALS


def new_histogram(significant_digits: int = SIGNIFICANT_DIGITS) -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, significant_digits)


def record_many(h: HdrHistogram, values: list[int]) -> None:
    """Record many values at once, exactly as `h.record_value` would one by one (vectorised: the hot path only
    appends to a list; the histogram work happens here, once per report interval)."""
    if not values:
        return
    v = np.asarray(values, dtype=np.int64)
    v = v[(v >= 0) & (v <= h.highest_trackable_value)]
    if v.size == 0:
        return
    bitlen = np.frexp((v | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)  # 64 - clz
    bucket = bitlen - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = v >> (bucket + h.unit_magnitude)
    idx = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (sub - h.sub_bucket_half_count)
    counts = np.ctypeslib.as_array(h.counts)[: h.counts_len]
    counts += np.bincount(idx, minlength=h.counts_len)[: h.counts_len].astype(counts.dtype)
    h.total_count += int(v.size)
    h.min_value = min(h.min_value, int(v.min()))
    h.max_value = max(h.max_value, int(v.max()))


def to_us(seconds: float) -> int:
    v = int(seconds * 1e6 + 0.5)
    return 0 if v < 0 else (HIGHEST_US if v > HIGHEST_US else v)


def encode_histogram(h: HdrHistogram) -> str:
    enc = h.encode()
    return enc.decode("ascii") if isinstance(enc, bytes) else enc


def decode_histogram(b64: str | bytes) -> HdrHistogram:
    return HdrHistogram.decode(b64.encode("ascii") if isinstance(b64, str) else b64)


def _add_counts(dst: dict[str, int], src: dict[str, int]) -> None:
    for k, v in src.items():
        dst[k] = dst.get(k, 0) + v


class PhaseData:
    """Everything recorded for one phase."""

    COUNTERS = ("sent", "success", "failure", "delayed", "dropped")

    def __init__(self) -> None:
        self.hists: dict[str, HdrHistogram] = {}
        self.sent = 0  # requests issued (not dropped); for the open loop, counted at dispatch
        self.success = 0
        self.failure = 0
        self.delayed = 0
        self.dropped = 0
        self.errors: dict[str, int] = {}
        self.batch_sizes: dict[str, int] = {}
        self.pending: dict[str, list[int]] = {name: [] for name in HIST_NAMES}

    def flush(self) -> None:
        for name, vals in self.pending.items():
            if vals:
                record_many(self.hist(name), vals)
                vals.clear()

    def hist(self, name: str) -> HdrHistogram:
        h = self.hists.get(name)
        if h is None:
            h = self.hists[name] = new_histogram()
        return h

    def merge(self, other: PhaseData) -> None:
        self.flush()
        other.flush()
        for name, h in other.hists.items():
            self.hist(name).add(h)
        for c in self.COUNTERS:
            setattr(self, c, getattr(self, c) + getattr(other, c))
        _add_counts(self.errors, other.errors)
        _add_counts(self.batch_sizes, other.batch_sizes)

    def to_wire(self) -> dict[str, Any]:
        self.flush()
        d: dict[str, Any] = {c: getattr(self, c) for c in self.COUNTERS}
        d["errors"] = dict(self.errors)
        d["batch_sizes"] = dict(self.batch_sizes)
        d["hists"] = {k: encode_histogram(h) for k, h in self.hists.items() if h.get_total_count()}
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> PhaseData:
        p = cls()
        for c in cls.COUNTERS:
            setattr(p, c, int(d.get(c, 0)))
        p.errors = {str(k): int(v) for k, v in d.get("errors", {}).items()}
        p.batch_sizes = {str(k): int(v) for k, v in d.get("batch_sizes", {}).items()}
        p.hists = {k: decode_histogram(v) for k, v in d.get("hists", {}).items()}
        return p


class SecondBin:
    """One second of the time series (t = seconds since t0).

    offered: requests issued whose scheduled instant falls in this second; completed/errors: by the
    second they completed; in_flight: the maximum seen in this second (summed across workers when
    merged, so an upper bound there); hist: success latency of requests scheduled in this second."""

    __slots__ = ("offered", "completed", "errors", "in_flight", "hist", "pending")

    def __init__(self) -> None:
        self.offered = 0
        self.completed = 0
        self.errors = 0
        self.in_flight = 0
        self.hist: HdrHistogram | None = None
        self.pending: list[int] = []

    def flush(self) -> None:
        if self.pending:
            if self.hist is None:
                self.hist = new_histogram(WINDOW_SIGNIFICANT_DIGITS)
            record_many(self.hist, self.pending)
            self.pending.clear()

    def merge(self, o: SecondBin) -> None:
        self.flush()
        o.flush()
        self.offered += o.offered
        self.completed += o.completed
        self.errors += o.errors
        self.in_flight += o.in_flight
        if o.hist is not None:
            if self.hist is None:
                self.hist = new_histogram(WINDOW_SIGNIFICANT_DIGITS)
            self.hist.add(o.hist)

    def to_wire(self) -> list[Any]:
        self.flush()
        h = encode_histogram(self.hist) if self.hist is not None and self.hist.get_total_count() else None
        return [self.offered, self.completed, self.errors, self.in_flight, h]

    @classmethod
    def from_wire(cls, w: list[Any]) -> SecondBin:
        b = cls()
        b.offered, b.completed, b.errors, b.in_flight = (int(x) for x in w[:4])
        b.hist = decode_histogram(w[4]) if w[4] else None
        return b


class RecordData:
    """A mergeable bundle: per-phase data, per-second bins, generator CPU samples (measure window only)."""

    def __init__(self) -> None:
        self.phases: dict[str, PhaseData] = {p: PhaseData() for p in PHASES}
        self.seconds: dict[int, SecondBin] = {}
        self.cpu: list[list[Any]] = []  # [source, t_rel_s, percent]
        self.in_flight_now = 0  # at the time the delta was taken (not additive; per source)

    def second(self, s: int) -> SecondBin:
        b = self.seconds.get(s)
        if b is None:
            b = self.seconds[s] = SecondBin()
        return b

    def flush(self) -> None:
        for p in self.phases.values():
            p.flush()
        for b in self.seconds.values():
            b.flush()

    def merge(self, other: RecordData) -> None:
        for p in PHASES:
            self.phases[p].merge(other.phases[p])
        for s, b in other.seconds.items():
            self.second(s).merge(b)
        self.cpu.extend(other.cpu)

    def to_wire(self) -> dict[str, Any]:
        return {
            "phases": {p: d.to_wire() for p, d in self.phases.items()},
            "seconds": {str(s): b.to_wire() for s, b in self.seconds.items()},
            "cpu": list(self.cpu),
            "in_flight_now": self.in_flight_now,
        }

    @classmethod
    def from_wire(cls, w: dict[str, Any]) -> RecordData:
        r = cls()
        for p in PHASES:
            if p in w.get("phases", {}):
                r.phases[p] = PhaseData.from_wire(w["phases"][p])
        r.seconds = {int(s): SecondBin.from_wire(b) for s, b in w.get("seconds", {}).items()}
        r.cpu = [list(x) for x in w.get("cpu", [])]
        r.in_flight_now = int(w.get("in_flight_now", 0))
        return r
