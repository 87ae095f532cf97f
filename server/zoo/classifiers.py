"""Image classifiers: ResNet-50 v1.5, MobileNetV2 1.0 (224), and a few-KB test classifier.

Compute-faithful architectures with seeded random weights; BatchNorm is folded into conv weight + bias,
so `params` counts conv weights + one bias per BN channel + FC (ResNet-50: 25,530,472, vs 25,557,032
in torchvision's count with BN gamma and beta; MobileNetV2: 3,487,816 vs 3,504,872).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from server.zoo.graph import BATCH_DIM, GraphBuilder, float_input

# ----------------------------------------------------------------------------------- ResNet-50 v1.5

RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, first stride)
RESIDUAL_GAIN = 0.3  # scale of the last conv of each residual branch, so activations stay O(1) with depth


def _bottleneck(g: GraphBuilder, x: str, cin: int, width: int, stride: int) -> str:
    cout = width * 4
    y = g.conv(x, cin, width, 1)
    y = g.conv(y, width, width, 3, stride=stride)  # v1.5: the stride sits in the 3x3 conv
    y = g.conv(y, width, cout, 1, act=None, gain=RESIDUAL_GAIN)
    shortcut = x if (stride == 1 and cin == cout) else g.conv(x, cin, cout, 1, stride=stride, act=None, prefix="down")
    return g.op("Relu", [g.op("Add", [y, shortcut])])


def resnet50() -> onnx.ModelProto:
    """ResNet-50 v1.5: input "input" [batch,3,224,224] → "logits" [batch,1000]. ~4.1 GMACs."""
    g = GraphBuilder("resnet50", seed=50)
    x = g.conv("input", 3, 64, 7, stride=2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in RESNET50_STAGES:
        for i in range(blocks):
            x = _bottleneck(g, x, cin, width, stride if i == 0 else 1)
            cin = width * 4
    logits = g.gemm(g.global_pool_flatten(x), cin, 1000)
    g.nodes.append(onnx.helper.make_node("Identity", [logits], ["logits"], name="logits"))
    return g.model(
        [float_input("input", 3, 224, 224)],
        [("logits", TensorProto.FLOAT, [BATCH_DIM, 1000])],
        doc="ResNet-50 v1.5 (inferload built-in; random seeded weights, BatchNorm folded)",
    )


# ----------------------------------------------------------------------------------- MobileNetV2

# (expansion t, channels c, repeats n, first stride s) — Sandler et al. 2018, table 2
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
PROJECT_GAIN = 0.5  # linear-bottleneck projection gain inside residual blocks


def mobilenet_v2_features(g: GraphBuilder, x: str, tap_expansion_of: int | None = None) -> tuple[str, str | None]:
    """MobileNetV2 1.0 trunk up to the 1x1 conv to 1280 channels (ReLU6).

    Returns (final 1280-channel map, tap) where tap is the expansion output of inverted-residual block
    `tap_expansion_of` (0-based), as SSD taps block 13 ("layer_15/expansion_output" in TF naming).
    """
    x = g.conv(x, 3, 32, 3, stride=2, act="relu6")
    cin, block, tap = 32, 0, None
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = g.conv(y, cin, hidden, 1, act="relu6")
            if block == tap_expansion_of:
                tap = y
            y = g.conv(y, hidden, hidden, 3, stride=stride, group=hidden, act="relu6", prefix="dwconv")
            residual = stride == 1 and cin == c
            y = g.conv(y, hidden, c, 1, act=None, gain=PROJECT_GAIN if residual else 1.0, prefix="project")
            x = g.op("Add", [x, y]) if residual else y
            cin = c
            block += 1
    x = g.conv(x, cin, 1280, 1, act="relu6")
    return x, tap


def mobilenet_v2() -> onnx.ModelProto:
    """MobileNetV2 1.0 224: input "input" [batch,3,224,224] → "logits" [batch,1000]. ~300 MMACs."""
    g = GraphBuilder("mobilenet_v2", seed=2)
    x, _ = mobilenet_v2_features(g, "input")
    logits = g.gemm(g.global_pool_flatten(x), 1280, 1000)
    g.nodes.append(onnx.helper.make_node("Identity", [logits], ["logits"], name="logits"))
    return g.model(
        [float_input("input", 3, 224, 224)],
        [("logits", TensorProto.FLOAT, [BATCH_DIM, 1000])],
        doc="MobileNetV2 1.0 224 (inferload built-in; random seeded weights, BatchNorm folded, ReLU6 as Clip)",
    )


# ----------------------------------------------------------------------------------- tiny classifier


def tiny_classifier() -> onnx.ModelProto:
    """A few-KB test classifier: "input" [batch,3,32,32] → "logits" [batch,10]."""
    g = GraphBuilder("tiny_classifier", seed=10)
    x = g.conv("input", 3, 8, 3, stride=2)
    x = g.conv(x, 8, 16, 3, stride=2)
    logits = g.gemm(g.global_pool_flatten(x), 16, 10)
    g.nodes.append(onnx.helper.make_node("Identity", [logits], ["logits"], name="logits"))
    return g.model(
        [float_input("input", 3, 32, 32)],
        [("logits", TensorProto.FLOAT, [BATCH_DIM, 10])],
        doc="tiny_classifier (inferload built-in test model)",
    )
