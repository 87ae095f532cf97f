"""The threaded DynamicBatcher shell with fake runners and an injected clock: no sleeps, no sockets.

Timing is controlled with threading.Event / Barrier inside the fake runners; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from server.batching.batcher import BatchOutcome, DynamicBatcher, NullObserver
from server.errors import BadRequest, DeadlineExceeded, InferError, QueueFull, Unavailable

pytestmark = pytest.mark.timeout(20)

T = 5.0  # seconds: upper bound of any wait; never reached when things work


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeRunner:
    """y = 2x. Blocks in run() until `gate` is set (if given); raises if `poison` is in the batch."""

    def __init__(
        self,
        gate: threading.Event | None = None,
        barrier: threading.Barrier | None = None,
        poison: float | None = None,
        outputs=None,
    ) -> None:
        self.gate = gate
        self.barrier = barrier
        self.poison = poison
        self.outputs = outputs
        self.calls: list[np.ndarray] = []
        self.entered = threading.Event()

    def run(self, inputs):
        x = inputs["x"]
        self.calls.append(x.copy())
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(T), "test gate never opened"
        if self.barrier is not None:
            self.barrier.wait(T)
        if self.poison is not None and (x == self.poison).any():
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : poison value")
        if self.outputs is not None:
            return self.outputs(x)
        return {"y": x * 2}


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.depths: list[int] = []
        self.batches: list[tuple] = []
        self.dropped: list[str] = []

    def on_queue_depth(self, depth):
        self.depths.append(depth)

    def on_batch(self, instance, batch_items, n_requests, compute_s):
        self.batches.append((instance, batch_items, n_requests))

    def on_dropped(self, reason):
        self.dropped.append(reason)


def X(v: float, n: int = 1, width: int = 3) -> dict[str, np.ndarray]:
    return {"x": np.full((n, width), v, np.float32)}


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, T * 2)

    return asyncio.run(bounded())


async def yield_loop(times: int = 3) -> None:
    for _ in range(times):
        await asyncio.sleep(0)  # let created tasks reach their `await` (no time passes)


async def wait_event(ev: threading.Event) -> None:
    assert await asyncio.to_thread(ev.wait, T), "runner was never entered"


async def settled(b: DynamicBatcher) -> int:
    """b.in_flight once the worker has finished its batch. The worker delivers the answers first and then, in its
    own thread, stops counting the batch as executing: an awaiting caller can run in between (seen on a busy 2-core
    CI box), so wait for the state, bounded by T."""
    deadline = time.monotonic() + T
    while b.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    return b.in_flight


def make(runners, **kw) -> DynamicBatcher:
    kw.setdefault("max_batch_size", 8)
    b = DynamicBatcher("m", runners, **kw)
    b.start()
    return b


# ---------------------------------------------------------------- formation and results


def test_queued_requests_form_one_batch_and_get_their_rows():
    async def main():
        gate = threading.Event()
        runner, clock, obs = FakeRunner(gate), FakeClock(), Recorder()
        b = make([runner], clock=clock, observer=obs)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        tasks = [asyncio.create_task(b.submit(X(v, n))) for v, n in [(1, 1), (2, 2), (3, 1)]]
        await yield_loop()
        assert b.queue_depth == 3 and b.in_flight == 4
        clock.t += 0.25
        gate.set()
        outs = await asyncio.gather(first, *tasks)
        assert all(isinstance(o, BatchOutcome) for o in outs)
        assert [o.batch_size for o in outs] == [1, 4, 4, 4]
        for o, (v, n) in zip(outs, [(0, 1), (1, 1), (2, 2), (3, 1)]):
            np.testing.assert_array_equal(o.outputs["y"], np.full((n, 3), 2 * v, np.float32))
            assert o.instance == 0
        assert outs[1].queue_s == pytest.approx(0.25)  # injected clock: enqueue → dispatch
        assert obs.batches == [(0, 1, 1), (0, 4, 3)]
        assert len(runner.calls) == 2 and runner.calls[1].shape == (4, 3)
        assert b.queue_depth == 0 and await settled(b) == 0
        assert obs.depths[-1] == 0 and max(obs.depths) == 3
        await b.stop()

    run(main())


def test_incompatible_shapes_run_in_separate_batches_fifo():
    async def main():
        gate = threading.Event()
        runner = FakeRunner(gate)
        b = make([runner])
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        tasks = [asyncio.create_task(b.submit(X(v, width=w))) for v, w in [(1, 3), (2, 5), (3, 3), (4, 5)]]
        await yield_loop()
        gate.set()
        outs = await asyncio.gather(first, *tasks)
        assert [c.shape for c in runner.calls] == [(1, 3), (2, 3), (2, 5)]
        np.testing.assert_array_equal(runner.calls[1][:, 0], [1, 3])
        assert [o.outputs["y"].shape for o in outs[1:]] == [(1, 3), (1, 5), (1, 3), (1, 5)]
        await b.stop()

    run(main())


def test_queue_delay_waits_for_batch_mates_on_the_injected_clock():
    async def main():
        runner, clock = FakeRunner(), FakeClock()
        b = make([runner], max_batch_size=4, max_queue_delay_ms=1000, clock=clock)
        # the fake clock does not move: the worker can only dispatch when the batch is full
        tasks = [asyncio.create_task(b.submit(X(v))) for v in range(3)]
        await yield_loop()
        assert runner.calls == [] and b.queue_depth == 3
        tasks.append(asyncio.create_task(b.submit(X(3))))
        outs = await asyncio.gather(*tasks)
        assert [o.batch_size for o in outs] == [4, 4, 4, 4]
        # a lone request leaves once the oldest has waited the delay
        late = asyncio.create_task(b.submit(X(9)))
        await yield_loop()
        clock.t += 1.0
        b.poke()
        out = await late
        assert out.batch_size == 1 and out.queue_s == pytest.approx(1.0)
        assert len(runner.calls) == 2
        await b.stop()

    run(main())


def test_preferred_batch_size_dispatches_before_the_delay():
    async def main():
        runner = FakeRunner()
        b = make([runner], max_batch_size=8, max_queue_delay_ms=1000, preferred_batch_sizes=[2], clock=FakeClock())
        outs = await asyncio.gather(b.submit(X(1)), b.submit(X(2)))
        assert [o.batch_size for o in outs] == [2, 2]
        await b.stop()

    run(main())


# ---------------------------------------------------------------- admission


def test_queue_full_raises_at_once_with_retry_after():
    async def main():
        gate = threading.Event()
        runner = FakeRunner(gate)
        b = make([runner], max_queue_size=2)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)  # executing: not in the queue any more
        queued = [asyncio.create_task(b.submit(X(v))) for v in (1, 2)]
        await yield_loop()
        assert b.queue_depth == 2 and b.in_flight == 3
        with pytest.raises(QueueFull) as ei:
            await b.submit(X(3))
        assert ei.value.status == 503
        assert ei.value.headers["Retry-After"] == "1"
        gate.set()
        outs = await asyncio.gather(first, *queued)
        assert len(outs) == 3
        await b.submit(X(4))  # room again
        await b.stop()

    run(main())


@pytest.mark.parametrize(
    "inputs, match",
    [
        (X(1, n=9), r"max_batch_size \(8\)"),
        ({"x": np.zeros((0, 3), np.float32)}, r"max_batch_size \(8\)"),
        ({"x": np.zeros((2, 3)), "z": np.zeros((3, 3))}, "disagree"),
        ({"x": np.float32(1.0) * np.ones((), np.float32)}, "batch dimension"),
        ({}, "at least one input"),
    ],
)
def test_bad_requests_are_400(inputs, match):
    async def main():
        runner = FakeRunner()
        b = make([runner])
        with pytest.raises(BadRequest, match=match) as ei:
            await b.submit(inputs)
        assert ei.value.status == 400
        assert runner.calls == [] and b.in_flight == 0
        await b.stop()

    run(main())


def test_submit_before_start_is_unavailable():
    async def main():
        b = DynamicBatcher("m", [FakeRunner()], max_batch_size=4)
        with pytest.raises(Unavailable):
            await b.submit(X(1))

    run(main())


# ---------------------------------------------------------------- failures, deadlines, cancellation


def test_failure_is_isolated_to_the_culprit():
    async def main():
        gate = threading.Event()
        runner, obs = FakeRunner(gate, poison=-1.0), Recorder()
        b = make([runner], observer=obs)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        tasks = [asyncio.create_task(b.submit(X(v))) for v in (1, -1, 3)]
        await yield_loop()
        gate.set()
        ok1, bad, ok3 = await asyncio.gather(*tasks, return_exceptions=True)
        await first
        assert isinstance(bad, InferError) and bad.status == 500
        assert "poison value" in bad.message and "INVALID_ARGUMENT" in bad.message
        np.testing.assert_array_equal(ok1.outputs["y"], [[2, 2, 2]])
        np.testing.assert_array_equal(ok3.outputs["y"], [[6, 6, 6]])
        assert ok1.batch_size == 1 and ok3.batch_size == 1  # re-run singly
        # the batch of 3 was tried once, then each member alone
        assert [c.shape[0] for c in runner.calls] == [1, 3, 1, 1, 1]
        assert (0, 3, 3) not in obs.batches  # the failed execution is not reported as a batch
        await b.stop()

    run(main())


def test_single_request_failure_is_500():
    async def main():
        b = make([FakeRunner(poison=7.0)])
        with pytest.raises(InferError, match="poison") as ei:
            await b.submit(X(7))
        assert ei.value.status == 500
        assert (await b.submit(X(1))).batch_size == 1  # the worker survived
        await b.stop()

    run(main())


def test_outputs_without_a_batch_dim_fall_back_to_single_runs():
    async def main():
        gate = threading.Event()
        runner = FakeRunner(gate, outputs=lambda x: {"y": np.float32(x.sum()) * np.ones((), np.float32)})
        b = make([runner])
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        tasks = [asyncio.create_task(b.submit(X(v))) for v in (1, 2)]
        await yield_loop()
        gate.set()
        outs = await asyncio.gather(first, *tasks)
        assert [float(o.outputs["y"]) for o in outs] == [0.0, 3.0, 6.0]
        assert [c.shape[0] for c in runner.calls] == [1, 2, 1, 1]
        await b.stop()

    run(main())


def test_expired_request_is_504_and_never_computed():
    async def main():
        gate = threading.Event()
        runner, clock, obs = FakeRunner(gate), FakeClock(), Recorder()
        b = make([runner], clock=clock, observer=obs)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        doomed = asyncio.create_task(b.submit(X(5), deadline=clock.t + 1.0))
        fine = asyncio.create_task(b.submit(X(6), deadline=clock.t + 10.0))
        await yield_loop()
        clock.t += 2.0
        gate.set()
        with pytest.raises(DeadlineExceeded) as ei:
            await doomed
        assert ei.value.status == 504
        assert (await fine).batch_size == 1
        await first
        assert obs.dropped == ["timeout"]
        assert not any((c == 5).any() for c in runner.calls)
        # already past at submit: refused without queueing
        with pytest.raises(DeadlineExceeded):
            await b.submit(X(7), deadline=clock.t)
        assert obs.dropped == ["timeout", "timeout"]
        await b.stop()

    run(main())


def test_cancelled_request_is_dropped_without_running():
    async def main():
        gate = threading.Event()
        runner, obs = FakeRunner(gate), Recorder()
        b = make([runner], observer=obs)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        gone = asyncio.create_task(b.submit(X(5)))
        await yield_loop()
        assert b.queue_depth == 1
        gone.cancel()  # the client disconnected
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert b.queue_depth == 0 and b.in_flight == 1
        gate.set()
        after = await b.submit(X(6))
        await first
        assert after.batch_size == 1
        assert obs.dropped == ["cancelled"]
        assert not any((c == 5).any() for c in runner.calls)
        await b.stop()

    run(main())


# ---------------------------------------------------------------- instances and shutdown


def test_instances_run_concurrently():
    async def main():
        barrier = threading.Barrier(2)
        r0, r1 = FakeRunner(barrier=barrier), FakeRunner(barrier=barrier)
        b = make([r0, r1], max_batch_size=1)
        outs = await asyncio.gather(b.submit(X(1)), b.submit(X(2)))  # each needs the other inside run()
        assert sorted(o.instance for o in outs) == [0, 1]
        assert r0.entered.is_set() and r1.entered.is_set()
        await b.stop()

    run(main())


def test_stop_drains_queued_and_in_flight():
    async def main():
        gate = threading.Event()
        runner = FakeRunner(gate)
        b = make([runner], max_batch_size=1)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        queued = [asyncio.create_task(b.submit(X(v))) for v in (1, 2)]
        await yield_loop()
        stopping = asyncio.create_task(b.stop(drain=True, timeout_s=T))
        await yield_loop()
        with pytest.raises(Unavailable) as ei:
            await b.submit(X(3))
        assert ei.value.status == 503
        gate.set()
        await stopping
        outs = await asyncio.gather(first, *queued)
        assert [float(o.outputs["y"][0, 0]) for o in outs] == [0.0, 2.0, 4.0]
        assert not any(t.is_alive() for t in b._threads)
        assert b.in_flight == 0

    run(main())


def test_stop_without_drain_fails_queued_and_executing():
    async def main():
        gate = threading.Event()
        runner = FakeRunner(gate)
        b = make([runner], max_batch_size=1)
        first = asyncio.create_task(b.submit(X(0)))
        await wait_event(runner.entered)
        queued = [asyncio.create_task(b.submit(X(v))) for v in (1, 2)]
        await yield_loop()
        stopping = asyncio.create_task(b.stop(drain=False, timeout_s=T))
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results)
        gate.set()  # the executing batch ends; its result is discarded
        await stopping
        assert len(runner.calls) == 1
        assert not any(t.is_alive() for t in b._threads)

    run(main())


def test_callback_mode_answers_in_the_loop_turn_and_withdraw_drops():
    """enqueue_callback: the callback gets (outcome, False) on the loop thread; a withdrawn queued request is dropped
    before it runs and its callback is never called; a refusal raises at once."""

    async def main():
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        runner = FakeRunner(gate=gate)
        b = DynamicBatcher("m", [runner], max_batch_size=1, max_queue_size=2, clock=FakeClock())
        b.start()
        got: list[tuple[object, bool, bool]] = []
        done = asyncio.Event()

        def cb(value, is_error):
            got.append((value, is_error, threading.current_thread() is threading.main_thread()))
            if len(got) == 2:
                done.set()

        first = b.enqueue_callback({"x": np.array([[1.0]])}, cb, loop=loop)
        assert runner.entered.wait(T)  # the first is running; the next two wait in the queue
        second = b.enqueue_callback({"x": np.array([[2.0]])}, lambda v, e: got.append(("never", e, False)), loop=loop)
        b.enqueue_callback({"x": np.array([[3.0]])}, cb, loop=loop)
        with pytest.raises(QueueFull):
            b.enqueue_callback({"x": np.array([[4.0]])}, cb, loop=loop)
        b.withdraw(second)
        assert b.queue_depth == 1
        gate.set()
        await asyncio.wait_for(done.wait(), T)
        await b.stop(drain=True, timeout_s=T)
        return first, got, [float(c[0, 0]) for c in runner.calls]

    first, got, ran = asyncio.run(main())
    assert ran == [1.0, 3.0]  # the withdrawn request never ran
    assert [g[1:] for g in got] == [(False, True), (False, True)]
    assert isinstance(got[0][0], BatchOutcome) and got[0][0].outputs["y"].tolist() == [[2.0]]
    assert got[1][0].outputs["y"].tolist() == [[6.0]]
