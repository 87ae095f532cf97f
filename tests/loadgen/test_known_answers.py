"""Known-answer tests: the generator (a subprocess) against stand-in servers (subprocesses) whose behaviour
is known, so the reported numbers can be checked against the truth.

Note on (a): on this VM an idle CPU takes ~0.2-0.5 ms to wake (haltpoll cpuidle), and the client is idle
while it waits for each answer; every client pays that, so it is part of the observed latency. A 100 ms service
time keeps the test meaningful at 2% (2 ms) with that overhead; the decomposition shows it as network_http.
"""
from __future__ import annotations

import pytest

SERVICE_MS = 100.0


def _cpu_pressure() -> float:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), 0 if unknown."""
    try:
        first = open("/proc/pressure/cpu").read().split("\n")[0]
        return float(first.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0


def _summary(r: dict) -> str:
    keys = ("completed", "failed", "achieved_rate_rps", "latency_ms", "errors", "delayed_fraction", "dropped",
            "schedule_lag_ms", "generator_cpu_percent", "valid", "invalid_reasons", "warnings")
    return str({k: r.get(k) for k in keys})


@pytest.mark.parametrize("mode_args", [
    ("--users", "1"),
    ("--rate", "30", "--arrival", "poisson"),
], ids=["closed", "open"])
def test_a_fixed_service_time_p50_within_2pct(standin, generate, mode_args):
    s = standin("--service-ms", str(SERVICE_MS), "--precise")
    r = generate("--target", s.url, "--model", "m", *mode_args, "--duration", "3", "--warmup", "1")
    p50 = r["latency_ms"]["p50"]
    assert abs(p50 - SERVICE_MS) / SERVICE_MS <= 0.02, _summary(r)
    assert r["latency_ms"]["min"] >= SERVICE_MS * 0.995, _summary(r)
    assert r["server_timing_ms"]["compute"]["p50"] == pytest.approx(SERVICE_MS, rel=0.01)
    assert r["batch_size"] == {"1": r["completed"]}
    assert r["failed"] == 0


def test_b_stall_visible_in_open_loop_hidden_in_closed_loop(standin, generate):
    # Open loop, 200 req/s constant, 5 s window [1 s, 6 s); server stalls during [3 s, 4 s) after its first
    # request. Requests scheduled in the 1 s stall (20% of the window) wait until it ends: their latency is
    # uniform over (s, 1 s + s], s = 5 ms. So the top q of all requests (q < 20%) sit at 1 s + s - 5 s * q:
    # p99 = 1.005 - 0.05 = 0.955 s, p95 = 0.755 s, p90 = 0.505 s.
    s = standin("--service-ms", "5", "--stall-after-s", "3", "--stall-s", "1")
    r = generate("--target", s.url, "--model", "m", "--rate", "200", "--arrival", "constant",
                 "--duration", "5", "--warmup", "1")
    lat = r["latency_ms"]
    assert r["completed"] == pytest.approx(1000, abs=5), _summary(r)
    assert lat["p99"] == pytest.approx(955, rel=0.05), _summary(r)
    assert lat["p95"] == pytest.approx(755, rel=0.05), _summary(r)
    assert lat["p90"] == pytest.approx(505, rel=0.08), _summary(r)
    assert lat["p50"] < 15, _summary(r)
    assert not any("coordinated omission" in n for n in r["notes"])

    # Closed loop over the same stall: each of the 2 users waits once; p99 does not see the stall.
    s2 = standin("--service-ms", "5", "--stall-after-s", "3", "--stall-s", "1")
    c = generate("--target", s2.url, "--model", "m", "--users", "2", "--duration", "5", "--warmup", "1")
    assert c["latency_ms"]["p99"] < 20, _summary(c)
    assert c["latency_ms"]["max"] > 900, _summary(c)
    assert any("coordinated omission" in n for n in c["notes"]), c["notes"]


def test_c_open_loop_achieves_target_rate(standin, generate):
    # The counts are exact every time. Timing (lag, validity) needs the CPU the generator asked for: on a
    # shared 2-core machine another process can take it, and then the run is (rightly) INVALID for being
    # late — so the timing criteria get up to 3 attempts; a late run must still say so.
    s = standin("--service-ms", "1")
    for attempt in range(3):
        r = generate("--target", s.url, "--model", "m", "--rate", "300", "--arrival", "constant",
                     "--duration", "5", "--warmup", "1")
        assert r["achieved_rate_rps"] == pytest.approx(300, rel=0.01), _summary(r)
        assert r["completed"] == 1500, _summary(r)
        rows = [t for t in r["timeseries"] if t["phase"] == "measure"]
        assert len(rows) == 5 and all(t["offered"] == 300 for t in rows), rows
        if r["delayed_fraction"] > 0.01:
            assert not r["valid"] and any("fell behind" in x for x in r["invalid_reasons"]), _summary(r)
            continue
        break
    if r["delayed_fraction"] > 0.01 and _cpu_pressure() > 20:
        pytest.skip(f"CPU contended by other processes (PSI some avg10 = {_cpu_pressure():.0f}%): three runs were "
                    f"late and said so (INVALID); the on-time criterion needs an uncontended core")
    assert r["delayed_fraction"] <= 0.01, _summary(r)
    assert r["schedule_lag_ms"]["p50"] <= 0.5, _summary(r)
    assert r["valid"], _summary(r)


def test_d_generator_past_its_capacity_is_invalid(standin, generate):
    s = standin("--service-ms", "0")
    # 15,000 req/s from one process is beyond this generator (~5-6k req/s per core): it falls behind its
    # schedule and burns its core; the run must say INVALID and why.
    r = generate("--target", s.url, "--model", "m", "--rate", "15000", "--arrival", "constant",
                 "--duration", "2", "--warmup", "0.5", "--max-in-flight", "300", "--timeout-ms", "5000")
    assert not r["valid"], _summary(r)
    reasons = " | ".join(r["invalid_reasons"])
    assert "fell behind its schedule" in reasons, reasons
    assert r["delayed_fraction"] > 0.5
    if r["generator_cpu_percent"]["max"] >= 90:
        assert "generator CPU reached" in reasons, reasons


def test_e_two_workers_merge(standin, generate):
    s = standin("--service-ms", "2")
    r = generate("--target", s.url, "--model", "m", "--rate", "200", "--arrival", "constant",
                 "--duration", "3", "--warmup", "1", "--workers", "2", timeout_s=120)
    # stream k of 2 follows instants (k + 2i)/200 s: together exactly 600 in the 3 s window
    assert r["completed"] == 600, _summary(r)
    assert r["failed"] == 0 and r["dropped"] == 0
    assert 2.0 <= r["latency_ms"]["p50"] <= 10.0, _summary(r)
    assert r["generator_cpu_percent"]["max"] is not None
    assert sum(t["offered"] for t in r["timeseries"] if t["phase"] == "measure") == 600
    assert any("worker processes" in n for n in r["notes"])


def test_f_errors_never_enter_success_latency(standin, generate):
    # every 3rd request is answered 500 at once; the others take 30 ms
    s = standin("--service-ms", "30", "--precise", "--error-every", "3", "--error-status", "500")
    r = generate("--target", s.url, "--model", "m", "--users", "2", "--duration", "3", "--warmup", "1")
    assert set(r["errors"]) == {"500"} and r["errors"]["500"] == r["failed"], _summary(r)
    assert r["failed"] == pytest.approx(r["completed"] / 2, rel=0.1), _summary(r)
    assert r["latency_ms"]["min"] >= 29.8, _summary(r)
    assert 30 <= r["latency_ms"]["p50"] <= 31.5, _summary(r)
    assert any("failed" in w for w in r["warnings"])


def test_image_payload_batch(standin, generate):
    s = standin("--service-ms", "1", "--bytes-input")
    r = generate("--target", s.url, "--model", "m", "--users", "1", "--payload", "image", "--batch", "4",
                 "--duration", "2", "--warmup", "0.5")
    assert r["completed"] > 50 and r["failed"] == 0, _summary(r)
    assert r["batch_size"] == {"4": r["completed"]}
    assert r["items_per_s"] == pytest.approx(4 * r["achieved_rate_rps"])
