"""A small, deterministic ONNX graph builder shared by the built-in model builders.

Determinism rules (every build of a model yields the same bytes):
- weights come from one `numpy.random.default_rng(seed)` per model, drawn in a fixed order, in float32;
  only IEEE-exact element-wise operations (multiply, add, sqrt) touch them afterwards;
- node and tensor names come from per-prefix counters, never from ids or hashes;
- fixed opset, IR version, producer name/version, doc strings; no timestamps;
- initializers are stored as `raw_data` (numpy_helper.from_array), inside the one file.

Weights are "sane" random: He-normal init (std = gain * sqrt(2 / fan_in) before ReLU-like activations,
sqrt(1 / fan_in) before linear outputs), BatchNorm folded into the convolution (weight + bias), so a
random N(0, 1) input keeps activations O(1) through the network.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # IR 8 pairs with opset 17; loadable by onnxruntime >= 1.10
PRODUCER_NAME = "inferload.zoo"
PRODUCER_VERSION = "1"
BATCH_DIM = "batch"


class GraphBuilder:
    """Accumulates nodes and initializers; names are deterministic counters."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: collections.Counter[str] = collections.Counter()
        self._consts: dict[tuple, str] = {}

    # ----------------------------------------------------------------- naming / constants
    def uname(self, prefix: str) -> str:
        self._counts[prefix] += 1
        return f"{prefix}_{self._counts[prefix]}"

    def init(self, prefix: str, array: np.ndarray) -> str:
        name = self.uname(prefix)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C", copy=True), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small constant initializer, shared between uses of the same value."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.init("const", arr)
        return self._consts[key]

    # ----------------------------------------------------------------- generic node
    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        n_out: int = 1,
        prefix: str | None = None,
        output: str | None = None,
        **attrs,
    ):
        """Append one node; returns its output name (or the list of names when n_out > 1)."""
        base = self.uname(prefix or op_type.lower())
        if output is not None:
            outputs = [output]
        else:
            outputs = [base] if n_out == 1 else [f"{base}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=base, **attrs))
        return outputs[0] if n_out == 1 else outputs

    # ----------------------------------------------------------------- weights
    def normal(self, shape: Sequence[int], std: float) -> np.ndarray:
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        group: int = 1,
        act: str | None = "relu",
        gain: float = 1.0,
        bias_mean: float = 0.0,
        bias_std: float = 0.01,
        prefix: str = "conv",
    ) -> str:
        """Conv (BatchNorm folded into weight + bias) followed by `act` in {None, "relu", "relu6"}."""
        fan_in = (cin // group) * k * k
        std = gain * np.sqrt((2.0 if act else 1.0) / fan_in)
        w = self.normal((cout, cin // group, k, k), std)
        b = self.normal((cout,), bias_std) + np.float32(bias_mean)
        pad = (k - 1) // 2
        y = self.op(
            "Conv",
            [x, self.init(f"{prefix}_w", w), self.init(f"{prefix}_b", b)],
            prefix=prefix,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=group,
        )
        return self.activation(y, act)

    def activation(self, x: str, act: str | None) -> str:
        if act is None:
            return x
        if act == "relu":
            return self.op("Relu", [x])
        if act == "relu6":
            return self.op("Clip", [x, self.const(0.0, np.float32), self.const(6.0, np.float32)], prefix="relu6")
        raise ValueError(f"unknown activation {act!r}")

    def gemm(self, x: str, cin: int, cout: int, gain: float = 1.0, prefix: str = "fc") -> str:
        w = self.normal((cout, cin), gain * np.sqrt(1.0 / cin))
        b = self.normal((cout,), 0.01)
        return self.op("Gemm", [x, self.init(f"{prefix}_w", w), self.init(f"{prefix}_b", b)], prefix=prefix, transB=1)

    def global_pool_flatten(self, x: str) -> str:
        return self.op("Flatten", [self.op("GlobalAveragePool", [x], prefix="gap")], axis=1)

    # ----------------------------------------------------------------- model
    def model(
        self,
        inputs: Sequence[tuple[str, int, Sequence[int | str]]],
        outputs: Sequence[tuple[str, int, Sequence[int | str]]],
        doc: str = "",
    ) -> onnx.ModelProto:
        """`inputs`/`outputs`: (name, TensorProto dtype, shape with "batch" as dim 0)."""
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in outputs],
            initializer=self.initializers,
            doc_string=doc,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER_NAME,
            producer_version=PRODUCER_VERSION,
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        model.model_version = 1
        return model


def float_input(name: str, c: int, h: int, w: int) -> tuple[str, int, list]:
    return (name, TensorProto.FLOAT, [BATCH_DIM, c, h, w])
