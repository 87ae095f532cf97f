"""int8 variants: static QDQ quantization with onnxruntime.quantization over seeded synthetic data.

Choices (for speed on x86 CPUs and for determinism):
- QDQ format, uint8 activations (asymmetric) x int8 weights (symmetric, per channel): ORT fuses the
  DequantizeLinear -> op -> QuantizeLinear groups into QLinearConv / QLinearMatMul kernels (U8S8 path).
- Only the compute ops are quantized (`QUANTIZED_OPS`); everything downstream of the detection heads'
  Reshape (box decoding, NMS, gathers and scatters) stays float32 / int64, so boxes keep full precision.
- Calibration: MinMax over `CALIBRATION_SAMPLES` batch-1 inputs drawn from default_rng(CALIBRATION_SEED)
  (standard normal, i.e. already "normalized" images). Min/max are exact reductions, so on a given
  machine the result is byte-identical every time; across different CPU instruction sets the fp32
  activations of the calibration run may differ in the last bits and so may the scales.
- The quantizer's producer fields are replaced by fixed ones.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from server.zoo.graph import PRODUCER_NAME, PRODUCER_VERSION

CALIBRATION_SAMPLES = 4
CALIBRATION_SEED = 8
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "Add"]  # Add: residual connections stay in int8 (QLinearAdd)


def _postprocess_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes downstream of the detection heads' Reshape (decoding, NMS, padding): kept float."""
    downstream: set[str] = set()
    tainted: set[str] = set()
    for node in model.graph.node:  # nodes are in topological order
        if node.op_type == "Reshape" or any(i in tainted for i in node.input):
            downstream.add(node.name)
            tainted.update(node.output)
    return sorted(downstream)


def _input_shapes(model: onnx.ModelProto) -> dict[str, tuple[list[int], int]]:
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
        out[vi.name] = (dims, t.elem_type)
    return out


class _DropPreprocessHint(logging.Filter):
    """Drops the quantizer's "consider pre-processing" warnings (logged on the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def _calibration_samples(model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(CALIBRATION_SEED)
    shapes = _input_shapes(model)
    return [
        {name: rng.standard_normal(dims, dtype=np.float32) for name, (dims, _) in shapes.items()}
        for _ in range(CALIBRATION_SAMPLES)
    ]


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 (QDQ, static) version of an fp32 built-in model. Deterministic on a given machine."""
    from onnxruntime.quantization import (  # lazy: only `--precision int8` needs it
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class SyntheticReader(CalibrationDataReader):
        def __init__(self, samples: list[dict[str, np.ndarray]]) -> None:
            self._it = iter(samples)

        def get_next(self):
            return next(self._it, None)

    hint_filter = _DropPreprocessHint()
    logging.getLogger().addFilter(hint_filter)
    try:
        with tempfile.TemporaryDirectory(prefix="inferload-quant-") as tmp:
            src = Path(tmp) / "fp32.onnx"
            dst = Path(tmp) / "int8.onnx"
            src.write_bytes(model.SerializeToString(deterministic=True))
            quantize_static(
                src,
                dst,
                SyntheticReader(_calibration_samples(model)),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=QUANTIZED_OPS,
                nodes_to_exclude=_postprocess_nodes(model),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_providers=["CPUExecutionProvider"],
            )
            q = onnx.load(str(dst))
    finally:
        logging.getLogger().removeFilter(hint_filter)
    q.producer_name = PRODUCER_NAME
    q.producer_version = f"{PRODUCER_VERSION}+int8"
    q.graph.name = f"{model.graph.name}_int8"
    return q
