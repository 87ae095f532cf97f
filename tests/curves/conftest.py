from __future__ import annotations

from pathlib import Path

import pytest

from tests.curves.fakes import fake_result, write_fake_sweep


def fake_run(scenario) -> dict:
    """Stands in for loadgen.runner.run_scenario: a simulated server (see fakes.py)."""
    if scenario.mode == "closed":
        r = fake_result(min(390.0, 45.0 * scenario.users), mode="closed", users=scenario.users,
                        duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms)
    else:
        r = fake_result(scenario.rate_rps, duration_s=scenario.duration_s, slo_ms=scenario.slo_p99_ms)
    r["scenario"] = scenario.model_dump(mode="json")
    return r


@pytest.fixture
def base_scenario():
    from loadgen.scenario import Scenario

    return Scenario(target="http://127.0.0.1:9", model="tiny_classifier", mode="open", rate_rps=10,
                    duration_s=5, warmup_s=1, slo_p99_ms=50)


@pytest.fixture
def fake_sweep(tmp_path: Path) -> Path:
    return write_fake_sweep(tmp_path / "sweep")
