"""Model repository configuration: good configs load; bad ones fail fast naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.cpus import _cgroup_quota_cpus, available_cpus
from server.repository import ConfigError, load_model_config, load_repository

REPO = Path(__file__).resolve().parents[2] / "models"


def _model(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text(text)
    return d


def test_builtin_repository_loads():
    repo = load_repository(REPO)
    assert {
        "resnet50",
        "mobilenet_v2",
        "mobilenet_v2_jpeg",
        "ssd_mobilenet",
        "tiny_classifier",
        "tiny_detector",
    } <= set(repo)
    jpeg = repo["mobilenet_v2_jpeg"]
    assert jpeg.image is not None and jpeg.image.input_name == "IMAGE"
    # The image pipeline shares the plain model's ONNX file.
    assert jpeg.model_path == repo["mobilenet_v2"].model_path
    assert repo["ssd_mobilenet"].kind == "detection"


def test_full_config_fields(tmp_path):
    d = _model(
        tmp_path,
        "m",
        """
builtin = "tiny_classifier"
max_batch_size = 16
labels = "labels.txt"
[batching]
max_queue_delay_ms = 2.5
preferred_batch_sizes = [8, 4, 8]
max_queue_size = 10
default_timeout_ms = 1000
[instances]
count = 2
intra_op_threads = 3
[image]
height = 32
width = 40
resize = 48
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]
layout = "NHWC"
channel_order = "BGR"
""",
    )
    (d / "labels.txt").write_text("a\nb\n")
    cfg = load_model_config(d)
    assert cfg.name == "m"
    assert cfg.batching.preferred_batch_sizes == [4, 8]  # sorted, deduplicated
    assert cfg.batching.max_queue_delay_ms == 2.5
    assert cfg.instances.count == 2 and cfg.threads_per_instance() == 3
    assert cfg.image.layout == "NHWC" and cfg.image.width == 40
    assert cfg.labels_path == (d / "labels.txt").resolve()


@pytest.mark.parametrize(
    "text, field, hint",
    [
        ("max_batch_size = 0", "max_batch_size", "greater than or equal to 1"),
        ("max_batch_size = 'eight'", "max_batch_size", "valid integer"),
        ("[batching]\nmax_queue_delay_ms = -1", "batching.max_queue_delay_ms", "greater than or equal to 0"),
        ("[batching]\nmax_queu_size = 4", "batching.max_queu_size", "unknown field"),
        (
            "max_batch_size = 4\n[batching]\npreferred_batch_sizes = [8]",
            "(top level)",
            "preferred_batch_sizes has 8 > max_batch_size 4",
        ),
        ("[instances]\ncount = 0", "instances.count", "greater than or equal to 1"),
        ("[image]\nlayout = 'CHW'", "image.layout", "'NCHW' or 'NHWC'"),
        ("[image]\nmean = [0.5, 0.5]", "image.mean", "exactly 3 values"),
    ],
)
def test_bad_config_names_file_field_and_fix(tmp_path, text, field, hint):
    d = _model(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as e:
        load_model_config(d)
    msg = str(e.value)
    assert str(d / "config.toml") in msg
    assert f"field '{field}'" in msg
    assert hint in msg


def test_invalid_toml_and_missing_file(tmp_path):
    d = _model(tmp_path, "broken", "max_batch_size = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_model_config(d)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="missing"):
        load_model_config(tmp_path / "empty")


def test_paths_cannot_leave_repository(tmp_path):
    d = _model(tmp_path / "repo", "evil", 'file = "../../outside.onnx"')
    with pytest.raises(ConfigError, match="leaves the model repository"):
        load_model_config(d)
    d2 = _model(tmp_path / "repo", "evil2", 'labels = "/etc/passwd"')
    with pytest.raises(ConfigError, match="field 'labels'"):
        load_model_config(d2)


def test_name_field_must_match_folder(tmp_path):
    d = _model(tmp_path, "alpha", 'name = "beta"')
    with pytest.raises(ConfigError, match="differs from the folder name"):
        load_model_config(d)


def test_unknown_model_names_listed(tmp_path):
    _model(tmp_path, "one", "")
    with pytest.raises(ConfigError, match=r"model\(s\) two not found .*available: one"):
        load_repository(tmp_path, ["two"])


def test_overrides_apply_without_editing_files(tmp_path):
    d = _model(tmp_path, "m", "max_batch_size = 4\n[instances]\ncount = 1")
    cfg = load_model_config(d, {"max_batch_size": 16, "instances": {"count": 2}})
    assert cfg.max_batch_size == 16 and cfg.instances.count == 2
    assert "max_batch_size = 4" in (d / "config.toml").read_text()


def test_default_threads_follow_usable_cpus(tmp_path):
    d = _model(tmp_path, "m", "[instances]\ncount = 2")
    cfg = load_model_config(d)
    assert cfg.threads_per_instance(cpus=8) == 4
    assert cfg.threads_per_instance(cpus=1) == 1
    assert cfg.threads_per_instance() == max(1, available_cpus() // 2)


def test_cgroup_quota_parsing(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota_cpus(tmp_path) is None
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1
