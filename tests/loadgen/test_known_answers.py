"""Known-answer tests: the generator (a subprocess) against stand-in servers (subprocesses) whose behaviour
is known, so the reported numbers can be checked against the truth.

Note on (a), (f), (g): machines differ (AMD EPYC and Intel Xeon VMs so far). An idle CPU takes ~0.2-0.5 ms
to wake on one and several ms on another, and a client is idle while it waits for each answer: every client
pays that, so it is part of the observed latency (the decomposition shows it as network_http). So these tests
do not judge the generator against absolute figures tuned on one CPU, but against a plain blocking client
(tests/loadgen/reference_client.py) measured in the same test against the same stand-in.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from loadgen.results import validity
from tests.loadgen import queueing, reference_client

SERVICE_MS = 100.0


def _p50_bound(ref: reference_client.Reference, service_ms: float) -> float:
    """Highest generator p50 consistent with a plain client's p50 `ref` on the same stand-in.

    Both clients pay the same unavoidable costs (loopback, HTTP, waking an idle CPU when the answer arrives);
    the generator may add a little of its own (gevent/libev instead of a blocking recv; in open loop, its lag
    behind the scheduled instant, from which latency runs). Allowed: ref p50 + max(1% of service, 3 x the
    reference's p50 - p10 spread).
    - Sampling: each p50 here rests on ~25-90 round trips; its standard error is ~1.25 sigma / sqrt(n), so
      the difference of the two is ~0.35 sigma, while p50 - p10 is ~1.3 sigma for a normal scatter. 3 x spread
      (~4 sigma, ~11 standard errors) is generous on purpose: VM round trips are skewed and multi-modal (the
      CPU wakes from different idle states) and the two clients do not idle in exactly the same pattern.
    - 1% of the service time is the extra the generator itself may cost (the old absolute criterion was 2%);
      it is the floor when the machine is so quiet that the spread is a few microseconds.
    """
    return ref.p50 + max(0.01 * service_ms, 3 * ref.spread)


def _stats(url: str, samples: bool = False) -> dict:
    with urllib.request.urlopen(url + ("/stats?samples=1" if samples else "/stats"), timeout=10) as r:
        return json.loads(r.read())


def _reset_stats(url: str) -> None:
    req = urllib.request.Request(url + "/stats/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def _cpu_pressure() -> float:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), 0 if unknown."""
    try:
        first = open("/proc/pressure/cpu").read().split("\n")[0]
        return float(first.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0


def _summary(r: dict) -> str:
    keys = (
        "completed",
        "failed",
        "achieved_rate_rps",
        "latency_ms",
        "errors",
        "delayed_fraction",
        "dropped",
        "schedule_lag_ms",
        "generator_cpu_percent",
        "valid",
        "invalid_reasons",
        "warnings",
    )
    return str({k: r.get(k) for k in keys})


@pytest.mark.parametrize(
    "mode_args",
    [
        ("--users", "1"),
        ("--rate", "30", "--arrival", "poisson"),
    ],
    ids=["closed", "open"],
)
def test_a_fixed_service_time_p50_matches_a_plain_client(standin, generate, mode_args):
    # Truth: every answer takes SERVICE_MS at the server, plus what any client pays on this machine, which a
    # plain sequential client measures first (25 round trips, ~2.5 s). In open loop (30 req/s Poisson, ~3 in
    # flight) the per-connection stand-in serves concurrent requests independently, so each request still
    # sees one service time; the reference stays one sequential client: it measures the cost of one round
    # trip, which is what the generator's p50 should show on top of the service time.
    s = standin("--service-ms", str(SERVICE_MS), "--precise")
    ref = reference_client.measure(s.url, "m", n=25)
    r = generate("--target", s.url, "--model", "m", *mode_args, "--duration", "3", "--warmup", "1")
    p50 = r["latency_ms"]["p50"]
    bound = _p50_bound(ref, SERVICE_MS)
    assert ref.p50 >= SERVICE_MS, ref.describe()
    print(f"generator p50 {p50} ms, allowed [{SERVICE_MS}, {bound:.3f}]; {ref.describe()}")
    assert SERVICE_MS <= p50 <= bound, f"p50 {p50} vs [{SERVICE_MS}, {bound:.3f}]; {ref.describe()}; {_summary(r)}"
    assert r["latency_ms"]["min"] >= SERVICE_MS * 0.995, _summary(r)
    assert r["server_timing_ms"]["compute"]["p50"] == pytest.approx(SERVICE_MS, rel=0.01)
    assert r["batch_size"] == {"1": r["completed"]}
    assert r["failed"] == 0


def test_b_stall_visible_in_open_loop_hidden_in_closed_loop(standin, generate):
    # Open loop, 200 req/s constant, 5 s window [1 s, 6 s); server stalls during [3 s, 4 s) after its first
    # request. Requests scheduled in the 1 s stall (20% of the window) wait until it ends: their latency is
    # uniform over (s, 1 s + s], s = 5 ms. So the top q of all requests (q < 20%) sit at 1 s + s - 5 s * q:
    # p99 = 1.005 - 0.05 = 0.955 s, p95 = 0.755 s, p90 = 0.505 s.
    # Reference for "unaffected" latency: a plain sequential client on an identical stand-in that never stalls.
    ref = reference_client.measure(standin("--service-ms", "5").url, "m", n=25)
    s = standin("--service-ms", "5", "--stall-after-s", "3", "--stall-s", "1")
    r = generate(
        "--target", s.url, "--model", "m", "--rate", "200", "--arrival", "constant", "--duration", "5", "--warmup", "1"
    )
    lat = r["latency_ms"]
    assert r["completed"] == pytest.approx(1000, abs=5), _summary(r)
    assert lat["p99"] == pytest.approx(955, rel=0.05), _summary(r)
    assert lat["p95"] == pytest.approx(755, rel=0.05), _summary(r)
    assert lat["p90"] == pytest.approx(505, rel=0.08), _summary(r)
    assert lat["p50"] < 3 * ref.p50, (_summary(r), ref.describe())  # 80% of requests never meet the stall
    assert not any("coordinated omission" in n for n in r["notes"])

    # Closed loop over the same stall: each of the 2 users waits once; p99 does not see the stall.
    s2 = standin("--service-ms", "5", "--stall-after-s", "3", "--stall-s", "1")
    c = generate("--target", s2.url, "--model", "m", "--users", "2", "--duration", "5", "--warmup", "1")
    assert c["latency_ms"]["p99"] < 4 * ref.p50, (_summary(c), ref.describe())  # 2 of ~1000 requests meet it
    assert c["latency_ms"]["max"] > 900, _summary(c)
    assert any("coordinated omission" in n for n in c["notes"]), c["notes"]


def test_c_open_loop_achieves_target_rate(standin, generate):
    # The counts are exact every time. Timing needs the CPU the generator asked for: on a shared 2-core machine
    # another process can take it, so the timing criteria get up to 3 attempts; lateness must always be reported
    # consistently (a warning, or INVALID when it could change the answer), never hidden.
    s = standin("--service-ms", "1")
    interval_ms = 1000.0 / 300
    for _attempt in range(3):
        r = generate(
            "--target",
            s.url,
            "--model",
            "m",
            "--rate",
            "300",
            "--arrival",
            "constant",
            "--duration",
            "5",
            "--warmup",
            "1",
        )
        assert r["achieved_rate_rps"] == pytest.approx(300, rel=0.01), _summary(r)
        assert r["completed"] == 1500, _summary(r)
        rows = [t for t in r["timeseries"] if t["phase"] == "measure"]
        assert len(rows) == 5 and all(t["offered"] == 300 for t in rows), rows
        codes = [x["code"] for x in r["invalid_reasons"]] + [x["code"] for x in r["warnings"]]
        if r["delayed_fraction"] > 0.01:
            assert "late_sends" in codes or "lag_material" in codes, _summary(r)
        if r["valid"]:
            break
        assert set(codes) & validity.GENERATOR_CODES, _summary(r)  # INVALID only for the generator's reasons
    if not r["valid"] and _cpu_pressure() > 20:
        pytest.skip(
            f"CPU contended by other processes (PSI some avg10 = {_cpu_pressure():.0f}%): three runs were "
            f"late and said so (INVALID); the on-time criterion needs an uncontended core"
        )
    assert r["valid"], _summary(r)
    # relative to the schedule itself: a dispatcher that batched its sends would lag half an interval at the median
    assert r["schedule_lag_ms"]["p50"] < interval_ms / 4, _summary(r)


def test_d_generator_past_its_capacity_is_invalid(standin, generate):
    s = standin("--service-ms", "0")
    # 15,000 req/s from one process is beyond this generator (~5-6k req/s per core): it falls behind its
    # schedule and burns its core; the run must say INVALID and why, with the generator's codes.
    r = generate(
        "--target",
        s.url,
        "--model",
        "m",
        "--rate",
        "15000",
        "--arrival",
        "constant",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--max-in-flight",
        "300",
        "--timeout-ms",
        "5000",
    )
    assert not r["valid"], _summary(r)
    codes = [x["code"] for x in r["invalid_reasons"]]
    assert set(codes) & {"lag_material", "schedule_short"}, codes
    assert r["delayed_fraction"] > 0.5
    if r["generator_cpu_percent"]["max"] >= 90:
        assert "generator_cpu" in codes, codes


def test_e_two_workers_merge(standin, generate):
    s = standin("--service-ms", "2")
    r = generate(
        "--target",
        s.url,
        "--model",
        "m",
        "--rate",
        "200",
        "--arrival",
        "constant",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--workers",
        "2",
        timeout_s=120,
    )
    # stream k of 2 follows instants (k + 2i)/200 s: together exactly 600 in the 3 s window
    assert r["completed"] == 600, _summary(r)
    assert r["failed"] == 0 and r["dropped"] == 0
    assert 2.0 <= r["latency_ms"]["p50"] <= 10.0, _summary(r)
    assert r["generator_cpu_percent"]["max"] is not None
    assert sum(t["offered"] for t in r["timeseries"] if t["phase"] == "measure") == 600
    assert any("worker processes" in n for n in r["notes"])


def test_f_errors_never_enter_success_latency(standin, generate):
    # every 3rd request is answered 500 at once; the others take 30 ms. Were failures mixed into the latency,
    # a third of the samples would be ~0 ms and the p50 would fall far below 30 ms (and the min to ~0).
    # The upper bound comes from plain clients on the same stand-in (they get the injected 500s too and
    # leave them out), not from an absolute figure: see _p50_bound. Two of them at once, like the generator's
    # two users: two users fall into step (same service time, no think time), their answers arrive together
    # and one process handles them one after the other, which costs the second a few tenths of a ms that
    # a single sequential client never pays.
    s = standin("--service-ms", "30", "--precise", "--error-every", "3", "--error-status", "500")
    ref = reference_client.measure(s.url, "m", n=40, concurrency=2)
    assert set(ref.errors) == {"500"}, ref.describe()
    r = generate("--target", s.url, "--model", "m", "--users", "2", "--duration", "3", "--warmup", "1")
    assert set(r["errors"]) == {"500"} and r["errors"]["500"] == r["failed"], _summary(r)
    assert r["failed"] == pytest.approx(r["completed"] / 2, rel=0.1), _summary(r)
    assert r["latency_ms"]["min"] >= 29.8, _summary(r)
    bound = _p50_bound(ref, 30.0)
    print(f"generator p50 {r['latency_ms']['p50']} ms, allowed [30, {bound:.3f}]; {ref.describe()}")
    assert 30 <= r["latency_ms"]["p50"] <= bound, f"p50 vs [30, {bound:.3f}]; {ref.describe()}; {_summary(r)}"
    # a warning says requests failed (a string, or a {code, message} reason)
    assert any("failed" in (w if isinstance(w, str) else json.dumps(w)) for w in r["warnings"]), r["warnings"]


def test_image_payload_batch(standin, generate):
    s = standin("--service-ms", "1", "--bytes-input")
    r = generate(
        "--target",
        s.url,
        "--model",
        "m",
        "--users",
        "1",
        "--payload",
        "image",
        "--batch",
        "4",
        "--duration",
        "2",
        "--warmup",
        "0.5",
    )
    assert r["completed"] > 50 and r["failed"] == 0, _summary(r)
    assert r["batch_size"] == {"4": r["completed"]}
    assert r["items_per_s"] == pytest.approx(4 * r["achieved_rate_rps"])


def test_g_single_server_is_md1(standin, generate):
    # One FIFO server for every connection, deterministic 10 ms service, Poisson arrivals at 50 req/s: an
    # M/D/1 queue at load 0.5, whose sojourn time T is known exactly (tests/loadgen/queueing.py). An open-loop
    # generator must report T plus what any client pays per round trip; one that waited for answers before
    # sending (coordinated omission) would report ~11 ms at p90 instead of ~25 ms.
    #
    # T from what this machine realised: the stand-in reports each request's service time (GET /stats), and
    # the queue is simulated with those service times (M/G/1; nearly M/D/1) over 10,000 windows as long as the
    # run. That gives the spread of a p50/p90 measured in one run of this length, the correlation between
    # successive sojourns included; the band is its 0.1% and 99.9% quantiles (each side missed by chance once
    # in 1000 runs).
    # Overhead O: a plain client, paced with the mean gap between arrivals (server and client idle before each
    # request, as at this load), gives per request O = its latency - the server's own sojourn for it; its
    # latency runs from the instant it meant to send, so its late wake-ups count, like the generator's lag.
    # Bounds on the generator's latency L = T + O:
    # - low: O >= 0, so a q-quantile of L is at least that of T: the band's low end.
    # - high: P(T + O > a + b) <= P(T > a) + P(O > b) whatever the dependence between T and O (requests that
    #   queue may see a different O), so the q-quantile of L <= (q + e)-quantile of T + (1 - e)-quantile of O,
    #   for every e; the smallest over a few e, with the band's high end for T, plus 3x the reference's
    #   p50 - p10 spread of O (the generator's O is not the reference's: sampled at another time, another
    #   client), and +0.1% for the histogram's 3 significant digits.
    # The stand-in's own sojourns (server side, from arrival to answer) must fall in the band as well: that
    # checks the stand-in is the M/D/1 queue the test assumes, apart from any client.
    rate, duration, warmup, service_ms = 50.0, 5.0, 1.0, 10.0
    s = standin("--single-server", "--service-ms", str(service_ms), "--precise")

    n_ref = 40
    ref = reference_client.measure(s.url, "m", n=n_ref, pace_s=1 / rate)
    ref_stats = _stats(s.url, samples=True)
    assert not ref.errors and ref_stats["count"] >= n_ref, (ref.describe(), ref_stats["count"])
    # one sequential client: its i-th recorded request is the i-th of the last n_ref the server served
    server_ms = np.add(ref_stats["wait_samples_ms"], ref_stats["service_samples_ms"])[-n_ref:]
    overhead = np.asarray(ref.latency_ms) - server_ms
    assert overhead.min() > 0, (overhead.tolist(), ref.describe())

    _reset_stats(s.url)
    r = generate(
        "--target",
        s.url,
        "--model",
        "m",
        "--rate",
        str(rate),
        "--arrival",
        "poisson",
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    )
    st = _stats(s.url, samples=True)
    assert r["failed"] == 0 and r["dropped"] == 0, _summary(r)
    assert st["count"] >= r["completed"], (st["count"], _summary(r))
    service_s = np.asarray(st["service_samples_ms"]) / 1e3

    eps = (0.05, 0.1, 0.2, 0.3, 0.4)
    qs = sorted({0.5, 0.9} | {round(q + e, 6) for q in (0.5, 0.9) for e in eps if q + e < 1})
    band = queueing.window_quantile_band(rate, service_s, duration, tuple(qs), windows=10_000, tail=1e-3, seed=11)
    server_band = queueing.window_quantile_band(
        rate, service_s, duration + warmup, (0.5, 0.9), windows=10_000, tail=1e-3, seed=12
    )
    exact = {q: queueing.md1_sojourn_quantile(rate, float(service_s.mean()), q) for q in (0.5, 0.9)}
    o_q = {q: reference_client.quantile(overhead, q) for q in (0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)}
    slack = 3 * (o_q[0.5] - o_q[0.1])
    lat = r["latency_ms"]
    info = (
        f"service realised {st['service_ms']}; overhead O p10/p50/p90/p95 {o_q[0.1]:.3f}/{o_q[0.5]:.3f}/"
        f"{o_q[0.9]:.3f}/{o_q[0.95]:.3f} ms; M/D/1 truth p50 {exact[0.5] * 1e3:.3f} p90 {exact[0.9] * 1e3:.3f} ms; "
        f"T band { ({q: (round(lo * 1e3, 3), round(hi * 1e3, 3)) for q, (lo, hi) in band.items()}) }; "
        f"server sojourn {st['sojourn_ms']}; {ref.describe()}; {_summary(r)}"
    )
    for q, key in ((0.5, "p50"), (0.9, "p90")):
        lo, hi = (x * 1e3 for x in band[q])
        assert lo <= exact[q] * 1e3 <= hi, info  # the simulated band is about the exact M/D/1 truth
        s_lo, s_hi = (x * 1e3 for x in server_band[q])
        assert s_lo <= st["sojourn_ms"][key] <= s_hi, f"server-side {key}: {s_lo:.3f}..{s_hi:.3f}; {info}"
        upper = min(band[round(q + e, 6)][1] * 1e3 + o_q[round(1 - e, 6)] for e in eps if q + e < 1)
        upper = (upper + slack) * 1.001
        assert lo <= lat[key] <= upper, f"{key} {lat[key]} vs [{lo:.3f}, {upper:.3f}]; {info}"
    print(info)
