"""The lanes of tests/conftest.py name files that exist, and `make test-fast` selects what the lanes leave."""

from __future__ import annotations

from tests.conftest import E2E_MODULES, OPENVINO_MODULES, ROOT, SLOW_MODULES, TIMING_MODULES


def test_lanes_name_real_files():
    lanes = E2E_MODULES | TIMING_MODULES | SLOW_MODULES | OPENVINO_MODULES
    missing = sorted(m for m in lanes if not (ROOT / m).is_file())
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


def test_ci_runs_the_openvino_lane_in_its_own_environment():
    """`make test` collects the openvino modules too (they skip without OpenVINO); CI then builds .venv-openvino and
    runs exactly that lane there."""
    assert OPENVINO_MODULES <= E2E_MODULES  # they start servers and the CLI
    text = (ROOT.parent / "Makefile").read_text()
    recipe = text[text.index("\ntest-openvino: ") :].split("\n\n")[0]
    assert "$(OV_VENV)/bin/python -m pytest" in recipe and "-m openvino" in recipe
    ci = (ROOT.parent / ".ci" / "run").read_text()
    assert ci.index("make test-openvino") > ci.index("make test\n")
