"""The configuration advisor's search as pure functions on simulated response surfaces (no server, no sleeps)."""

from __future__ import annotations

import json
import math
import shutil
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from loadgen.search.tune import (
    Constraints,
    Measurement,
    Objective,
    TuneConfig,
    TuneSpace,
    grid_search,
    pool,
    quick_search,
    score,
)
from loadgen.search.tune_doc import (
    Checkpoint,
    CheckpointError,
    pareto_frontier,
    render_config_toml,
    tune_document,
    tune_sizing,
)
from server.repository import load_model_config

REPO = Path(__file__).resolve().parents[2]
SPACE = TuneSpace(batch_sizes=(1, 2, 4, 8, 16, 32, 64), instances=(1, 2, 4), delays_ms=(0, 1, 2, 5), cpus=4)


class Surface:
    """A simulated server: throughput grows with batch size (diminishing returns, or a hard plateau) and
    instances; a lone request's p99 falls with threads and rises with the batching delay; RSS grows with
    instances. `noise` multiplies every figure by a seeded lognormal factor. Counts every measurement."""

    def __init__(self, kind: str = "smooth", noise: float = 0.0, seed: int = 0, slo_ms: float | None = None):
        self.kind, self.noise, self.slo_ms = kind, noise, slo_ms
        self.rng = np.random.default_rng(seed)
        self.calls: Counter[str] = Counter()

    def truth(self, c: TuneConfig) -> Measurement:
        b, n, t, d = c.max_batch_size, c.instances, c.intra_op_threads, c.max_queue_delay_ms
        if self.kind == "plateau":
            eff = min(b, 8) / 8
        else:
            eff = 1 - math.exp(-b / 10)
        thr = 300 * n**0.85 * (0.3 + eff) * (1 + 0.04 * min(d, 2)) * (1.1 if c.preferred_batch_sizes else 1)
        p99 = 4.0 / t**0.6 + 0.9 * d + 0.02 * b
        peak = None if self.slo_ms is not None and p99 * 3 > self.slo_ms else 0.8 * thr
        return Measurement(
            peak, "found" if peak else "never_passed", thr, p99, 100 + 60 * n + 0.5 * b, p99_at_peak_ms=p99 * 3
        )

    def __call__(self, c: TuneConfig) -> Measurement:
        self.calls[c.name] += 1
        m = self.truth(c)
        if not self.noise:
            return m
        f = lambda v: None if v is None else v * float(self.rng.lognormal(0, self.noise))  # noqa: E731
        return Measurement(f(m.peak_rps), m.peak_status, f(m.max_throughput_rps), f(m.p99_low_load_ms), m.rss_mb)


def true_score(surface: Surface, cfg: TuneConfig, obj: Objective, cons: Constraints) -> float:
    s = score(surface.truth(cfg), obj, cons)
    assert s is not None
    return s


def test_config_names_are_stable_and_configs_hashable():
    c = TuneConfig(8, 2, 1, 2.0)
    assert c.name == "b8-i2x1-d2"
    assert TuneConfig(8, 2, 1, 0.5, (4, 8)).name == "b8-i2x1-d0.5-p4_8"
    assert {c, TuneConfig(8, 2, 1, 2.0)} == {c}
    assert TuneConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.overrides() == {
        "max_batch_size": 8,
        "batching": {"max_queue_delay_ms": 2.0, "preferred_batch_sizes": []},
        "instances": {"count": 2, "intra_op_threads": 1, "provider": "cpu"},
    }


def test_space_splits_threads_to_fit_the_cpus_and_dedupes_the_grid():
    assert [SPACE.threads_for(n) for n in (1, 2, 4)] == [4, 2, 1]
    assert all(c.instances * c.intra_op_threads <= 4 for c in SPACE.grid())
    assert len(SPACE.grid()) == 7 * 3 * 4
    assert SPACE.start() == TuneConfig(8, 1, 4, 0.0)
    with pytest.raises(ValueError, match="each instance needs at least one"):
        TuneSpace(instances=(1, 4), cpus=2)
    # preferred sizes above a config's max_batch_size are dropped, and the resulting duplicates merged
    sp = TuneSpace(batch_sizes=(2, 8), instances=(1,), delays_ms=(0,), preferred=((), (4,), (4, 8)), cpus=2)
    assert sorted(c.name for c in sp.grid()) == ["b2-i1x2-d0", "b8-i1x2-d0", "b8-i1x2-d0-p4", "b8-i1x2-d0-p4_8"]
    assert sp.dimensions() == ["max_batch_size", "preferred_batch_sizes"]


def test_objective_weights_are_normalised_and_named():
    o = Objective(3, 1)
    assert (o.throughput, o.latency) == (0.75, 0.25)
    assert (Objective.named("latency").throughput, Objective.named("latency").latency) == (0.0, 1.0)
    with pytest.raises(ValueError, match="throughput \\| latency \\| balanced"):
        Objective.named("speed")
    m = Measurement(None, None, 400.0, 4.0)
    assert score(m, Objective.named("balanced"), Constraints()) == pytest.approx(math.sqrt(400) / math.sqrt(4))
    assert score(m, Objective.named("throughput"), Constraints(slo_p99_ms=10)) is None  # no peak under the SLO


@pytest.mark.parametrize(
    "kind,noise,seed",
    [("smooth", 0.0, 0), ("plateau", 0.0, 0), ("smooth", 0.04, 1), ("plateau", 0.04, 2), ("smooth", 0.04, 3)],
)
@pytest.mark.parametrize("objective", ["throughput", "balanced", "latency"])
def test_quick_measures_fewer_than_grid_and_lands_within_10_percent(kind, noise, seed, objective):
    obj, cons = Objective.named(objective), Constraints()
    g_surface, q_surface = Surface(kind, noise, seed), Surface(kind, noise, seed + 100)
    g = grid_search(SPACE, g_surface, objective=obj, constraints=cons)
    q = quick_search(SPACE, q_surface, objective=obj, constraints=cons)
    assert q.measure_calls < g.measure_calls / 2
    assert g.measure_calls == len(SPACE.grid()) + 3
    assert q.recommended is not None and g.recommended is not None
    best = max(true_score(g_surface, c, obj, cons) for c in SPACE.grid())
    assert true_score(q_surface, q.recommended, obj, cons) >= 0.9 * best
    assert true_score(g_surface, g.recommended, obj, cons) >= 0.9 * best
    # the top 3 were measured twice and ranked on pooled figures
    assert len(q.by_name(q.recommended.name).measurements) >= 2
    assert len(g.by_name(g.recommended.name).measurements) >= 2
    assert sum(len(e.measurements) for e in q.evaluated) == q.measure_calls


def test_plateau_stops_a_dimension_after_two_slow_steps():
    s = Surface("plateau")
    r = quick_search(SPACE, s, objective=Objective.named("throughput"))
    b_steps = [st for st in r.steps if st.dimension == "max_batch_size"]
    # from b8 (the plateau's edge): b16 and b32 gain nothing, so b64 is never tried; b4 is (the way down)
    names = [st.config for st in b_steps]
    assert "b16-i1x4-d0" in names and "b32-i1x4-d0" in names and "b64-i1x4-d0" not in names
    assert not any(st.accepted for st in b_steps)


def test_objective_changes_the_choice():
    s = Surface("smooth")
    thr = quick_search(SPACE, s, objective=Objective.named("throughput")).recommended
    lat = quick_search(SPACE, s, objective=Objective.named("latency")).recommended
    assert thr is not None and lat is not None and thr != lat
    assert thr.instances == 4 and thr.max_batch_size >= 32  # throughput: many instances, big batches
    assert lat.instances == 1 and lat.intra_op_threads == 4 and lat.max_queue_delay_ms == 0  # latency: one fat instance


def test_constraints_exclude_configurations():
    s = Surface("smooth")
    free = grid_search(SPACE, s, objective=Objective.named("throughput"))
    assert free.recommended is not None and free.recommended.instances == 4
    capped = grid_search(SPACE, s, objective=Objective.named("throughput"), constraints=Constraints(max_memory_mb=260))
    assert capped.recommended is not None and capped.recommended.instances == 2
    assert all(("RSS" in " ".join(e.violations)) == (e.config.instances == 4) for e in capped.evaluated)
    assert all(not capped.by_name(n).feasible for n in capped.ranking[-len(SPACE.grid()) // 3 :])
    # SLO: configurations whose p99 at load breaks it have no peak; nothing passing -> no recommendation
    slo = Surface("smooth", slo_ms=9.0)
    r = grid_search(SPACE, slo, objective=Objective.named("throughput"), constraints=Constraints(slo_p99_ms=9.0))
    assert r.recommended is not None and slo.truth(r.recommended).peak_rps is not None
    assert any("no rate met p99 <= 9 ms" in v for e in r.evaluated for v in e.violations)
    none = quick_search(SPACE, Surface("smooth", slo_ms=1.0), constraints=Constraints(slo_p99_ms=1.0))
    assert none.recommended is None
    high = grid_search(SPACE, s, constraints=Constraints(min_throughput_rps=10_000))
    assert high.recommended is None and all("< the minimum" in e.violations[0] for e in high.evaluated)


def test_pool_takes_medians_and_counts_a_missing_peak_as_zero():
    ms = [
        Measurement(100.0, "found", 200.0, 5.0, 300.0),
        Measurement(None, "never_passed", 220.0, 7.0, 310.0),
        Measurement(120.0, "found", 240.0, 6.0, None),
    ]
    p = pool(ms)
    assert (p.peak_rps, p.peak_status, p.max_throughput_rps, p.p99_low_load_ms, p.rss_mb) == (
        100.0,
        "found",
        220.0,
        6.0,
        305.0,
    )
    assert pool(ms[1:2] * 2).peak_rps is None


def test_checkpoint_resume_measures_nothing_twice(tmp_path):
    meta = {"model": "m", "slo_p99_ms": None}
    full = Surface("smooth", 0.04, seed=5)
    expected = quick_search(SPACE, full)

    class Interrupt(Exception):
        pass

    real = Surface("smooth", 0.04, seed=5)  # the same noise stream: measurements are taken in the same order
    taken: list[str] = []

    def flaky(limit: int):
        def measure(c: TuneConfig) -> Measurement:
            if len(taken) >= limit:
                raise Interrupt
            taken.append(c.name)
            return real(c)

        return measure

    ck = Checkpoint(tmp_path / "tune.ckpt.json", meta)
    with pytest.raises(Interrupt):
        quick_search(SPACE, flaky(7), recorded=ck.load(), on_new=ck.record)
    assert len(json.loads((tmp_path / "tune.ckpt.json").read_text())["measurements"]) == 7
    ck2 = Checkpoint(tmp_path / "tune.ckpt.json", meta)
    resumed = quick_search(SPACE, flaky(10_000), recorded=ck2.load(), on_new=ck2.record)
    assert resumed.reused == 7 and resumed.measure_calls == expected.measure_calls - 7
    assert len(taken) == expected.measure_calls  # every (config, repeat) measured exactly once overall
    per_cfg = Counter(taken)
    assert per_cfg == Counter({e.config.name: len(e.measurements) for e in expected.evaluated})
    assert resumed.ranking == expected.ranking and resumed.recommended == expected.recommended
    with pytest.raises(CheckpointError, match="another search"):
        Checkpoint(tmp_path / "tune.ckpt.json", {**meta, "slo_p99_ms": 50}).load()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CheckpointError, match="unreadable"):
        Checkpoint(tmp_path / "bad.json", meta).load()


def test_pareto_frontier_keeps_only_undominated_configs():
    table = {
        "b1-i1x4-d0": (100.0, 2.0),
        "b8-i1x4-d0": (300.0, 2.5),
        "b8-i2x2-d0": (500.0, 3.0),
        "b16-i2x2-d0": (450.0, 3.5),
        "b32-i4x1-d0": (600.0, 6.0),
        "b64-i4x1-d0": (590.0, 6.0),
    }
    space = TuneSpace(batch_sizes=(1, 8, 16, 32, 64), instances=(1, 2, 4), cpus=4)

    def measure(c: TuneConfig) -> Measurement:
        t, p = table.get(c.name, (50.0, 9.0))
        return Measurement(None, None, t, p, 100.0)

    r = grid_search(space, measure, objective=Objective.named("throughput"))
    assert [e.config.name for e in pareto_frontier(r)] == ["b1-i1x4-d0", "b8-i1x4-d0", "b8-i2x2-d0", "b32-i4x1-d0"]
    doc = tune_document(r, model="m", sizing=tune_sizing(r, 2000, 0.2))
    doc2 = json.loads(json.dumps(doc))
    assert doc2["kind"] == "tune" and doc2["pareto"][-1] == "b32-i4x1-d0"
    assert doc2["recommended"]["name"] == "b32-i4x1-d0" == doc2["ranking"][0]
    assert doc2["sizing"]["replicas"] == math.ceil(2000 / (600 * 0.8))
    assert len(doc2["configs"]) == len(space.grid())
    start = next(c for c in doc2["configs"] if c["name"] == doc2["start"])
    assert start["score_vs_start"] == pytest.approx(1.0)


@pytest.mark.parametrize("model", sorted(p.name for p in (REPO / "models").iterdir() if (p / "config.toml").is_file()))
def test_rendered_config_toml_loads_with_the_servers_config_model(tmp_path, model):
    src = REPO / "models" / model
    base = tomllib.loads((src / "config.toml").read_text())
    cfg = TuneConfig(16, 2, 1, 2.5, (8, 16))
    text = render_config_toml(base, cfg, header=["tuned by inferload tune"])
    assert text.startswith("# tuned by inferload tune\n")
    dest = tmp_path / "models" / model
    dest.mkdir(parents=True)
    (dest / "config.toml").write_text(text)
    for extra in ("labels.txt",):
        if (src / extra).exists():
            shutil.copy(src / extra, dest / extra)
    loaded = load_model_config(dest)
    assert (loaded.max_batch_size, loaded.instances.count, loaded.instances.intra_op_threads) == (16, 2, 1)
    assert loaded.batching.max_queue_delay_ms == 2.5 and loaded.batching.preferred_batch_sizes == [8, 16]
    orig = load_model_config(src)
    assert (loaded.builtin, loaded.file, loaded.kind, loaded.image) == (orig.builtin, orig.file, orig.kind, orig.image)
    assert loaded.batching.max_queue_size == orig.batching.max_queue_size
