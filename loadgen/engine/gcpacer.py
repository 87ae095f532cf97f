"""Garbage collection paced by the load generator (no gevent, no locust: unit-testable)."""

from __future__ import annotations

import gc


class GcPacer:
    """Garbage collection on the generator's terms while it generates load.

    CPython's automatic collector runs whenever allocations cross a threshold: mid-burst, in the one thread that
    also has to wake the dispatcher on time. Its full (gen-2) collections took 20-30 ms here, its gen-1 ones ~2 ms,
    and disabling them cut the open-loop schedule lag p99 at 2,000 req/s several-fold (benchmarks/
    generator_accuracy.py). While a run generates load, automatic collection is off; the young generation is
    collected once a second (gen 1 every GEN1_EVERY ticks) at the CPU sampler's tick, a ~0.1-1 ms pause whose
    lateness is measured like any other; objects are freed by reference counting as usual, so only cyclic
    garbage waits, and a full collection runs when the run ends."""

    GEN1_EVERY = 5

    def __init__(self) -> None:
        self.active = False
        self.ticks = 0
        self.was_enabled = True

    def start(self) -> None:
        if not self.active:
            self.was_enabled = gc.isenabled()
            gc.disable()
            self.active = True

    def tick(self) -> None:
        if self.active:
            self.ticks += 1
            gc.collect(1 if self.ticks % self.GEN1_EVERY == 0 else 0)

    def stop(self) -> None:
        if self.active:
            self.active = False
            if self.was_enabled:
                gc.enable()
