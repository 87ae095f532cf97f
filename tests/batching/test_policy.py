"""The pure batch-formation policy (Triton semantics) against a fake clock: `now` is just a number."""

from __future__ import annotations

import math

import pytest

from server.batching.policy import Dispatch, Entry, Policy, Wait, decide

A, B = ("A",), ("B",)  # two incompatible signatures


def E(n=1, t=0.0, sig=A, deadline=None, cancelled=False) -> Entry:
    return Entry(n, sig, t, deadline, cancelled)


def P(max_bs=8, delay_ms=0.0, preferred=()) -> Policy:
    return Policy.create(max_bs, delay_ms, preferred)


# ---------------------------------------------------------------- no delay: dispatch at once


def test_empty_queue_waits_for_arrival():
    assert decide([], 0.0, P()) == Wait(None)
    assert decide([], 0.0, P(delay_ms=5)) == Wait(None)


def test_no_delay_dispatches_whatever_is_queued():
    assert decide([E()], 0.0, P()) == Dispatch((0,))
    assert decide([E(), E(2), E(3)], 0.0, P()) == Dispatch((0, 1, 2))


def test_max_batch_size_caps_and_never_splits_a_request():
    q = [E(3), E(3), E(3)]
    assert decide(q, 0.0, P(max_bs=8)) == Dispatch((0, 1))  # 6 items; the third does not fit
    assert decide(q, 0.0, P(max_bs=9)) == Dispatch((0, 1, 2))
    assert decide([E(4), E(4), E(1)], 0.0, P(max_bs=8)) == Dispatch((0, 1))  # full at 8


def test_fifo_is_kept_among_compatible_requests():
    # the 5-item request does not fit after 4; the later 1-item one is not pulled ahead of it
    assert decide([E(4), E(5), E(1)], 0.0, P(max_bs=8)) == Dispatch((0,))


def test_max_batch_size_one():
    assert decide([E(), E(), E()], 0.0, P(max_bs=1)) == Dispatch((0,))


# ---------------------------------------------------------------- incompatible signatures


def test_incompatible_requests_are_skipped_not_reordered():
    q = [E(1, sig=A), E(1, sig=B), E(1, sig=A), E(2, sig=B), E(1, sig=A)]
    assert decide(q, 0.0, P()) == Dispatch((0, 2, 4))
    # the next batch (after removing 0, 2, 4) starts with the oldest remaining: B
    assert decide([q[1], q[3]], 0.0, P()) == Dispatch((0, 1))


def test_head_defines_the_signature():
    assert decide([E(sig=B), E(sig=A), E(sig=B)], 0.0, P()) == Dispatch((0, 2))


def test_incompatible_large_request_does_not_block_the_batch():
    # a B that would not fit is irrelevant: it is skipped, not a reason to stop
    assert decide([E(2, sig=A), E(8, sig=B), E(2, sig=A)], 0.0, P(max_bs=8)) == Dispatch((0, 2))


# ---------------------------------------------------------------- queue delay, no preferred sizes


def test_delay_waits_for_the_oldest_then_dispatches_all():
    q = [E(1, t=10.0), E(2, t=10.004)]
    pol = P(max_bs=8, delay_ms=10)
    assert decide(q, 10.005, pol) == Wait(pytest.approx(10.010))
    assert decide(q, 10.010, pol) == Dispatch((0, 1))
    assert decide(q, 99.0, pol) == Dispatch((0, 1))


def test_delay_dispatches_at_once_when_full():
    pol = P(max_bs=4, delay_ms=1000)
    assert decide([E(2, t=0), E(2, t=0.1)], 0.2, pol) == Dispatch((0, 1))
    assert decide([E(4, t=0)], 0.0, pol) == Dispatch((0,))


def test_delay_dispatches_at_once_when_the_batch_cannot_grow():
    # 3 + 3 = 6 <= 8 but the next compatible (3) does not fit: waiting cannot make it larger
    pol = P(max_bs=8, delay_ms=1000)
    assert decide([E(3), E(3), E(3)], 0.0, pol) == Dispatch((0, 1))


def test_delay_wait_until_is_the_oldest_compatible_live_request():
    pol = P(max_bs=8, delay_ms=10)
    # the head is cancelled: the clock of the batch is the next live one
    q = [E(1, t=0.0, cancelled=True), E(1, t=0.005)]
    assert decide(q, 0.006, pol) == Wait(pytest.approx(0.015), cancelled=(0,))


def test_wait_wakes_at_the_earliest_deadline_in_the_batch():
    pol = P(max_bs=8, delay_ms=100)
    q = [E(1, t=0.0, deadline=1.0), E(1, t=0.0, deadline=0.05), E(1, t=0.0, sig=B, deadline=0.01)]
    d = decide(q, 0.0, pol)
    assert d == Wait(pytest.approx(0.05))  # B's deadline is not this batch's concern
    # at 0.05 the second request expired: answered, the rest waits until the delay
    assert decide(q, 0.05, pol) == Wait(pytest.approx(0.1), expired=(1, 2))


def test_flush_dispatches_without_waiting():
    pol = P(max_bs=8, delay_ms=1000)
    assert decide([E(1)], 0.0, pol) == Wait(pytest.approx(1.0))
    assert decide([E(1)], 0.0, pol, flush=True) == Dispatch((0,))
    assert decide([], 0.0, pol, flush=True) == Wait(None)


# ---------------------------------------------------------------- preferred batch sizes


def test_preferred_size_dispatches_at_once_even_with_delay():
    pol = P(max_bs=8, delay_ms=1000, preferred=(4,))
    assert decide([E(2), E(2)], 0.0, pol) == Dispatch((0, 1))
    assert decide([E(2), E(1)], 0.0, pol) == Wait(pytest.approx(1.0))


def test_largest_preferred_size_reached_is_dispatched():
    pol = P(max_bs=8, delay_ms=1000, preferred=(2, 4))
    q = [E(1), E(1), E(1), E(1), E(1), E(1)]
    assert decide(q, 0.0, pol) == Dispatch((0, 1, 2, 3))  # 4, not 6; the rest waits


def test_preferred_size_truncates_a_full_batch():
    pol = P(max_bs=8, delay_ms=1000, preferred=(4,))
    assert decide([E(1)] * 8, 0.0, pol) == Dispatch((0, 1, 2, 3))


def test_preferred_must_be_reached_exactly():
    pol = P(max_bs=8, delay_ms=1000, preferred=(4,))
    # 3 then 3: prefix sums 3, 6 never equal 4 → wait for the delay
    assert decide([E(3), E(3)], 0.0, pol) == Wait(pytest.approx(1.0))
    # ... then the largest possible batch
    assert decide([E(3), E(3)], 1.0, pol) == Dispatch((0, 1))


def test_after_the_delay_the_largest_batch_wins_over_preferred():
    pol = P(max_bs=8, delay_ms=10, preferred=(2,))
    q = [E(1, t=0.0)] * 5
    assert decide(q, 0.001, pol) == Dispatch((0, 1))
    assert decide(q, 0.010, pol) == Dispatch((0, 1, 2, 3, 4))


def test_preferred_with_zero_delay_prefers_then_sends_all():
    pol = P(max_bs=8, preferred=(4,))
    assert decide([E(1)] * 6, 0.0, pol) == Dispatch((0, 1, 2, 3))
    assert decide([E(1)] * 3, 0.0, pol) == Dispatch((0, 1, 2))


def test_preferred_with_incompatible_requests_in_between():
    pol = P(max_bs=8, delay_ms=1000, preferred=(3,))
    q = [E(1), E(1, sig=B), E(2), E(1)]
    assert decide(q, 0.0, pol) == Dispatch((0, 2))


# ---------------------------------------------------------------- deadlines and cancellations


def test_expired_requests_are_dropped_when_encountered():
    q = [E(1, deadline=5.0), E(1, deadline=None), E(1, deadline=20.0)]
    assert decide(q, 10.0, P()) == Dispatch((1, 2), expired=(0,))
    assert decide(q, 5.0, P()) == Dispatch((1, 2), expired=(0,))  # deadline == now counts as passed
    assert decide(q, 4.999, P()) == Dispatch((0, 1, 2))


def test_all_expired_gives_wait_with_drops():
    q = [E(deadline=1.0), E(deadline=2.0)]
    assert decide(q, 3.0, P()) == Wait(None, expired=(0, 1))


def test_cancelled_requests_are_skipped_and_reported():
    q = [E(cancelled=True), E(), E(cancelled=True), E()]
    assert decide(q, 0.0, P()) == Dispatch((1, 3), cancelled=(0, 2))
    assert decide([E(cancelled=True)], 0.0, P()) == Wait(None, cancelled=(0,))


def test_dead_requests_do_not_take_room():
    q = [E(4, cancelled=True), E(4, deadline=1.0), E(4), E(4)]
    assert decide(q, 2.0, P(max_bs=8)) == Dispatch((2, 3), expired=(1,), cancelled=(0,))


def test_scan_stops_at_a_full_batch_and_later_dead_ones_stay():
    # entries after the batch is complete are not encountered: they are dropped by a later decision
    q = [E(8), E(1, cancelled=True), E(1, deadline=0.0)]
    assert decide(q, 1.0, P(max_bs=8)) == Dispatch((0,))


def test_incompatible_expired_requests_are_dropped_too():
    q = [E(sig=A), E(sig=B, deadline=0.5), E(sig=A)]
    assert decide(q, 1.0, P()) == Dispatch((0, 2), expired=(1,))


# ---------------------------------------------------------------- exhaustive invariants


def _check(q, now, pol, d):
    live = [i for i, e in enumerate(q) if not e.cancelled and not (e.deadline is not None and now >= e.deadline)]
    drops = set(d.expired) | set(d.cancelled)
    assert drops.isdisjoint(getattr(d, "indices", ()))
    assert set(d.cancelled) <= {i for i, e in enumerate(q) if e.cancelled}
    if isinstance(d, Wait):
        if d.until is not None:
            assert d.until > now and pol.max_queue_delay_s > 0
        else:
            assert not live
        return
    idx = d.indices
    assert idx and list(idx) == sorted(idx)
    assert idx[0] == live[0]  # the oldest live request always goes first
    assert len({q[i].sig for i in idx}) == 1
    assert sum(q[i].n for i in idx) <= pol.max_batch_size


def test_invariants_over_many_queues():
    import random

    rng = random.Random(1234)
    for _ in range(3000):
        max_bs = rng.randint(1, 8)
        pref = tuple(sorted(rng.sample(range(1, max_bs + 1), rng.randint(0, min(3, max_bs)))))
        pol = P(max_bs, rng.choice([0.0, 5.0, 50.0]), pref)
        q = [
            E(
                rng.randint(1, max_bs),
                t=rng.uniform(0, 0.01),
                sig=rng.choice([A, A, B]),
                deadline=rng.choice([None, None, rng.uniform(0, 0.05)]),
                cancelled=rng.random() < 0.1,
            )
            for _ in range(rng.randint(0, 10))
        ]
        q.sort(key=lambda e: e.enqueued)
        now = rng.uniform(0.0, 0.06)
        _check(q, now, pol, decide(q, now, pol))


def test_policy_validation():
    with pytest.raises(ValueError):
        Policy.create(0)
    with pytest.raises(ValueError):
        Policy.create(4, -1)
    with pytest.raises(ValueError):
        Policy.create(4, math.inf)
    with pytest.raises(ValueError, match="preferred"):
        Policy.create(4, 0, [8])
    assert Policy.create(8, 2.5, [4, 2, 4]) == Policy(8, 0.0025, frozenset({2, 4}))
