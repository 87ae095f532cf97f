"""The hot-path recorder: each request's timings (from its scheduled instant), Server-Timing joined, into the
per-phase histograms and per-second bins of `loadgen.results.recorded.RecordData`.

No locust import here (an `events.request` listener method), so tests can drive it directly. Times passed in are
seconds relative to the recording process's t0 (time.perf_counter based); the phase of a request is decided by its
scheduled instant (closed loop: its send instant).
"""

from __future__ import annotations

from typing import Any

from loadgen.engine.servertiming import parse_server_timing
from loadgen.results.recorded import REFUSAL_KEYS, SERVER_STAGES, RecordData, phase_of, to_us

DELAYED_THRESHOLD_S = 0.002
"""Default: a request actually sent more than 2 ms after its scheduled instant is 'delayed' (Scenario
`late_threshold_ms`). The dispatcher wakes with ~0.1-0.3 ms precision (gevent on libev's `select` backend,
whose timeouts have microsecond resolution; the default epoll backend rounds sleeps up to whole milliseconds),
so a lag above the threshold means the generator was busy or starved of CPU, not that the timer is coarse."""
FLUSH_EVERY = 2048
"""Pending samples of a phase go into its histograms in chunks of this many requests (~0.1 ms each), so memory
stays bounded and no hand-over has a large backlog to record."""


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
        return phase_of(t, self.m0, self.m1)

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
