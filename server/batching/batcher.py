"""DynamicBatcher: bounded queue, deadlines, batch formation, one worker thread per model instance.

Transport-free: it takes dicts of numpy arrays and gives back `BatchOutcome`s or raises `InferError`s.
The decision of what to run and how long to wait is the pure `policy.decide`; this file is the thin
threaded shell around it. A request costs two thread hops: the event loop → a worker (Condition.notify),
and the worker → the event loop (one `call_soon_threadsafe` per batch and loop, no polling).

Thread safety: the queue and counters are guarded by one `threading.Condition`. Observer methods are
called from the event loop and from worker threads; `on_queue_depth` is called under that lock (so the
gauge sees depths in order), so observers must be cheap, must not block and must not call the batcher.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from server.batching.collate import collate, rows, signature, split
from server.batching.handoff import (
    DONE,
    QUEUED,
    RUNNING,
    BatchObserver,
    BatchOutcome,
    Callback,
    NullObserver,
    Request,
    Runner,
    deliver,
)
from server.batching.policy import Dispatch, Entry, Policy, Wait, decide
from server.errors import BadRequest, DeadlineExceeded, InferError, QueueFull, Unavailable

log = logging.getLogger(__name__)

__all__ = ["BatchObserver", "BatchOutcome", "DynamicBatcher", "NullObserver", "Runner"]


class DynamicBatcher:
    def __init__(
        self,
        model_name: str,
        runners: Sequence[Runner],
        *,
        max_batch_size: int,
        max_queue_delay_ms: float = 0.0,
        preferred_batch_sizes: Sequence[int] = (),
        max_queue_size: int = 128,
        clock: Callable[[], float] = time.monotonic,
        observer: BatchObserver | None = None,
    ) -> None:
        if not runners:
            raise ValueError(f"model '{model_name}': the batcher needs at least one runner (instance)")
        if max_queue_size < 1:
            raise ValueError(f"model '{model_name}': max_queue_size must be >= 1 (got {max_queue_size})")
        self.model_name = model_name
        self.policy = Policy.create(max_batch_size, max_queue_delay_ms, preferred_batch_sizes)
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self._runners = list(runners)
        self._clock = clock
        self._observer: BatchObserver = observer if observer is not None else NullObserver()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Request] = deque()
        self._n_cancelled = 0  # cancelled requests still in _queue
        self._executing = 0  # requests taken by workers and not yet answered
        self._current: list[list[Request]] = [[] for _ in self._runners]  # per instance, for stop(drain=False)
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closing = False

    # ------------------------------------------------------------------ public API

    @property
    def queue_depth(self) -> int:
        return len(self._queue) - self._n_cancelled

    @property
    def in_flight(self) -> int:
        return len(self._queue) - self._n_cancelled + self._executing

    @property
    def instances(self) -> int:
        return len(self._runners)

    def start(self) -> None:
        """Start one daemon worker thread per runner. Idempotent."""
        with self._cond:
            if self._started:
                return
            if self._closing:
                raise RuntimeError(f"model '{self.model_name}': batcher was stopped; make a new one")
            self._started = True
            for i in range(len(self._runners)):
                t = threading.Thread(target=self._worker, args=(i,), name=f"batcher-{self.model_name}-{i}", daemon=True)
                self._threads.append(t)
        for t in self._threads:
            t.start()

    def poke(self) -> None:
        """Make every idle worker decide again now (e.g. after advancing an injected clock in tests)."""
        with self._cond:
            self._cond.notify_all()

    async def submit(self, inputs: dict[str, np.ndarray], *, deadline: float | None = None) -> BatchOutcome:
        """Queue one request (n >= 1 items along dim 0) and wait for its rows of the batch outputs. Cancelling the
        waiting task drops the request from the queue (see `enqueue`)."""
        return await self.enqueue(inputs, deadline=deadline)

    def enqueue(
        self,
        inputs: dict[str, np.ndarray],
        *,
        deadline: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> asyncio.Future[BatchOutcome]:
        """Queue one request from the event loop `loop` (default: the running one) without a task: the future resolves
        to its `BatchOutcome` (or its `InferError`). Cancelling the future drops the request if it is still queued (a
        worker that already took it runs it; the result is discarded). Refusals (queue full, deadline passed,
        stopping, bad batch) raise here."""
        if loop is None:
            loop = asyncio.get_running_loop()
        fut: asyncio.Future[BatchOutcome] = loop.create_future()
        req = self._enqueue(inputs, deadline, loop, fut, None)
        # Registered before anyone awaits the future, so it runs before an awaiting task sees its CancelledError.
        fut.add_done_callback(lambda f: self._withdraw(req) if f.cancelled() else None)
        return fut

    def enqueue_callback(
        self,
        inputs: dict[str, np.ndarray],
        callback: Callback,
        *,
        loop: asyncio.AbstractEventLoop,
        deadline: float | None = None,
    ) -> Entry:
        """`enqueue` without a future: `callback(outcome or InferError, is_error)` is called on `loop` when the batch
        is done, from the same loop turn that receives the result (a future's done-callbacks wait one more turn).
        Returns a ticket for `withdraw`. Refusals raise here, as in `enqueue`."""
        return self._enqueue(inputs, deadline, loop, None, callback)

    def withdraw(self, ticket: Entry) -> None:
        """Callback mode, from the loop thread: the caller no longer wants the answer (its client left). The callback
        will not be called; the request is dropped if it is still queued."""
        assert isinstance(ticket, Request)
        if ticket.callback is not None:
            ticket.callback = None
            self._withdraw(ticket)

    def _enqueue(
        self,
        inputs: dict[str, np.ndarray],
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
        fut: asyncio.Future[BatchOutcome] | None,
        callback: Callback | None,
    ) -> Request:
        n = self._items(inputs)
        sig = signature(inputs)
        cond = self._cond
        with cond:
            if self._closing or not self._started:
                state = "shutting down" if self._closing else "not started"
                raise Unavailable(f"model '{self.model_name}' is {state}")
            depth = len(self._queue) - self._n_cancelled
            if depth >= self.max_queue_size:
                raise QueueFull(
                    f"model '{self.model_name}': queue is full ({self.max_queue_size} requests waiting); retry later"
                )
            now = self._clock()
            if deadline is None or now < deadline:
                req = Request(inputs, n, sig, now, deadline, loop, fut, callback)
                self._queue.append(req)
                self._observer.on_queue_depth(depth + 1)
                cond.notify()
                return req
        self._observer.on_dropped("timeout")
        raise DeadlineExceeded(f"model '{self.model_name}': deadline passed before the request was queued")

    def _withdraw(self, req: Request) -> None:
        """A cancelled future: drop its request if it is still queued."""
        with self._cond:
            if req.state == QUEUED and not req.cancelled:
                req.cancelled = True
                self._n_cancelled += 1
                self._observer.on_queue_depth(len(self._queue) - self._n_cancelled)
                self._cond.notify()  # a waiting worker drops it now rather than at its next batch

    async def stop(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop admitting (submit → Unavailable). drain: finish queued and executing requests; otherwise fail
        them with Unavailable at once (an executing batch still runs to its end; its results are discarded).
        Joins the worker threads (up to timeout_s); whatever is still queued after that fails with Unavailable."""
        with self._cond:
            self._closing = True
            failed: list[Request] = []
            if not drain or not self._started:
                failed = self._take_all_queued()
                for cur in self._current:
                    failed.extend(r for r in cur if r.state == RUNNING)
            self._cond.notify_all()
        self._fail(failed, "shutting down")
        threads = list(self._threads)
        if threads:
            await asyncio.to_thread(_join_all, threads, timeout_s)
        with self._cond:
            left = self._take_all_queued()
            alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning(
                "model '%s': %d worker(s) still busy after %.1f s: %s",
                self.model_name,
                len(alive),
                timeout_s,
                ", ".join(alive),
            )
        self._fail(left, "shutting down")

    # ------------------------------------------------------------------ internals

    def check_items(self, n: int) -> int:
        """The one check of a request's item count against 1..max_batch_size (BadRequest otherwise). Submission calls
        it; the service calls it too for encoded images, to refuse an oversized request before decoding it."""
        if n < 1 or n > self.max_batch_size:
            raise BadRequest(
                f"model '{self.model_name}': batch of {n} items is outside 1..max_batch_size ({self.max_batch_size})"
            )
        return n

    def _items(self, inputs: dict[str, np.ndarray]) -> int:
        try:
            n = rows(inputs)
        except ValueError as e:
            raise BadRequest(f"model '{self.model_name}': {e}") from None
        return self.check_items(n)

    def _take_all_queued(self) -> list[Request]:
        """Under the lock: empty the queue, returning its live requests."""
        live = [r for r in self._queue if not r.cancelled]
        self._queue.clear()
        self._n_cancelled = 0
        if live:
            self._observer.on_queue_depth(0)
        return live

    def _fail(self, reqs: list[Request], why: str) -> None:
        if reqs:
            deliver([(r, Unavailable(f"model '{self.model_name}' is {why}"), True) for r in reqs])

    def _take(self, indices: Sequence[int]) -> list[Request]:
        """Under the lock: remove queue positions `indices` (ascending) and return those requests."""
        q = self._queue
        k = len(indices)
        if indices[-1] == k - 1:  # a prefix: the common case
            return [q.popleft() for _ in range(k)]
        drop = set(indices)
        taken = [q[i] for i in indices]
        self._queue = deque(r for i, r in enumerate(q) if i not in drop)
        return taken

    def _worker(self, idx: int) -> None:
        runner = self._runners[idx]
        cond = self._cond
        clock = self._clock
        while True:
            batch: list[Request] = []
            expired: list[Request] = []
            n_cancelled = 0
            exiting = False
            with cond:
                while True:
                    now = clock()
                    d = decide(self._queue, now, self.policy, flush=self._closing)
                    if d.expired or d.cancelled:
                        wanted = d.indices if type(d) is Dispatch else ()
                        positions = sorted(wanted + d.expired + d.cancelled)
                        by_pos = dict(zip(positions, self._take(positions)))
                        batch = [by_pos[i] for i in wanted]
                        expired = [by_pos[i] for i in d.expired]
                        n_cancelled = len(d.cancelled)
                        self._n_cancelled -= n_cancelled
                        self._observer.on_queue_depth(len(self._queue) - self._n_cancelled)
                    elif type(d) is Dispatch:
                        batch = self._take(d.indices)
                        self._observer.on_queue_depth(len(self._queue) - self._n_cancelled)
                    if batch:
                        for r in batch:
                            r.state = RUNNING
                        self._executing += len(batch)
                        self._current[idx] = batch
                        if self._queue:
                            cond.notify()  # more queued: let another free instance look at it
                        break
                    if expired or n_cancelled:
                        break  # answer the dropped requests outside the lock, then decide again
                    if self._closing:
                        exiting = True  # flush mode: a Wait means nothing live is queued
                        break
                    assert isinstance(d, Wait)  # a Dispatch always carries a batch (handled above)
                    until = d.until
                    cond.wait(None if until is None else max(0.0, until - now))
            if expired or n_cancelled:
                self._answer_dropped(expired, n_cancelled, now)
            if batch:
                try:
                    self._execute(idx, runner, batch, now)
                except BaseException as e:  # never let a worker die with requests in hand
                    log.exception("model '%s' instance %d: batch failed unexpectedly", self.model_name, idx)
                    deliver(
                        [
                            (r, InferError(f"model '{self.model_name}': internal error: {e}"), True)
                            for r in batch
                            if r.state != DONE
                        ]
                    )
                finally:
                    with cond:
                        self._executing -= len(batch)
                        self._current[idx] = []
            elif exiting:
                return

    def _answer_dropped(self, expired: list[Request], n_cancelled: int, now: float) -> None:
        obs = self._observer
        for _ in range(n_cancelled):
            obs.on_dropped("cancelled")
        if expired:
            items = []
            for r in expired:
                obs.on_dropped("timeout")
                waited_ms = (now - r.enqueued) * 1000.0
                items.append(
                    (
                        r,
                        DeadlineExceeded(
                            f"model '{self.model_name}': deadline exceeded after {waited_ms:.1f} ms in the queue"
                        ),
                        True,
                    )
                )
            deliver(items)

    def _execute(self, idx: int, runner: Runner, batch: list[Request], dispatched: float) -> None:
        clock = self._clock
        obs = self._observer
        if len(batch) == 1:
            r = batch[0]
            t0 = clock()
            try:
                out = runner.run(dict(r.inputs))
            except Exception as e:
                deliver([(r, self._error(e), True)])
                return
            compute_s = clock() - t0
            obs.on_batch(idx, r.n, 1, compute_s)
            deliver([(r, BatchOutcome(out, dispatched - r.enqueued, compute_s, r.n, idx), False)])
            return
        try:
            inputs, sizes = collate([r.inputs for r in batch])
            t0 = clock()
            out = runner.run(inputs)
            compute_s = clock() - t0
            parts = split(out, sizes)
        except Exception as e:
            log.info(
                "model '%s' instance %d: batch of %d requests failed (%s); retrying them one by one",
                self.model_name,
                idx,
                len(batch),
                e,
            )
            for r in batch:
                self._execute(idx, runner, [r], dispatched)
            return
        items = sum(sizes)
        obs.on_batch(idx, items, len(batch), compute_s)
        deliver(
            [(r, BatchOutcome(p, dispatched - r.enqueued, compute_s, items, idx), False) for r, p in zip(batch, parts)]
        )

    def _error(self, e: Exception) -> InferError:
        if isinstance(e, InferError):
            return e
        return InferError(f"model '{self.model_name}': inference failed: {type(e).__name__}: {e}")


def _join_all(threads: list[threading.Thread], timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
