"""The plain-ASGI infer endpoint's pure parts: path matching and body reading (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from server.dispatch import match_infer
from server.errors import PayloadTooLarge
from server.infer_http import _Disconnected, _read_body


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/v2/models/m/infer", ("m", None)),
        ("/v2/models/m/versions/1/infer", ("m", "1")),
        ("/v2/models/a.b-c/versions/v2/infer", ("a.b-c", "v2")),
        ("/v2/models//infer", None),
        ("/v2/models/m/infer/", None),
        ("/v2/models/m/versions//infer", None),
        ("/v2/models/m/x/1/infer", None),
        ("/v2/models/m/versions/1/2/infer", None),
        ("/v2/models/m", None),
        ("/v2/models/infer", None),
        ("/v1/models/m/infer", None),
    ],
)
def test_match_infer(path, expected):
    assert match_infer(path) == expected


def _receiver(messages):
    it = iter(messages)

    async def receive():
        return next(it)

    return receive


def _read(messages, size, limit=1 << 20):
    return asyncio.run(_read_body(_receiver(messages), size, limit))


def test_single_chunk_body_is_returned_as_is():
    body = b"x" * 1000
    assert _read([{"type": "http.request", "body": body, "more_body": False}], 1000) is body


@pytest.mark.parametrize("size", [None, 10])
def test_chunks_are_joined_in_order(size):
    msgs = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"defg", "more_body": True},
        {"type": "http.request", "body": b"hij", "more_body": False},
    ]
    assert bytes(_read(msgs, size)) == b"abcdefghij"


def test_body_shorter_or_longer_than_content_length():
    msgs = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"de", "more_body": False},
    ]
    assert bytes(_read(msgs, 8)) == b"abcde"
    msgs = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"defg", "more_body": False},
    ]
    assert bytes(_read(msgs, 4)) == b"abcdefg"


def test_body_over_the_limit_is_413():
    msgs = [
        {"type": "http.request", "body": b"abcd", "more_body": True},
        {"type": "http.request", "body": b"efgh", "more_body": False},
    ]
    with pytest.raises(PayloadTooLarge):
        _read(msgs, None, limit=6)
    with pytest.raises(PayloadTooLarge):
        _read([{"type": "http.request", "body": b"abcdefgh", "more_body": False}], None, limit=6)


def test_disconnect_while_reading():
    msgs = [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    with pytest.raises(_Disconnected):
        _read(msgs, 10)
