"""Deterministic builders of the built-in ONNX models (seeded random weights; never downloaded).

Public interface:
- `BUILDERS`: name -> zero-argument function returning an `onnx.ModelProto`
  ("resnet50", "mobilenet_v2", "ssd_mobilenet", "tiny_classifier", "tiny_detector").
- `build_model(name)`: the fp32 model; ValueError naming the builders on an unknown name.
- `build_to_file(name, path, precision="fp32" | "int8")`: writes atomically (temp file + os.replace).
- `model_stats(model)`: {"params", "macs", "gmacs", "gflops" (= 2 * MACs / 1e9 at batch 1)}.

Every model is float32 NCHW with input "input" [batch, 3, H, W]; every output has "batch" as dim 0.
Same name + precision -> the same bytes on every build (fixed seeds, opset 17, IR 8, no timestamps).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from server.zoo.classifiers import mobilenet_v2, resnet50, tiny_classifier
from server.zoo.detectors import ssd_mobilenet, tiny_detector
from server.zoo.stats import model_stats

BUILDERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "ssd_mobilenet": ssd_mobilenet,
    "tiny_classifier": tiny_classifier,
    "tiny_detector": tiny_detector,
}
PRECISIONS = ("fp32", "int8")

__all__ = ["BUILDERS", "PRECISIONS", "build_model", "build_to_file", "model_bytes", "model_stats"]


def build_model(name: str) -> onnx.ModelProto:
    """The fp32 built-in model `name`. Raises ValueError (naming the available builders) if unknown."""
    try:
        builder = BUILDERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown built-in model {name!r}; available builders: {', '.join(sorted(BUILDERS))}"
        ) from None
    return builder()


def model_bytes(name: str, precision: str = "fp32") -> bytes:
    """Serialized bytes of a built-in model at `precision` ("fp32" or "int8")."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    model = build_model(name)
    if precision == "int8":
        from server.zoo.quantize import quantize_int8  # imports onnxruntime.quantization lazily

        model = quantize_int8(model)
    return model.SerializeToString(deterministic=True)


def build_to_file(name: str, path: Path, precision: str = "fp32") -> None:
    """Build `name` at `precision` and write it to `path` atomically, creating parent directories."""
    data = model_bytes(name, precision)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; the server may run as another user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
