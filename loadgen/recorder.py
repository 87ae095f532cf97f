"""Recording: exact HdrHistograms per phase, Server-Timing joined per request, per-second time series.

No locust import here (pure data + an `events.request` listener method), so reports and tests can use it.

Units: histograms record MICROSECONDS (1 us .. 60 s, 3 significant digits; per-second windows use 2).
Times passed in are seconds relative to the recording process's t0 (time.perf_counter based).

Phases (by the request's SCHEDULED instant; closed loop: its send instant):
    warmup  [0, warmup_s)   measure [warmup_s, warmup_s + duration_s)   drain  [end, ...)
Only `measure` feeds the reported figures. Successes and failures live in separate histograms; failures
are counted by HTTP status ("503") or exception kind ("ConnectionRefusedError", "Timeout", ...).

Distribution: a worker periodically hands its accumulated `RecordData` (a delta) to the master as a
wire dict (`to_wire`, histograms HdrHistogram-encoded base64); the master `merge`s them. HdrHistogram
addition is exact: percentiles of the merge equal those of one histogram holding every sample.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.servertiming import parse_server_timing

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
WINDOW_SIGNIFICANT_DIGITS = 2
PHASES = ("warmup", "measure", "drain")
DELAYED_THRESHOLD_S = 0.002
"""Default: a request actually sent more than 2 ms after its scheduled instant is 'delayed' (Scenario
`late_threshold_ms`). The dispatcher wakes with ~0.1-0.3 ms precision (gevent on libev's `select` backend,
whose timeouts have microsecond resolution; the default epoll backend rounds sleeps up to whole milliseconds),
so a lag above the threshold means the generator was busy or starved of CPU, not that the timer is coarse."""
FLUSH_EVERY = 2048
"""Pending samples of a phase go into its histograms in chunks of this many requests (~0.1 ms each), so memory
stays bounded and no hand-over has a large backlog to record."""
SERVER_STAGES = ("read", "queue", "preprocess", "compute", "total")
REFUSAL_STATUSES = frozenset({429, 503})
HIST_NAMES = ("success", "failure", "lag", "service", "network", "refusal", "refusal_server") + SERVER_STAGES
"""refusal: client-side latency of 429/503 answers (from the scheduled instant); refusal_server: the server's own
time to refuse them (Server-Timing total), i.e. how fast overload is turned away."""


REFUSAL_KEYS = frozenset(str(s) for s in REFUSAL_STATUSES)


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

    def merge(self, other: "PhaseData") -> None:
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
    def from_wire(cls, d: dict[str, Any]) -> "PhaseData":
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

    def merge(self, o: "SecondBin") -> None:
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
    def from_wire(cls, w: list[Any]) -> "SecondBin":
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

    def merge(self, other: "RecordData") -> None:
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
    def from_wire(cls, w: dict[str, Any]) -> "RecordData":
        r = cls()
        for p in PHASES:
            if p in w.get("phases", {}):
                r.phases[p] = PhaseData.from_wire(w["phases"][p])
        r.seconds = {int(s): SecondBin.from_wire(b) for s, b in w.get("seconds", {}).items()}
        r.cpu = [list(x) for x in w.get("cpu", [])]
        r.in_flight_now = int(w.get("in_flight_now", 0))
        return r


class Recorder:
    """The hot-path recorder of one generating process. Users call `on_send`/`on_drop`; completed
    requests arrive through Locust's `events.request` (listener `on_request`) with
    context["inferload"] = (scheduled_s, sent_s, done_s, ok, error_key, server_timing_header)."""

    def __init__(
        self, warmup_s: float, duration_s: float, source: str = "local", late_threshold_s: float = DELAYED_THRESHOLD_S
    ) -> None:
        self.late_threshold_s = late_threshold_s
        self.m0 = float(warmup_s)
        self.m1 = float(warmup_s) + float(duration_s)
        self.source = source
        self.data = RecordData()
        self.in_flight = 0
        self.totals = {"sent": 0, "done": 0, "success": 0, "failure": 0, "dropped": 0}  # live, never reset

    def phase_of(self, t: float) -> str:
        return "warmup" if t < self.m0 else ("measure" if t < self.m1 else "drain")

    def take(self) -> RecordData:
        """Hand over everything recorded since the last take (a delta) and start afresh."""
        d, self.data = self.data, RecordData()
        d.flush()
        d.in_flight_now = self.in_flight
        return d

    def on_send(self, scheduled: float) -> None:
        self.in_flight += 1
        self.totals["sent"] += 1
        data = self.data
        data.phases[self.phase_of(scheduled)].sent += 1
        b = data.second(int(scheduled))
        b.offered += 1
        if self.in_flight > b.in_flight:
            b.in_flight = self.in_flight

    def on_drop(self, scheduled: float) -> None:
        self.totals["dropped"] += 1
        self.data.phases[self.phase_of(scheduled)].dropped += 1

    def on_cpu(self, t: float, percent: float) -> None:
        if self.m0 <= t < self.m1:
            self.data.cpu.append([self.source, round(t, 3), float(percent)])

    def on_request(self, context: dict | None = None, **_: Any) -> None:  # events.request listener
        rec = context.get("inferload") if context else None
        if rec is None:
            return  # not one of ours (another user class): Locust's own stats still have it
        scheduled, sent, done, ok, error_key, st_header = rec
        self.record(scheduled, sent, done, ok, error_key, st_header)

    def record(
        self, scheduled: float, sent: float, done: float, ok: bool, error_key: str | None, st_header: str | None
    ) -> None:
        self.in_flight -= 1
        self.totals["done"] += 1
        data = self.data
        ph = data.phases[self.phase_of(scheduled)]
        pend = ph.pending
        lat_us = to_us(done - scheduled)
        lag = sent - scheduled
        lags = pend["lag"]
        if len(lags) >= FLUSH_EVERY:  # a small, bounded histogram update now, never a big one later
            ph.flush()
        lags.append(to_us(lag))
        if lag > self.late_threshold_s:
            ph.delayed += 1
        if not ok:
            self.totals["failure"] += 1
            ph.failure += 1
            pend["failure"].append(lat_us)
            if error_key in REFUSAL_KEYS:
                pend["refusal"].append(lat_us)
                if st_header:
                    total = parse_server_timing(st_header).durations_ms.get("total")
                    if total is not None:
                        pend["refusal_server"].append(to_us(total / 1e3))
            key = error_key or "Unknown"
            ph.errors[key] = ph.errors.get(key, 0) + 1
            data.second(int(done)).errors += 1
            return
        self.totals["success"] += 1
        ph.success += 1
        pend["success"].append(lat_us)
        service_s = done - sent
        pend["service"].append(to_us(service_s))
        data.second(int(scheduled)).pending.append(lat_us)
        data.second(int(done)).completed += 1
        if st_header:
            st = parse_server_timing(st_header)
            durs = st.durations_ms
            for stage in SERVER_STAGES:
                v = durs.get(stage)
                if v is not None:
                    pend[stage].append(to_us(v / 1e3))
            total = durs.get("total")
            if total is not None:
                pend["network"].append(to_us(service_s - total / 1e3))
            if st.batch is not None:
                k = str(st.batch)
                ph.batch_sizes[k] = ph.batch_sizes.get(k, 0) + 1
