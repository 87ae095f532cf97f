"""The provider axis of `tune` and `matrix` (issue #21), pure: the space, names, overrides, the written config.toml
(which must load with the server's repository loader and name its provider), matrix cells and their baseline."""

from __future__ import annotations

import json
import tomllib

import pytest

from loadgen.report.html_parts import show_provider
from loadgen.search.matrix import config_label, matrix_configs, overrides_for, raw_items_per_s
from loadgen.search.tune import Constraints, Measurement, Objective, grid_search, quick_search
from loadgen.search.tune_doc import render_config_toml
from loadgen.search.tune_run import space_dict
from loadgen.search.tune_space import TuneConfig, TuneSpace
from server.repository import load_model_config

SPACE = TuneSpace(batch_sizes=(1, 8), instances=(1, 2), delays_ms=(0,), cpus=2, providers=("cpu", "openvino"))


def test_the_provider_is_a_dimension_with_stable_names():
    assert SPACE.dimensions() == ["max_batch_size", "instances", "provider"]
    names = sorted(c.name for c in SPACE.grid())
    assert len(names) == 2 * 2 * 2 and "b8-i2x1-d0-openvino" in names and "b8-i2x1-d0" in names
    assert SPACE.start().provider == "cpu"
    line, i = SPACE.neighbours(SPACE.config(8, 2, 0), "provider")
    assert [c.provider for c in line] == ["cpu", "openvino"] and i == 0
    line, _ = SPACE.neighbours(SPACE.config(8, 1, 0, (), "openvino"), "max_batch_size")
    assert {c.provider for c in line} == {"openvino"}  # the other dimensions keep the provider
    c = TuneConfig(8, 2, 1, 0.0, (), "openvino")
    assert TuneConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert TuneConfig.from_dict({k: v for k, v in c.to_dict().items() if k != "provider"}).provider == "cpu"
    assert c.overrides()["instances"] == {"count": 2, "intra_op_threads": 1, "provider": "openvino"}
    assert space_dict(SPACE)["provider"] == ["cpu", "openvino"]
    assert "provider" not in space_dict(TuneSpace(cpus=2))  # cpu-only checkpoints from before still resume
    with pytest.raises(ValueError, match="provider: give at least one value"):
        TuneSpace(cpus=2, providers=())


def _surface(cfg: TuneConfig) -> Measurement:
    """OpenVINO wins at batch 1 (throughput and latency), loses at batch 8 (the shape measured on the AMD VM)."""
    per = {("cpu", 1): 200.0, ("cpu", 8): 250.0, ("openvino", 1): 240.0, ("openvino", 8): 210.0}
    rate = per[(cfg.provider, cfg.max_batch_size)] / cfg.instances**0.1
    p99_low = (4.2 if cfg.provider == "openvino" else 5.0) + (cfg.max_batch_size - 1) / 4
    return Measurement(rate * 0.8, "found", rate, p99_low)


def test_searches_cross_the_provider_axis_and_recommend_a_configuration_naming_it():
    cons = Constraints(slo_p99_ms=50.0)
    for search in (grid_search, quick_search):
        thr = search(SPACE, _surface, objective=Objective.named("throughput"), constraints=cons).recommended
        assert thr is not None and (thr.provider, thr.max_batch_size, thr.instances) == ("cpu", 8, 1)
        lat = search(SPACE, _surface, objective=Objective.named("latency"), constraints=cons).recommended
        assert lat is not None and (lat.provider, lat.max_batch_size) == ("openvino", 1)
        assert lat.name.endswith("-openvino")


def test_the_recommended_config_toml_names_its_provider_and_loads(tmp_path):
    base = tomllib.loads(
        'builtin = "tiny_classifier"\nmax_batch_size = 8\n[instances]\ncount = 1\nprovider = "cpu"\n'
        "[batching]\nmax_queue_size = 64\n"
    )
    for cfg in (TuneConfig(4, 2, 1, 2.0, (), "openvino"), TuneConfig(8, 1, 2, 0.0, (4,), "cpu")):
        text = render_config_toml(base, cfg, header=["tuned"])
        d = tmp_path / cfg.name / "tiny_classifier"
        d.mkdir(parents=True)
        (d / "config.toml").write_text(text)
        loaded = load_model_config(d)
        assert loaded.instances.provider == cfg.provider and loaded.instances.count == cfg.instances
        assert f'provider = "{cfg.provider}"' in text


def test_provider_options_survive_for_the_same_provider_and_go_with_another(tmp_path):
    base = {
        "builtin": "tiny_classifier",
        "instances": {"count": 1, "provider": "openvino", "provider_options": {"device_type": "CPU", "num_streams": 2}},
    }
    same = render_config_toml(base, TuneConfig(8, 1, 2, 0.0, (), "openvino"))
    assert "[instances.provider_options]" in same and "num_streams = 2" in same
    d = tmp_path / "tiny_classifier"
    d.mkdir()
    (d / "config.toml").write_text(same)
    assert load_model_config(d).instances.provider_options == {"device_type": "CPU", "num_streams": 2}
    other = render_config_toml(base, TuneConfig(8, 1, 2, 0.0, (), "cpu"))
    assert "provider_options" not in other and 'provider = "cpu"' in other


def test_matrix_cells_name_their_provider():
    plain = matrix_configs([1, 8], [1], [0.0])
    assert all("provider" not in c for c in plain) and "provider" not in overrides_for(plain[0])["instances"]
    cells = matrix_configs([1, 8], [1], [0.0], ["cpu", "openvino"])
    assert [(c["provider"], c["max_batch_size"]) for c in cells] == [
        ("cpu", 1),
        ("cpu", 8),
        ("openvino", 1),
        ("openvino", 8),
    ]
    assert [config_label(c) for c in cells[1:3]] == ["b8·i1·d0ms", "b1·i1·d0ms·openvino"]
    assert overrides_for(cells[2])["instances"] == {"count": 1, "provider": "openvino"}
    bench = {
        "results": [
            {"batch_size": 1, "instances": 1, "throughput_items_per_s": 200.0},  # before providers: cpu
            {"batch_size": 1, "instances": 1, "throughput_items_per_s": 240.0, "provider": "openvino"},
        ]
    }
    assert raw_items_per_s(bench, cells[0]) == 200.0 and raw_items_per_s(bench, cells[2]) == 240.0
    assert show_provider(cells) and not show_provider(plain) and not show_provider([{"provider": "cpu"}])
