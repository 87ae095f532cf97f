"""Pure tests of the Server-Timing parser."""

from __future__ import annotations

import pytest

from loadgen.engine.servertiming import parse_server_timing


def test_design_example():
    st = parse_server_timing('preprocess;dur=1.31, queue;dur=4.02, compute;dur=38.10, batch;desc="8", total;dur=43.9')
    assert st.durations_ms == {"preprocess": 1.31, "queue": 4.02, "compute": 38.10, "total": 43.9}
    assert st.batch == 8


@pytest.mark.parametrize(
    "header,batch",
    [
        ("batch;desc=4", 4),
        ("batch;dur=2", 2),
        ('batch;desc="x"', None),
        ("", None),
        (None, None),
        ("batch;desc=0", None),
    ],
)
def test_batch_forms(header, batch):
    assert parse_server_timing(header).batch == batch


def test_tolerant_of_noise_and_quotes():
    st = parse_server_timing(' Queue ; dur = 2.5 ;desc="a, b; c" ,, junk;;, compute;dur=abc, total;dur=3,cache')
    assert st.durations_ms == {"queue": 2.5, "total": 3.0}
    assert st.descriptions["queue"] == "a, b; c"
    assert "compute" not in st.durations_ms


def test_joined_headers_and_escapes():
    st = parse_server_timing('queue;dur=1, compute;dur=2;desc="say \\"hi\\""')
    assert st.durations_ms == {"queue": 1.0, "compute": 2.0}
    assert st.descriptions["compute"] == 'say "hi"'


@pytest.mark.parametrize(
    "header",
    [
        'preprocess;dur=1.31, queue;dur=4.02, compute;dur=38.10, batch;desc="8", total;dur=43.9',
        "queue;dur=0.057,compute;dur=0.101;desc=x,batch;desc=3,total;dur=0.556",
        ' Total ; dur = 2 , miss;desc="a b", x;dur, y;dur=nan, =;dur=1, z;dur=1e-3',
        'a;dur="5", b;desc="q"x, c;dur=1;dur=2',
    ],
)
def test_fast_path_agrees_with_the_general_parser(header):
    from loadgen.engine.servertiming import _parse_general

    assert parse_server_timing(header) == _parse_general(header)
