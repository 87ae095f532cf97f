"""Parameter and compute counts of an ONNX graph, for `inferload models build`.

- `params`: elements of the weight initializers, i.e. those consumed (directly, or through a
  DequantizeLinear in an int8 QDQ model) by Conv / ConvTranspose / Gemm / MatMul / BatchNormalization.
  Constants such as SSD anchors, thresholds, shapes and quantization scales/zero points are not counted,
  so an int8 model reports the same count as its fp32 original.
- `macs`: multiply-accumulates of Conv / ConvTranspose / Gemm / MatMul at batch 1 (symbolic dims = 1),
  from `onnx.shape_inference`; `gmacs` = macs / 1e9; `gflops` = 2 * macs / 1e9.
"""

from __future__ import annotations

import math

import onnx
from onnx import shape_inference

WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization"}
DQ_OPS = {"DequantizeLinear"}


def _shape(vi: onnx.ValueInfoProto) -> list[int] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)
    return dims


def _count_params(graph: onnx.GraphProto) -> int:
    inits = {i.name: i for i in graph.initializer}
    dq_source = {n.output[0]: n.input[0] for n in graph.node if n.op_type in DQ_OPS and n.input}
    counted: set[str] = set()
    for node in graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        for name in node.input[1:]:
            name = dq_source.get(name, name)
            if name in inits:
                counted.add(name)
    return sum(math.prod(inits[n].dims) for n in counted)


def _count_macs(model: onnx.ModelProto) -> int:
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    g = inferred.graph
    shapes: dict[str, list[int] | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _shape(vi)
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    # DequantizeLinear keeps its input's shape; make sure weight shapes reach the consumer.
    for n in g.node:
        if n.op_type in DQ_OPS and shapes.get(n.output[0]) is None:
            shapes[n.output[0]] = shapes.get(n.input[0])
    macs = 0
    for n in g.node:
        if n.op_type == "Conv":
            # each output element takes (Cin/group)*kh*kw MACs = prod(W.shape[1:])
            w, y = shapes.get(n.input[1]), shapes.get(n.output[0])
            if w and y:
                macs += math.prod(y) * math.prod(w[1:])
        elif n.op_type == "ConvTranspose":
            # each input element scatters into (Cout/group)*kh*kw outputs = prod(W.shape[1:])
            w, x = shapes.get(n.input[1]), shapes.get(n.input[0])
            if w and x:
                macs += math.prod(x) * math.prod(w[1:])
        elif n.op_type == "Gemm":
            a, y = shapes.get(n.input[0]), shapes.get(n.output[0])
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            if a and y:
                k = a[0] if trans_a else a[-1]
                macs += math.prod(y) * k
        elif n.op_type == "MatMul":
            a, y = shapes.get(n.input[0]), shapes.get(n.output[0])
            if a and y:
                macs += math.prod(y) * a[-1]
    return macs


def model_stats(model: onnx.ModelProto) -> dict:
    """{"params": int, "macs": int, "gmacs": float, "gflops": float (= 2*MACs/1e9 at batch 1)}."""
    macs = _count_macs(model)
    return {
        "params": _count_params(model.graph),
        "macs": macs,
        "gmacs": macs / 1e9,
        "gflops": 2 * macs / 1e9,
    }
