"""collate / split / signature: pure numpy, no I/O."""

from __future__ import annotations

import numpy as np
import pytest

from server.batching.collate import collate, signature, split


def _req(n: int, fill: float = 0.0, dtype=np.float32, extra: bool = True) -> dict[str, np.ndarray]:
    d = {"x": np.full((n, 2, 3), fill, dtype=dtype)}
    if extra:
        d["ids"] = np.arange(n, dtype=np.int64) + int(fill) * 100
    return d


def test_single_request_is_not_copied():
    r = _req(3)
    batch, sizes = collate([r])
    assert sizes == [3]
    assert batch["x"] is r["x"] and batch["ids"] is r["ids"]
    assert batch is not r  # a new dict: the runner may not mutate the caller's mapping


def test_stacks_along_axis_0_in_order():
    reqs = [_req(1, 1), _req(3, 2), _req(2, 3)]
    batch, sizes = collate(reqs)
    assert sizes == [1, 3, 2]
    assert batch["x"].shape == (6, 2, 3)
    assert batch["x"].dtype == np.float32
    np.testing.assert_array_equal(batch["x"][:, 0, 0], [1, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(batch["ids"], [100, 200, 201, 202, 300, 301])


def test_split_round_trip_gives_views():
    reqs = [_req(1, 1), _req(3, 2), _req(2, 3)]
    batch, sizes = collate(reqs)
    out = {"y": batch["x"] * 2, "k": batch["ids"]}
    parts = split(out, sizes)
    assert len(parts) == 3
    for r, p in zip(reqs, parts):
        np.testing.assert_array_equal(p["y"], r["x"] * 2)
        np.testing.assert_array_equal(p["k"], r["ids"])
        assert np.shares_memory(p["y"], out["y"])  # views, no copy


def test_split_rejects_wrong_dim0_and_scalars():
    with pytest.raises(ValueError, match="expected 3 rows"):
        split({"y": np.zeros((4, 2))}, [1, 2])
    with pytest.raises(ValueError, match="scalar"):
        split({"y": np.float32(1.0) * np.ones(())}, [1])


def test_split_empty_outputs_and_single():
    assert split({}, [1, 2]) == [{}, {}]
    y = np.arange(6).reshape(3, 2)
    (only,) = split({"y": y}, [3])
    np.testing.assert_array_equal(only["y"], y)


def test_collate_rejects_mismatches():
    with pytest.raises(ValueError):
        collate([])
    with pytest.raises(ValueError, match="different inputs"):
        collate([_req(1), _req(1, extra=False)])
    with pytest.raises(ValueError, match="dtype"):
        collate([_req(1), _req(1, dtype=np.float64)])
    with pytest.raises(ValueError, match="rows"):
        collate([{"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}, {"a": np.zeros((1, 1)), "b": np.zeros((1, 1))}])
    with pytest.raises(ValueError):
        collate([{"a": np.zeros((1, 2))}, {"a": np.zeros((1, 3))}])  # trailing dims differ


def test_signature_ignores_batch_dim_and_order():
    a = {"x": np.zeros((1, 3), np.float32), "m": np.zeros((1,), np.int64)}
    b = {"m": np.zeros((5,), np.int64), "x": np.zeros((5, 3), np.float32)}
    assert signature(a) == signature(b)
    assert signature(a) == (("m", "<i8", ()), ("x", "<f4", (3,)))
    hash(signature(a))


@pytest.mark.parametrize(
    "other",
    [
        {"x": np.zeros((1, 4), np.float32), "m": np.zeros((1,), np.int64)},  # shape
        {"x": np.zeros((1, 3), np.float16), "m": np.zeros((1,), np.int64)},  # dtype
        {"y": np.zeros((1, 3), np.float32), "m": np.zeros((1,), np.int64)},  # name
        {"x": np.zeros((1, 3), np.float32)},  # missing input
    ],
)
def test_signature_differs(other):
    a = {"x": np.zeros((1, 3), np.float32), "m": np.zeros((1,), np.int64)}
    assert signature(a) != signature(other)
