"""What the batcher's threads hand each other: the `Runner` and observer protocols, a request's record (`Request`)
and the delivery of results from a worker thread to the requests' event loops (`deliver` → `settle`: one
`call_soon_threadsafe` per batch and loop; a future is resolved, or a callback called, in that same loop turn).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from server.batching.policy import Entry

log = logging.getLogger("server.batching.batcher")


class Runner(Protocol):
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...  # blocking; called from a worker thread


@dataclass(slots=True)
class BatchOutcome:
    outputs: dict[str, np.ndarray]  # this request's rows only
    queue_s: float  # enqueue → batch dispatch
    compute_s: float  # runner.run wall time for the batch it was in
    batch_size: int  # items in the executed batch
    instance: int  # index of the runner that executed it


class BatchObserver(Protocol):
    def on_queue_depth(self, depth: int) -> None: ...
    def on_batch(self, instance: int, batch_items: int, n_requests: int, compute_s: float) -> None: ...
    def on_dropped(self, reason: str) -> None: ...  # "cancelled" | "timeout"


class NullObserver:
    """No-op observer; subclass it and override what you need."""

    def on_queue_depth(self, depth: int) -> None:
        pass

    def on_batch(self, instance: int, batch_items: int, n_requests: int, compute_s: float) -> None:
        pass

    def on_dropped(self, reason: str) -> None:
        pass


QUEUED, RUNNING, DONE = 0, 1, 2


Callback = Callable[[Any, bool], None]  # (BatchOutcome or InferError, is_error), called on the request's loop


class Request(Entry):
    __slots__ = ("inputs", "loop", "fut", "callback", "state")

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        n: int,
        sig: tuple[Any, ...],
        enqueued: float,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
        fut: asyncio.Future[BatchOutcome] | None,
        callback: Callback | None,
    ) -> None:
        super().__init__(n, sig, enqueued, deadline)
        self.inputs = inputs
        self.loop = loop
        self.fut = fut  # future mode (`enqueue`), or
        self.callback = callback  # callback mode (`enqueue_callback`); None once called or withdrawn
        self.state = QUEUED


def settle(items: list[tuple[Request, Any, bool]]) -> None:
    """Runs on the event loop: call back, or resolve futures whose awaiting task is still there."""
    for req, value, is_error in items:
        cb = req.callback
        if cb is not None:
            req.callback = None
            try:
                cb(value, is_error)
            except Exception:  # never let one request's callback cost its batch-mates their answers
                log.exception("batch result callback failed")
            continue
        fut = req.fut
        if fut is None or fut.done():
            continue
        if is_error:
            fut.set_exception(value)
        else:
            fut.set_result(value)


def deliver(items: list[tuple[Request, Any, bool]]) -> None:
    """From any thread: hand (request, value, is_error) triples to their loops, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Request, Any, bool]]] = {}
    for item in items:
        req = item[0]
        req.state = DONE
        by_loop.setdefault(req.loop, []).append(item)
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(settle, batch)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass
