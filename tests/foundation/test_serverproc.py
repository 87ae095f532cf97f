"""ServerProcess: a server that cannot start is reported with its own reason; a good one is stopped cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgen.baseline.serverproc import ServerProcess

REPO = Path(__file__).resolve().parents[2] / "models"


def test_failed_start_reports_the_servers_reason(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 1.*does not exist or is not a directory"):
        ServerProcess(tmp_path / "missing", ready_timeout_s=60).start()


def test_ready_then_stopped_with_exit_code_zero():
    srv = ServerProcess(REPO, model_names=["tiny_classifier"], ready_timeout_s=120).start()
    try:
        assert srv.proc.poll() is None
    finally:
        assert srv.stop() == 0
