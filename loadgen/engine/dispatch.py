"""The open-loop dispatcher: walk a precomputed arrival schedule, start each request at its scheduled instant
without waiting for earlier ones, drop (and count) an arrival that finds `cap` requests in flight.

Pure scheduling logic: no gevent, no sockets. What it needs from the world is injected, like the server's batcher:
- a `Clock` — `now()`, `sleep_until(t)` (precise wake), `sleep(s)` (coarse; 0 = let other tasks run);
- a `send(scheduled_s)` callable — the transport: starts one request scheduled at t0 + scheduled_s and returns at
  once (the Locust wiring spawns a greenlet running `LoadContext.do_request`); the request reports its completion
  to the recorder itself, with its scheduled, sent and done instants, so its latency runs from the SCHEDULED
  instant (coordinated omission defeated: a late send can only make latency look worse, never hide a stall);
- the `Recorder` (`on_send` / `on_drop` / `in_flight`), whose phases follow the scheduled instant.
`loadgen.engine.users` runs it with gevent's clock and the real HTTP client; tests/loadgen/test_dispatch.py runs
it with a simulated clock and transport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

BURST_YIELD = 32
"""Arrivals already due (a burst, or a dispatcher behind schedule) are started back to back, ahead of response
processing; every BURST_YIELD of them the dispatcher yields once so completions are not starved."""
DRAIN_GRACE_S = 1.0
DRAIN_POLL_S = 0.005


class Clock(Protocol):
    """Time as the dispatcher sees it (seconds on one monotonic base, e.g. time.perf_counter)."""

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None:
        """Return at instant t (or as soon after as possible), letting other tasks run meanwhile."""

    def sleep(self, seconds: float) -> None:
        """Let other tasks run for about `seconds` (0: yield once, no time needs to pass)."""


class DispatchRecorder(Protocol):
    """The part of loadgen.engine.recorder.Recorder the dispatcher uses."""

    in_flight: int

    def on_send(self, scheduled: float) -> None: ...

    def on_drop(self, scheduled: float) -> None: ...


class OpenLoopDispatcher:
    """Sends `schedule` (offsets in seconds from t0, ascending) through `send`, at most `cap` in flight."""

    def __init__(
        self,
        schedule: Sequence[float],
        clock: Clock,
        send: Callable[[float], object],
        recorder: DispatchRecorder,
        cap: int,
        *,
        stopping: Callable[[], bool] = lambda: False,
        burst_yield: int = BURST_YIELD,
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1 (got {cap})")
        self.schedule = schedule
        self.clock = clock
        self.send = send
        self.recorder = recorder
        self.cap = cap
        self.stopping = stopping
        self.burst_yield = max(1, burst_yield)

    def run(self, t0: float) -> int:
        """Walk the schedule from t0 (an instant of `clock`); return how many arrivals were processed (sent or
        dropped) before the end or a stop. Never waits for an earlier request."""
        rec, cap, send, clock, stopping = self.recorder, self.cap, self.send, self.clock, self.stopping
        now, sleep_until, sleep, burst = clock.now, clock.sleep_until, clock.sleep, self.burst_yield
        due = 0
        n = 0
        for off in self.schedule:
            target = t0 + off
            if target > now():
                sleep_until(target)
                due = 0
            else:
                # Already due (a burst, or behind): start without yielding so the burst's requests go out back
                # to back, ahead of response processing; yield every `burst` to stay fair.
                due += 1
                if due >= burst:
                    sleep(0)
                    due = 0
            if stopping():
                break
            n += 1
            if rec.in_flight >= cap:
                rec.on_drop(off)  # a client-side drop, counted: never a silent wait for a free slot
                continue
            rec.on_send(off)
            send(off)
        return n

    def drain(self, timeout_s: float) -> bool:
        """After the schedule: wait until nothing is in flight, at most `timeout_s` + DRAIN_GRACE_S (the request
        timeout bounds every request) or until stopped. True when everything came back."""
        clock, rec = self.clock, self.recorder
        deadline = clock.now() + timeout_s + DRAIN_GRACE_S
        while rec.in_flight > 0 and clock.now() < deadline and not self.stopping():
            clock.sleep(DRAIN_POLL_S)
        return rec.in_flight <= 0
