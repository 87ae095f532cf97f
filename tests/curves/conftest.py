from __future__ import annotations

from pathlib import Path

import pytest

from tests.curves.fakes import write_fake_sweep


@pytest.fixture
def base_scenario():
    from loadgen.engine.scenario import Scenario

    return Scenario(
        target="http://127.0.0.1:9",
        model="tiny_classifier",
        mode="open",
        rate_rps=10,
        duration_s=5,
        warmup_s=1,
        slo_p99_ms=50,
    )


@pytest.fixture
def fake_sweep(tmp_path: Path) -> Path:
    return write_fake_sweep(tmp_path / "sweep")
