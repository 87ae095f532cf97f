"""tests/waiting.py: wait_until returns the first truthy value, treats ignored exceptions as "not yet", and fails
naming the awaited state and the last value seen."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import metric_value, wait_until


def test_returns_the_first_truthy_value():
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 3 and "ready", what="third call", interval_s=0) == "ready"


def test_ignored_exceptions_mean_not_yet():
    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n < 2:
            raise ConnectionError("refused")
        return n

    assert wait_until(flaky, what="a connection", interval_s=0, ignore=(ConnectionError,)) == 2
    with pytest.raises(KeyError):  # not ignored: raised at once
        wait_until(lambda: {}["x"], what="a key", timeout_s=5)


def test_timeout_names_the_state_and_the_last_value():
    with pytest.raises(AssertionError, match=r"queue depth >= 1: not reached within 0.05 s; last: 0\n log tail"):
        wait_until(lambda: 0, what="queue depth >= 1", timeout_s=0.05, interval_s=0.01, describe=lambda: " log tail")


def test_metric_value_reads_one_series():
    text = (
        '# TYPE inferload_queue_depth gauge\ninferload_queue_depth{model="a"} 3.0\n'
        'inferload_queue_depth{model="b"} 0.0\n'
    )
    assert metric_value(text, "inferload_queue_depth", model="a") == 3.0
    assert metric_value(text, "inferload_queue_depth", model="c") is None
