"""Pure batch-formation policy (Triton's dynamic batcher semantics). No threads, no clocks of its own.

`decide(queue, now, policy)` looks at a snapshot of the queue (oldest first) at time `now` and says either
`Dispatch(indices)` (run these queued requests as one batch now) or `Wait(until)` (nothing to run before
`until`, or before the next arrival when `until` is None). Both also list the requests to drop, which the
shell removes from the queue and answers: `expired` (504) and `cancelled` (client gone).

Rules, for the batch that a free instance would take:
- The oldest live request starts the batch. Later requests join in FIFO order if they have the same
  signature (incompatible ones are skipped and stay queued, in order) and their items fit in
  `max_batch_size`. The first compatible request that does not fit ends the scan: requests are never
  split, and compatible requests are never reordered.
- Cancelled requests and requests whose deadline is <= now are dropped when the scan meets them.
- If the batch reached a preferred size and the oldest has not waited `max_queue_delay` yet (or the delay
  is 0), dispatch the largest preferred size reached (a prefix of the batch; the rest waits).
- Otherwise dispatch everything gathered if the batch is full (== max_batch_size items), cannot grow
  (the next compatible request does not fit), the delay is 0, the oldest has waited the delay, or `flush`
  (draining on shutdown).
- Otherwise wait until the oldest has waited the delay, or until the earliest deadline in the batch
  (so that an expiring request is answered on time), whichever comes first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


class Entry:
    """What the policy needs to know about a queued request. The batcher's request type extends it."""

    __slots__ = ("n", "sig", "enqueued", "deadline", "cancelled")

    def __init__(
        self, n: int, sig: tuple[Any, ...], enqueued: float, deadline: float | None = None, cancelled: bool = False
    ) -> None:
        self.n = n  # items (rows of dim 0)
        self.sig = sig  # collate.signature(inputs)
        self.enqueued = enqueued  # clock time of enqueue
        self.deadline = deadline  # absolute clock time, or None
        self.cancelled = cancelled

    def __repr__(self) -> str:
        return f"Entry(n={self.n}, sig={self.sig!r}, enqueued={self.enqueued}, deadline={self.deadline}, cancelled={self.cancelled})"


@dataclass(frozen=True, slots=True)
class Policy:
    max_batch_size: int
    max_queue_delay_s: float = 0.0
    preferred_batch_sizes: frozenset[int] = frozenset()

    @classmethod
    def create(
        cls, max_batch_size: int, max_queue_delay_ms: float = 0.0, preferred_batch_sizes: Iterable[int] = ()
    ) -> Policy:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1 (got {max_batch_size})")
        if not (max_queue_delay_ms >= 0 and math.isfinite(max_queue_delay_ms)):
            raise ValueError(f"max_queue_delay_ms must be a finite number >= 0 (got {max_queue_delay_ms})")
        preferred = frozenset(int(p) for p in preferred_batch_sizes)
        bad = sorted(p for p in preferred if not 1 <= p <= max_batch_size)
        if bad:
            raise ValueError(f"preferred_batch_sizes {bad} outside 1..max_batch_size ({max_batch_size})")
        return cls(max_batch_size, max_queue_delay_ms / 1000.0, preferred)


@dataclass(frozen=True, slots=True)
class Dispatch:
    indices: tuple[int, ...]  # queue positions of the batch, in queue order
    expired: tuple[int, ...] = ()
    cancelled: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Wait:
    until: float | None  # clock time to decide again; None: only when something changes (arrival, stop)
    expired: tuple[int, ...] = ()
    cancelled: tuple[int, ...] = ()


def decide(queue: Sequence[Entry], now: float, policy: Policy, *, flush: bool = False) -> Dispatch | Wait:
    """The batch a free instance should run now, or how long to wait. Pure: same inputs, same answer."""
    max_bs = policy.max_batch_size
    preferred = policy.preferred_batch_sizes
    expired: list[int] = []
    cancelled: list[int] = []
    chosen: list[int] = []
    total = 0
    sig = None
    head_enqueued = 0.0
    best_preferred = 0  # len(chosen) when the largest preferred size was reached
    blocked = False  # the next compatible request does not fit
    earliest_deadline = math.inf
    for i, e in enumerate(queue):
        if e.cancelled:
            cancelled.append(i)
            continue
        if e.deadline is not None and now >= e.deadline:
            expired.append(i)
            continue
        if sig is None:
            sig = e.sig
            head_enqueued = e.enqueued
        elif e.sig != sig:
            continue
        if total + e.n > max_bs:
            blocked = True
            break
        chosen.append(i)
        total += e.n
        if e.deadline is not None and e.deadline < earliest_deadline:
            earliest_deadline = e.deadline
        if total in preferred:
            best_preferred = len(chosen)
        if total == max_bs:
            break
    exp, can = tuple(expired), tuple(cancelled)
    if not chosen:
        return Wait(None, exp, can)
    delay = policy.max_queue_delay_s
    due = head_enqueued + delay  # the same expression as the Wait below: waking at `until` is never early
    delay_exceeded = delay > 0 and now >= due
    if best_preferred and not delay_exceeded:
        return Dispatch(tuple(chosen[:best_preferred]), exp, can)
    if flush or blocked or total == max_bs or delay <= 0 or delay_exceeded:
        return Dispatch(tuple(chosen), exp, can)
    return Wait(min(due, earliest_deadline), exp, can)
