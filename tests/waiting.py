"""Wait for a state, not a time: poll a condition until it holds or a deadline passes.

Tests that need a server (or Prometheus, or a subprocess) to reach a state — a request queued, a gauge at its limit,
a scrape landed — poll that state with `wait_until` instead of sleeping for a guessed duration. A wait that times
out fails with an AssertionError naming what never happened and the last value seen, so a slow machine makes a
test slower, not flaky, and a broken one fails with a reason instead of a wrong assertion further down.

No locust/gevent import: usable from every test process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `predicate` every `interval_s` until it returns a truthy value, and return that value.

    `what` names the awaited state ("queue depth of tiny_queue1 >= 1"). Exceptions of the `ignore` types raised by
    the predicate count as "not yet" (e.g. a connection refused while a process starts). After `timeout_s` without
    success: AssertionError "<what>: not reached within <timeout_s> s; last: <last value or exception>" (plus
    `describe()`, e.g. a log tail, when given).
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as e:  # "not yet": remember why, poll again
            value, last = None, e  # type: ignore[assignment]
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(f"{what}: not reached within {timeout_s:g} s; last: {last!r}{extra}")
        time.sleep(interval_s)  # the polling interval, not a guess at how long the state takes


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """One sample's value from a Prometheus text exposition (None when that series is absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    want = dict(labels)
    for fam in text_string_to_metric_families(exposition):
        for s in fam.samples:
            if s.name == name and s.labels == want:
                return float(s.value)
    return None
