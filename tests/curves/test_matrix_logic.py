"""Matrix helpers (loadgen.search.matrix) without a server: configurations, overrides, one cell with a fake runner."""

from __future__ import annotations

from loadgen.search.matrix import (
    choose_best,
    config_label,
    matrix_configs,
    measure_config,
    overrides_for,
    throughput_users,
)
from tests.curves.fakes import fake_run


def test_configs_and_overrides():
    cfgs = matrix_configs([1, 8], [1, 2], [0, 2])
    assert len(cfgs) == 8
    assert config_label(cfgs[0]) == "b1·i1·d0ms"
    o = overrides_for({"max_batch_size": 8, "instances": 2, "max_queue_delay_ms": 2})
    assert o == {
        "max_batch_size": 8,
        "batching": {"max_queue_delay_ms": 2.0, "preferred_batch_sizes": []},
        "instances": {"count": 2},
    }


def test_throughput_users():
    assert throughput_users({"max_batch_size": 1, "instances": 1}) == 4
    assert throughput_users({"max_batch_size": 8, "instances": 2}) == 32
    assert throughput_users({"max_batch_size": 16, "instances": 4}) == 64  # capped
    assert throughput_users({"max_batch_size": 8, "instances": 1}, items_per_request=4) == 4


def test_measure_config_with_fake_runner(tmp_path, base_scenario):
    cfg = {"max_batch_size": 8, "instances": 1, "max_queue_delay_ms": 0.0}
    row = measure_config(base_scenario, fake_run, cfg, "http://127.0.0.1:1234", tmp_path, slo_ms=50, max_probes=10)
    assert row["low_load"]["users"] == 1
    assert row["max_throughput_users"] == 16
    assert row["max_items_per_s"] > 300
    assert row["peak_rps"] and 100 < row["peak_rps"] < 360
    assert (tmp_path / "b8_i1_d0ms" / "max-throughput.json").is_file()
    assert (tmp_path / "b8_i1_d0ms" / "peak" / "probe-000.json").is_file()
    assert len(row["peak"]["probes"]) <= 10
    # the peak search started from the closed-loop rate just measured: no second capacity probe
    assert row["peak"]["capacity_probe"]["rps"] == row["max_throughput"]["achieved_rps"]
    assert not (tmp_path / "b8_i1_d0ms" / "peak" / "capacity.json").exists()
    assert row["peak"]["status"] == "found" and row["peak"]["confirmation"]["passes"] >= 2


def test_choose_best():
    rows = [
        {"label": "a", "low_load": {"valid": True, "p99_ms": 5}, "peak_rps": 100, "max_items_per_s": 400},
        {"label": "b", "low_load": {"valid": True, "p99_ms": 9}, "peak_rps": 150, "max_items_per_s": 300},
        {
            "label": "c",
            "low_load": {"valid": False, "p99_ms": 1},
            "peak_rps": None,
            "max_items_per_s": 500,
            "error": "server died",
        },
    ]
    assert choose_best(rows) == {"latency": "a", "peak": "b", "throughput": "a"}
