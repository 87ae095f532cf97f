"""Your own inputs through the real CLI (`inferload run --input-data ...`, generator in a subprocess) against the stand-in
OIP server, which records every tensor it receives (--record-inputs): the server gets exactly the file's values, BYTES
arrive intact over JSON and binary, a dynamic dimension works with --shape, and validation_data catches wrong outputs
(counted under `invalid_output`)."""

from __future__ import annotations

import json
import urllib.request

import pytest

MODEL_INPUTS = json.dumps(
    [{"name": "ids", "datatype": "INT64", "shape": [-1, -1]}, {"name": "text", "datatype": "BYTES", "shape": [-1, 1]}]
)
LOGITS = [0.1 * i for i in range(10)]  # what the stand-in answers per item (plus 1 with --validation-mismatch)
ENTRIES = [
    {"ids": [1, 2, 3], "text": ["héllo, wörld"]},
    {"ids": {"content": [-4, 2**40, 6], "shape": [3]}, "text": ['a "quoted" \\ string']},
    {"ids": [7, 8, 9], "text": [""]},
]
RUN = ("--model", "m", "--mode", "closed", "--users", "1", "--duration", "1", "--warmup", "0.2")


def _received(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/stats/inputs", timeout=10) as r:
        return json.loads(r.read())


def _text(value: str, payload: str) -> str:
    # the stand-in shows binary BYTES elements as latin-1 strings of their bytes; JSON strings as they are
    return value.encode("latin-1").decode("utf-8") if payload == "binary" else value


@pytest.mark.parametrize("payload", ["binary", "json"])
def test_the_server_receives_exactly_the_files_values(standin, generate, tmp_path, payload):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"data": ENTRIES, "validation_data": [{"logits": LOGITS}] * len(ENTRIES)}))
    srv = standin("--record-inputs", "--model-inputs", MODEL_INPUTS)
    res = generate("--target", srv.url, *RUN, "--payload", payload, "--input-data", str(data))
    assert res["completed"] > 10 and res["errors"] == {}  # every answer judged against validation_data: all match
    got = _received(srv.url)
    assert len(got) >= res["completed"]
    for rec in got:
        want = ENTRIES[int(rec["id"]) % len(ENTRIES)]  # sequential order: request n carries entry n mod 3
        ids, text = rec["inputs"]["ids"], rec["inputs"]["text"]
        want_ids = want["ids"]["content"] if isinstance(want["ids"], dict) else want["ids"]
        assert (ids["datatype"], ids["shape"], ids["data"]) == ("INT64", [1, 3], want_ids)
        assert (text["datatype"], text["shape"]) == ("BYTES", [1, 1])
        assert [_text(s, payload) for s in text["data"]] == want["text"]


@pytest.mark.parametrize("payload", ["binary", "json"])
def test_a_dynamic_dimension_takes_its_shape_from_the_flag(standin, generate, payload):
    srv = standin("--record-inputs", "--model-inputs", MODEL_INPUTS)
    res = generate("--target", srv.url, *RUN, "--payload", payload, "--batch", "2", "--shape", "ids:5")
    assert res["completed"] > 10 and res["errors"] == {}
    got = _received(srv.url)
    assert {tuple(r["inputs"]["ids"]["shape"]) for r in got} == {(2, 5)}  # --shape excludes the batch dimension
    texts = [s for r in got for s in r["inputs"]["text"]["data"]]
    assert all(len(s) == 128 for s in texts) and len(set(texts)) > 1  # seeded random strings
    first = got[:500]
    assert len({tuple(r["inputs"]["ids"]["data"]) for r in first}) == len(first)  # no two requests alike


def test_a_validation_mismatch_is_counted_as_invalid_output(standin, generate, tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"data": ENTRIES[:1], "validation_data": [{"logits": LOGITS}]}))
    srv = standin("--model-inputs", MODEL_INPUTS, "--validation-mismatch")
    res = generate("--target", srv.url, *RUN, "--payload", "json", "--input-data", str(data))
    assert set(res["errors"]) == {"invalid_output"}
    assert res["errors"]["invalid_output"] == res["failed"] > 10 and res["completed"] == 0
