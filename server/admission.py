"""Admission before ingestion: a per-model bound on the requests the server holds, checked before the body is read.

A request is *admitted* when its headers have arrived, before a byte of its body is read; it stays admitted while
its body is read and decoded, while it waits in the batcher queue and while it runs, until its response is built.
At the limit, the next request is refused at once (503 + Retry-After) without reading its body: under overload
the server neither buffers nor decodes what it will not serve, so its memory and CPU follow from configuration,
not from how many clients are connected. Event-loop only (no locks): every call comes from the loop thread.

Default limit per model: `max_queue_size + instances × max_batch_size` (a full queue plus a batch running on every
instance). Memory ceiling of inference data, per model: limit × (max request body + its decoded tensors).
"""

from __future__ import annotations


class Admission:
    __slots__ = ("limit", "current", "peak")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("admission limit must be >= 1")
        self.limit = limit
        self.current = 0  # exposed as inferload_inflight_requests, read at scrape
        self.peak = 0

    def try_enter(self) -> bool:
        if self.current >= self.limit:
            return False
        self.current += 1
        if self.current > self.peak:
            self.peak = self.current
        return True

    def leave(self) -> None:
        if self.current > 0:
            self.current -= 1


def default_limit(max_queue_size: int, instances: int, max_batch_size: int) -> int:
    return max_queue_size + instances * max_batch_size
