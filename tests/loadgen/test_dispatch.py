"""The open-loop dispatcher (loadgen.engine.dispatch) on a simulated clock and transport: no sockets, no sleeps,
no gevent. Time passes only when the dispatcher sleeps (or a simulated send blocks); completions of simulated
requests run at their instants, in order, and report to the real Recorder exactly as `LoadContext.do_request` does
(scheduled, sent and done instants relative to t0), so latency from the scheduled instant, lateness, drops and
phases are checked on the real recorded data.

The end-to-end tier (the generator in a subprocess against stand-in servers) is tests/loadgen/test_known_answers.py.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import pytest

from loadgen.engine.dispatch import BURST_YIELD, DRAIN_GRACE_S, OpenLoopDispatcher
from loadgen.engine.recorder import Recorder
from loadgen.engine.schedule import poisson_offsets
from loadgen.results.recorded import RecordData

T0 = 1000.0  # the simulated clock's instant at which the run starts (not 0: relative/absolute mix-ups show)
EPS_S = 1e-9


class SimClock:
    """A discrete-event clock: `now()` changes only in sleep/sleep_until/advance, which first run every event due by
    the new instant, in time order (as gevent runs other greenlets while the dispatcher sleeps)."""

    def __init__(self, start: float = T0) -> None:
        self.t = start
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.sleep_untils: list[float] = []
        self.yields = 0

    def now(self) -> float:
        return self.t

    def call_at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (t, next(self._seq), fn))

    def advance(self, target: float) -> None:
        while self._events and self._events[0][0] <= target:
            t, _, fn = heapq.heappop(self._events)
            self.t = max(self.t, t)
            fn()
        self.t = max(self.t, target)

    def sleep_until(self, t: float) -> None:
        self.sleep_untils.append(t)
        self.advance(t)

    def sleep(self, seconds: float) -> None:
        if seconds == 0:
            self.yields += 1
        self.advance(self.t + seconds)

    @property
    def pending(self) -> int:
        return len(self._events)


class SimServer:
    """The transport: `send(scheduled)` starts one request at the clock's now and returns; it completes after
    `service(scheduled, sent)` seconds (None: never) and is reported to the recorder as do_request reports it.
    `block_s[scheduled]`: that send call itself takes so long (the dispatcher is held up, e.g. starved of CPU)."""

    def __init__(
        self,
        clock: SimClock,
        recorder: Recorder,
        t0: float = T0,
        service: Callable[[float, float], float | None] = lambda off, sent: 0.005,
        block_s: dict[float, float] | None = None,
    ) -> None:
        self.clock, self.rec, self.t0, self.service = clock, recorder, t0, service
        self.block_s = block_s or {}
        self.sent: list[tuple[float, float]] = []  # (scheduled offset, sent offset)
        self.done: list[tuple[float, float, float]] = []  # (scheduled, sent, done) offsets
        self.max_in_flight = 0

    def send(self, off: float) -> None:
        sent = self.clock.now() - self.t0
        self.sent.append((off, sent))
        self.max_in_flight = max(self.max_in_flight, self.rec.in_flight)
        d = self.service(off, sent)
        if d is not None:
            done = sent + d

            def complete() -> None:
                self.done.append((off, sent, done))
                self.rec.record(off, sent, done, True, None, None)

            self.clock.call_at(self.t0 + done, complete)
        if off in self.block_s:
            self.clock.advance(self.clock.now() + self.block_s[off])


def world(
    schedule: list[float], *, warmup_s: float = 0.0, duration_s: float = 100.0, cap: int = 1000, **server_kw
) -> tuple[SimClock, Recorder, SimServer, OpenLoopDispatcher]:
    clock = SimClock()
    rec = Recorder(warmup_s, duration_s)
    server = SimServer(clock, rec, **server_kw)
    return clock, rec, server, OpenLoopDispatcher(schedule, clock, server.send, rec, cap)


def hist_ms(data: RecordData, phase: str, name: str) -> tuple[int, float, float]:
    """(count, min ms, max ms) of one recorded histogram."""
    data.phases[phase].flush()
    h = data.phases[phase].hists.get(name)
    if h is None or h.get_total_count() == 0:
        return 0, 0.0, 0.0
    return h.get_total_count(), h.get_min_value() / 1e3, h.get_max_value() / 1e3


def steps(rate_rps: float, duration_s: float) -> list[float]:
    return [i / rate_rps for i in range(int(rate_rps * duration_s))]


def test_requests_go_out_at_their_scheduled_instants_without_waiting_for_earlier_ones():
    schedule = poisson_offsets(200, 3.0, seed=7)
    clock, rec, server, d = world(schedule, service=lambda off, sent: 0.05)  # ~10 in flight at a time
    assert d.run(T0) == len(schedule)
    assert [off for off, _ in server.sent] == schedule
    assert all(abs(sent - off) < EPS_S for off, sent in server.sent), "a request left before or after its instant"
    assert server.max_in_flight >= 5  # open loop: later requests went out while earlier ones were unanswered
    assert d.drain(timeout_s=5.0) and rec.in_flight == 0
    data = rec.take()
    m = data.phases["measure"]
    assert (m.sent, m.success, m.delayed, m.dropped) == (len(schedule), len(schedule), 0, 0)
    n, lo, hi = hist_ms(data, "measure", "success")
    assert n == len(schedule) and lo > 49.9 and hi < 50.1  # latency = service time: nothing was late


def test_a_burst_goes_out_back_to_back_yielding_every_burst_yield_requests():
    schedule = [0.5] * 100
    clock, rec, server, d = world(schedule)
    d.run(T0)
    assert clock.sleep_untils == [T0 + 0.5]  # one wait for the burst's instant, none inside it
    assert all(sent == 0.5 for _, sent in server.sent) and len(server.sent) == 100
    assert clock.yields == (len(schedule) - 1) // BURST_YIELD  # the 99 already-due ones yield every 32


def test_a_stalled_send_makes_later_requests_late_and_their_latency_runs_from_the_schedule():
    # 100 req/s, 10 ms service; the send at 1.00 s holds the dispatcher 300 ms (e.g. starved of CPU): the arrivals
    # scheduled at 1.01..1.29 go out together at 1.30, late by 290..10 ms
    schedule = steps(100, 4.0)
    clock, rec, server, d = world(schedule, service=lambda off, sent: 0.010, block_s={1.0: 0.300})
    d.run(T0)
    d.drain(timeout_s=5.0)
    late = [(off, sent) for off, sent in server.sent if sent - off > 0.002]
    assert [round(off, 2) for off, _ in late] == [round(1.01 + i / 100, 2) for i in range(29)]
    assert all(abs(sent - 1.3) < EPS_S for _, sent in late)
    data = rec.take()
    m = data.phases["measure"]
    assert m.delayed == 29 and m.dropped == 0 and m.success == len(schedule)
    # coordinated omission defeated: the 1.01 request waited 290 ms before it could go out; its latency counts
    # that wait (300 ms from its scheduled instant) though the server took 10 ms, as the service histogram shows
    _, _, lat_max = hist_ms(data, "measure", "success")
    _, _, service_max = hist_ms(data, "measure", "service")
    _, _, lag_max = hist_ms(data, "measure", "lag")
    assert lat_max == pytest.approx(300.0, rel=2e-3)
    assert service_max == pytest.approx(10.0, rel=2e-3)
    assert lag_max == pytest.approx(290.0, rel=2e-3)
    by_off = {round(off, 2): done - off for off, _, done in server.done}
    assert (
        by_off[1.01] == pytest.approx(0.300)
        and by_off[1.2] == pytest.approx(0.110)
        and by_off[1.5] == pytest.approx(0.010)
    )


def test_a_server_stall_is_sampled_at_every_arrival_while_sends_stay_on_schedule():
    # 100 req/s; the server answers nothing sent in [2.0, 2.5) before 2.5 (a 500 ms stall), else in 5 ms
    schedule = steps(100, 4.0)

    def service(off: float, sent: float) -> float:
        return 2.5 - sent if 2.0 <= sent < 2.5 else 0.005

    clock, rec, server, d = world(schedule, service=service)
    d.run(T0)
    d.drain(timeout_s=5.0)
    assert all(abs(sent - off) < EPS_S for off, sent in server.sent)  # the stall never held the dispatcher
    data = rec.take()
    assert data.phases["measure"].delayed == 0
    lat = sorted(done - off for off, _, done in server.done)
    # every one of the 50 arrivals inside the stall saw it (a closed-loop user would have sampled it once)
    assert sum(1 for x in lat if x > 0.005 + EPS_S) == 50
    assert sum(1 for x in lat if x > 0.255) == 25  # 2.00..2.24 waited 500..260 ms
    n, _, hi = hist_ms(data, "measure", "success")
    assert n == 400 and hi == pytest.approx(500.0, rel=2e-3)


def test_hitting_the_in_flight_cap_drops_and_counts_instead_of_waiting():
    # cap 5; the server holds everything sent in [0.5, 1.0) until 0.995: 0.50..0.54 fill the cap, the 45
    # arrivals at 0.55..0.99 are dropped (counted, never waited for), 1.00 goes out on time
    schedule = steps(100, 2.0)

    def service(off: float, sent: float) -> float:
        return 0.995 - sent if 0.5 <= sent < 0.995 else 0.005

    clock, rec, server, d = world(schedule, cap=5, service=service)
    assert d.run(T0) == 200
    sent_offs = {round(off, 2) for off, _ in server.sent}
    dropped = [round(x, 2) for x in schedule if round(x, 2) not in sent_offs]
    assert dropped == [round(0.55 + i / 100, 2) for i in range(45)]
    assert all(abs(sent - off) < EPS_S for off, sent in server.sent)  # nobody waited for a free slot
    assert 1.0 in sent_offs and server.max_in_flight == 5
    assert rec.totals["dropped"] == 45 and rec.totals["sent"] == 155
    d.drain(timeout_s=5.0)
    m = rec.take().phases["measure"]
    assert (m.dropped, m.sent, m.success) == (45, 155, 155)


def test_phases_are_decided_by_the_scheduled_instant():
    # warm-up [0, 1), measure [1, 2), drain [2, ...); cap 1
    # 0.99 is sent late at 1.2 (the 0.5 send holds the dispatcher 0.7 s): still warm-up
    # 1.99 completes at 2.59 (600 ms service): still measure; 2.5 finds 1.99 in flight: a drop in the drain phase
    schedule = [0.5, 0.99, 1.5, 1.99, 2.5, 2.6]

    def service(off: float, sent: float) -> float:
        return 0.6 if off == 1.99 else 0.01

    clock, rec, server, d = world(schedule, warmup_s=1.0, duration_s=1.0, cap=1, service=service, block_s={0.5: 0.7})
    d.run(T0)
    assert d.drain(timeout_s=1.0)
    assert dict(server.sent)[0.99] == pytest.approx(1.2)
    assert dict((off, done) for off, _, done in server.done)[1.99] == pytest.approx(2.59)
    ph = rec.take().phases
    assert (ph["warmup"].sent, ph["warmup"].success, ph["warmup"].delayed, ph["warmup"].dropped) == (2, 2, 1, 0)
    assert (ph["measure"].sent, ph["measure"].success, ph["measure"].delayed, ph["measure"].dropped) == (2, 2, 0, 0)
    assert (ph["drain"].sent, ph["drain"].success, ph["drain"].dropped) == (1, 1, 1)


def test_stop_ends_the_walk_at_the_next_arrival():
    schedule = steps(100, 1.0)
    clock = SimClock()
    rec = Recorder(0.0, 1.0)
    server = SimServer(clock, rec)
    d = OpenLoopDispatcher(schedule, clock, server.send, rec, 100, stopping=lambda: len(server.sent) >= 10)
    assert d.run(T0) == 10
    assert len(server.sent) == 10 and clock.now() == pytest.approx(T0 + 0.10)


def test_drain_waits_for_answers_and_gives_up_after_the_request_timeout():
    clock, rec, server, d = world([0.0, 0.1], service=lambda off, sent: 0.3)
    d.run(T0)
    assert d.drain(timeout_s=5.0) and rec.in_flight == 0
    assert T0 + 0.4 <= clock.now() < T0 + 0.41  # returned once the last answer came, not at the deadline

    clock, rec, server, d = world([0.0], service=lambda off, sent: None)  # an answer that never comes
    d.run(T0)
    assert not d.drain(timeout_s=2.0) and rec.in_flight == 1
    assert T0 + 2.0 + DRAIN_GRACE_S <= clock.now() < T0 + 2.0 + DRAIN_GRACE_S + 0.01


def test_cap_must_be_positive():
    with pytest.raises(ValueError, match="cap"):
        OpenLoopDispatcher([], SimClock(), lambda off: None, Recorder(0, 1), 0)
