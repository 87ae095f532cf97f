"""The lanes of tests/conftest.py name files that exist, and `make test-fast` selects what the lanes leave."""

from __future__ import annotations

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
    assert text.count("test-fast:") == 1


def test_make_test_runs_every_lane_in_one_of_its_two_passes():
    # the first pass takes everything but `timing`, the second exactly `timing`, alone: together, every test once
    text = (ROOT.parent / "Makefile").read_text()
    recipe = text[text.index("\ntest: ") :].split("\n\n")[0]
    assert '-m "not timing" -n $(TEST_JOBS)' in recipe
    assert "-m timing -n $(TIMING_JOBS)" in recipe
    assert "exit $$(( a != 0 ? a : b ))" in recipe  # a failure in either pass fails make test
