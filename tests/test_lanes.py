"""The lanes of tests/conftest.py name files that exist, and `make test-fast` selects what the lanes leave."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import E2E_MODULES, ROOT, SLOW_MODULES, TIMING_MODULES


def test_lanes_name_real_files():
    missing = sorted(m for m in E2E_MODULES | TIMING_MODULES | SLOW_MODULES if not (ROOT / m).is_file())
    assert not missing, f"tests/conftest.py lists files that do not exist: {missing}"


def test_every_timing_module_is_also_e2e():
    assert TIMING_MODULES <= E2E_MODULES  # a timing test measures something real


def test_make_test_fast_deselects_the_slow_lanes():
    text = (ROOT.parent / "Makefile").read_text()
    line = next(x for x in text.splitlines() if x.startswith("\t") and "-m" in x and "not e2e" in x)
    assert "not e2e and not timing and not slow" in line
    assert Path(ROOT.parent / "Makefile").read_text().count("test-fast:") == 1
