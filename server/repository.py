"""Model repository: `models/<name>/config.toml` (+ the ONNX file) → validated `ModelConfig`.

A bad config fails fast with `ConfigError`, whose message names the file, the field and what is allowed.
Model names come from folder names and must match `NAME_RE`; they never become paths on their own.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from server.cpus import available_cpus
from server.providers import PROVIDER_NAMES, OptionValue, ProviderName

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CONFIG_FILE = "config.toml"


class ConfigError(ValueError):
    """A model configuration problem, with file, field and fix in the message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingConfig(_Strict):
    max_queue_delay_ms: float = Field(
        0.0, ge=0, le=60_000, description="How long the oldest request may wait for batch-mates (0 = dispatch at once)."
    )
    preferred_batch_sizes: list[int] = Field(
        default_factory=list, description="Batch sizes (items) to prefer when more are queued."
    )
    max_queue_size: int = Field(
        128, ge=1, le=1_000_000, description="Queued requests before new ones get 503 + Retry-After."
    )
    default_timeout_ms: float | None = Field(
        30_000.0, gt=0, description="Deadline for a request that sets none; expired → 504 before compute."
    )
    max_admitted: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Requests held at once (being read, decoded, queued or running), checked before the body is read; "
        "beyond it → 503 + Retry-After without reading the body. Default: max_queue_size + instances × max_batch_size.",
    )

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _positive_sorted(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("every preferred batch size must be >= 1")
        return sorted(set(v))


class InstancesConfig(_Strict):
    count: int = Field(
        1, ge=1, le=64, description="Model instances: worker threads, each with its own InferenceSession."
    )
    intra_op_threads: int | None = Field(
        None, ge=1, le=256, description="ORT intra-op threads per instance (default: usable CPUs / count)."
    )
    inter_op_threads: int = Field(1, ge=1, le=64)
    allow_spinning: bool = Field(
        False,
        description="Let ONNX Runtime's intra-op threads spin between calls: lower latency after short idle "
        "gaps, at the price of CPU burnt while waiting (see docs/server.md, 'The latency path').",
    )
    provider: ProviderName = Field(
        "cpu",
        description="ONNX Runtime execution provider: " + " | ".join(PROVIDER_NAMES) + ". The installed ONNX Runtime "
        "must have it (openvino: `make openvino`; cuda, tensorrt: onnxruntime-gpu and a GPU; docs/providers.md): "
        "otherwise, or when ONNX Runtime falls back to CPU, the server refuses to start.",
    )
    provider_options: dict[str, OptionValue] = Field(
        default_factory=dict,
        description='Options passed to the provider, e.g. {device_type = "CPU", num_of_threads = 2} for openvino '
        "(default for openvino: device_type CPU, num_of_threads = intra_op_threads). Not passed to cpu.",
    )
    allow_fallback: bool = Field(
        False,
        description="Serve even when the provider is missing or ONNX Runtime fell back to another (one warning); "
        "metrics and /config report the provider that runs.",
    )


class ImageConfig(_Strict):
    """Preprocessing for models that take encoded images (a BYTES input of shape [n])."""

    input_name: str = Field("IMAGE", description="Name of the BYTES input the server exposes.")
    tensor: str | None = Field(
        None, description="ONNX input fed with the preprocessed pixels (default: the model's only input)."
    )
    height: int = Field(224, ge=8, le=4096)
    width: int = Field(224, ge=8, le=4096)
    resize: int | None = Field(
        256,
        ge=8,
        le=8192,
        description="Shorter side is resized to this before the crop (None: resize straight to height x width).",
    )
    crop: Literal["center", "none"] = "center"
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    scale: float = Field(1.0 / 255.0, gt=0, description="Multiplier applied to uint8 pixels before mean/std.")
    mean: list[float] = Field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = Field(default_factory=lambda: [0.229, 0.224, 0.225])
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    max_pixels: int = Field(40_000_000, ge=1, description="Decoded width*height above this → 413.")

    @field_validator("mean", "std")
    @classmethod
    def _three(cls, v: list[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError("needs exactly 3 values (one per channel)")
        return v

    @field_validator("std")
    @classmethod
    def _nonzero(cls, v: list[float]) -> list[float]:
        if any(x == 0 for x in v):
            raise ValueError("std values must be non-zero")
        return v


class ModelConfig(_Strict):
    name: str
    version: str = "1"
    platform: str = "onnxruntime_onnx"
    builtin: str | None = Field(
        None, description="Name of the deterministic builder that makes `file` when it is missing."
    )
    file: str = Field(
        "model.onnx", description="ONNX file, relative to the model folder; must stay inside the repository."
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32", description="Precision a built-in model is built at (int8: onnxruntime.quantization)."
    )
    max_batch_size: int = Field(
        8, ge=1, le=4096, description="Most items one execution may hold; a request with more → 400."
    )
    kind: Literal["classification", "detection", "other"] = "classification"
    labels: str | None = Field(None, description="Labels file (one per line), relative to the model folder.")
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    instances: InstancesConfig = Field(default_factory=InstancesConfig)
    image: ImageConfig | None = None
    # Filled in by the loader, not by the TOML file:
    directory: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if not NAME_RE.match(self.name):
            raise ValueError(f"model name {self.name!r} must match {NAME_RE.pattern}")
        if not NAME_RE.match(self.version):
            raise ValueError(f"version {self.version!r} must match {NAME_RE.pattern}")
        for b in self.batching.preferred_batch_sizes:
            if b > self.max_batch_size:
                raise ValueError(f"batching.preferred_batch_sizes has {b} > max_batch_size {self.max_batch_size}")
        return self

    @property
    def model_path(self) -> Path:
        assert self.directory is not None
        return (self.directory / self.file).resolve()

    @property
    def labels_path(self) -> Path | None:
        if self.labels is None or self.directory is None:
            return None
        return (self.directory / self.labels).resolve()

    def threads_per_instance(self, cpus: int | None = None) -> int:
        if self.instances.intra_op_threads is not None:
            return self.instances.intra_op_threads
        cpus = cpus if cpus is not None else available_cpus()
        return max(1, cpus // self.instances.count)


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid model configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check spelling; see docs/server.md 'Model repository' for the allowed fields)"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  field '{loc}': {msg}")
    return "\n".join(lines)


def _inside(root: Path, target: Path, what: str, cfg_path: Path) -> None:
    try:
        target.relative_to(root)
    except ValueError:
        raise ConfigError(f"{cfg_path}: field '{what}': path {target} leaves the model repository {root}") from None


def load_model_config(model_dir: Path, overrides: dict | None = None) -> ModelConfig:
    """Read and validate one model folder. `overrides` are merged on top (e.g. from `inferload matrix`)."""
    model_dir = Path(model_dir)
    cfg_path = model_dir / CONFIG_FILE
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{cfg_path}: missing (every model folder needs a {CONFIG_FILE})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{cfg_path}: not valid TOML: {e}") from None
    if "name" in raw and raw["name"] != model_dir.name:
        raise ConfigError(
            f"{cfg_path}: field 'name': {raw['name']!r} differs from the folder name {model_dir.name!r}; remove it or rename the folder"
        )
    raw["name"] = model_dir.name
    if overrides:
        raw = deep_merge(raw, overrides)
    try:
        cfg = ModelConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(cfg_path, e)) from None
    cfg = cfg.model_copy(update={"directory": model_dir.resolve()})
    root = model_dir.resolve().parent
    _inside(root, cfg.model_path, "file", cfg_path)
    if cfg.labels_path is not None:
        _inside(root, cfg.labels_path, "labels", cfg_path)
        if not cfg.labels_path.is_file():
            raise ConfigError(f"{cfg_path}: field 'labels': file {cfg.labels_path} not found")
    return cfg


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_repository(
    root: Path, names: list[str] | None = None, overrides: dict | None = None
) -> dict[str, ModelConfig]:
    """All models under `root` (folders holding a config.toml), or only `names`. Raises ConfigError."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"model repository {root} does not exist or is not a directory")
    found = {p.parent.name: p.parent for p in sorted(root.glob(f"*/{CONFIG_FILE}"))}
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigError(
                f"model(s) {', '.join(missing)} not found in {root} (available: {', '.join(found) or 'none'})"
            )
        found = {n: found[n] for n in names}
    return {name: load_model_config(d, overrides) for name, d in found.items()}


def ensure_built(cfg: ModelConfig, force: bool = False) -> bool:
    """Build a built-in model's file (at `cfg.precision`) if it is missing, or always with `force`.
    Returns True if it built it."""
    path = cfg.model_path
    if path.exists() and not force:
        return False
    if cfg.builtin is None:
        raise ConfigError(
            f"{cfg.directory / CONFIG_FILE}: model file {path} is missing and no 'builtin' builder is named"
        )
    from server.zoo import build_to_file  # local import: onnx is only needed when building

    build_to_file(cfg.builtin, path, precision=cfg.precision)
    return True


def scaffold_builtin(root: Path, name: str, precision: str = "fp32") -> Path:
    """Create `root/<model>/config.toml` for built-in builder `name` (fp32: model `name`; int8: `name_int8`).

    An existing fp32 config is the template of its int8 sibling, so batching/instances settings carry over.
    Returns the model folder. Raises ConfigError for an unknown builder.
    """
    from server.zoo import BUILDERS

    if name not in BUILDERS:
        raise ConfigError(
            f"{name!r} is neither a model in {root} nor a built-in builder ({', '.join(sorted(BUILDERS))})"
        )
    model = name if precision == "fp32" else f"{name}_{precision}"
    folder = Path(root) / model
    if (folder / CONFIG_FILE).exists():
        return folder
    template = Path(root) / name / CONFIG_FILE
    if precision != "fp32" and template.exists():
        body = [
            ln
            for ln in template.read_text(encoding="utf-8").splitlines()
            if not ln.strip().startswith(("file =", "file=", "precision", "#"))
        ]
    else:
        kind = "detection" if "detector" in name or name.startswith("ssd") else "classification"
        body = [f'builtin = "{name}"', f'kind = "{kind}"', "max_batch_size = 8"]
    folder.mkdir(parents=True, exist_ok=True)
    header = [
        f"# Built-in model {name!r} at {precision} (generated by `inferload models build`).",
        f'precision = "{precision}"',
    ]
    (folder / CONFIG_FILE).write_text("\n".join(header + body) + "\n", encoding="utf-8")
    return folder
