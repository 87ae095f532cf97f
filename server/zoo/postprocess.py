"""In-graph SSD post-processing: anchors, box decoding, per-class NonMaxSuppression, fixed-size outputs.

Outputs (every one has the batch as dim 0, K slots per image, padded with zeros):
  detection_boxes  [batch, K, 4] float32  (ymin, xmin, ymax, xmax), normalized to [0, 1]
  detection_scores [batch, K]    float32  sigmoid class score, descending; 0 in empty slots
  detection_classes[batch, K]    float32  1-based class id (0 = background is never emitted; 0 = empty)
  num_detections   [batch]       float32  valid slots per image (TF Object Detection API conventions)

How the variable NMS result becomes fixed per-image tensors (all in-graph, any batch size):
1. `NonMaxSuppression` runs per class (max_output_boxes_per_class = K) and yields rows
   (batch b, class c, anchor a), grouped by (b, c) in that order, each group in score order.
2. Rank of a row inside its (b, c) group = row index - start of the group, where the starts are the
   exclusive cumulative sum of group sizes (counted with ScatterND reduction="add").
3. Each row's score and anchor are scattered into dense [batch, C*K] buffers at slot c*K + rank.
4. `TopK(K)` over each image's buffer merges the classes (like TF's combined NMS); the class is
   slot // K, the box is gathered by anchor; slots with score 0 are the padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper

from server.zoo.graph import BATCH_DIM, GraphBuilder

BOX_VARIANCES = (0.1, 0.1, 0.2, 0.2)  # = TF scale factors (10, 10, 5, 5) for (y, x, h, w)


def ssd_anchors(
    feature_sizes: Sequence[int],
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
    reduce_lowest: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Prior boxes as TF's MultipleGridAnchorGenerator (ssd_anchor_generator) makes them.

    Returns (centers [A, 2] as (cy, cx), sizes [A, 2] as (h, w)), float32, ordered (y, x, anchor) to
    match a head output transposed to NHWC and reshaped to [batch, -1, 4]. The lowest layer gets 3
    anchors when `reduce_lowest`; the others len(aspect_ratios) + 1 (an extra ratio-1 box at the
    geometric mean of this and the next scale).
    """
    n = len(feature_sizes)
    scales = [min_scale + (max_scale - min_scale) * i / max(n - 1, 1) for i in range(n)] + [1.0]
    centers, sizes = [], []
    for layer, fs in enumerate(feature_sizes):
        if layer == 0 and reduce_lowest:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[layer], ar) for ar in aspect_ratios]
            boxes.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
        for y in range(fs):
            for x in range(fs):
                for scale, ar in boxes:
                    centers.append(((y + 0.5) / fs, (x + 0.5) / fs))
                    sizes.append((scale / math.sqrt(ar), scale * math.sqrt(ar)))
    return np.asarray(centers, dtype=np.float32), np.asarray(sizes, dtype=np.float32)


def anchors_per_location(layer: int, aspect_ratios: int = 5, reduce_lowest: bool = True) -> int:
    return 3 if (layer == 0 and reduce_lowest) else aspect_ratios + 1


def head_outputs(g: GraphBuilder, y_loc: str, y_conf: str, num_classes_bg: int) -> tuple[str, str]:
    """Conv outputs [B, A*4, H, W] and [B, A*(C+1), H, W] → [B, H*W*A, 4] and [B, H*W*A, C+1]."""
    loc = g.op("Reshape", [g.op("Transpose", [y_loc], perm=[0, 2, 3, 1]), g.const([0, -1, 4])])
    conf = g.op("Reshape", [g.op("Transpose", [y_conf], perm=[0, 2, 3, 1]), g.const([0, -1, num_classes_bg])])
    return loc, conf


def detection_postprocess(
    g: GraphBuilder,
    image: str,
    loc: str,
    conf: str,
    anchors: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    k: int,
    iou_threshold: float,
    score_threshold: float,
) -> list[tuple[str, int, list]]:
    """Decode `loc` [B, A, 4] against `anchors`, sigmoid `conf` [B, A, C+1] (class 0 = background),
    per-class NMS and top-K merge. Returns the graph output declarations."""
    f32 = np.float32
    centers, sizes = anchors
    num_anchors = centers.shape[0]

    # ---- box decoding (center-size with variances), clipped to the image
    center_code = g.op("Slice", [loc, g.const([0]), g.const([2]), g.const([2])])
    size_code = g.op("Slice", [loc, g.const([2]), g.const([4]), g.const([2])])
    anchor_c = g.init("anchor_centers", centers[None])
    anchor_s = g.init("anchor_sizes", sizes[None])
    var_c = g.const(BOX_VARIANCES[:2], f32)
    var_s = g.const(BOX_VARIANCES[2:], f32)
    ctr = g.op("Add", [g.op("Mul", [g.op("Mul", [center_code, var_c]), anchor_s]), anchor_c])
    half = g.op("Mul", [g.op("Mul", [g.op("Exp", [g.op("Mul", [size_code, var_s])]), anchor_s]), g.const(0.5, f32)])
    boxes = g.op("Concat", [g.op("Sub", [ctr, half]), g.op("Add", [ctr, half])], axis=2)
    boxes = g.op("Clip", [boxes, g.const(0.0, f32), g.const(1.0, f32)], prefix="boxes")  # [B, A, 4]

    # ---- scores: sigmoid, drop background, [B, C, A] for NMS
    scores = g.op("Slice", [g.op("Sigmoid", [conf]), g.const([1]), g.const([num_classes + 1]), g.const([2])])
    scores = g.op("Transpose", [scores], perm=[0, 2, 1], prefix="scores")

    selected = g.op(
        "NonMaxSuppression",
        [boxes, scores, g.const([k]), g.const([iou_threshold], f32), g.const([score_threshold], f32)],
        prefix="nms",
        center_point_box=0,
    )  # [N, 3] (batch, class, anchor)

    # ---- rank of each row inside its (batch, class) group
    sel_b = g.op("Gather", [selected, g.const(0)], axis=1)
    sel_c = g.op("Gather", [selected, g.const(1)], axis=1)
    sel_a = g.op("Gather", [selected, g.const(2)], axis=1)
    sel_score = g.op("GatherND", [scores, selected])  # [N]
    batch = g.op("Shape", [image], start=0, end=1)  # [1]
    group = g.op("Add", [g.op("Mul", [sel_b, g.const(num_classes)]), sel_c])
    group_col = g.op("Unsqueeze", [group, g.const([1])])
    ones = g.op(
        "ConstantOfShape", [g.op("Shape", [group])], value=helper.make_tensor("one", TensorProto.INT64, [1], [1])
    )
    zeros_groups = g.op(
        "ConstantOfShape",
        [g.op("Mul", [batch, g.const([num_classes])])],
        value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
    )
    counts = g.op("ScatterND", [zeros_groups, group_col, ones], reduction="add")
    starts = g.op("CumSum", [counts, g.const(0)], exclusive=1)
    n_rows = g.op("Squeeze", [g.op("Shape", [selected], start=0, end=1), g.const([0])])
    rows = g.op("Range", [g.const(0), n_rows, g.const(1)])
    rank = g.op("Sub", [rows, g.op("Gather", [starts, group], axis=0)])

    # ---- dense per-image buffers [B, C*K], slot = class*K + rank; merge classes with TopK
    slot = g.op("Add", [g.op("Mul", [sel_c, g.const(k)]), rank])
    idx = g.op("Concat", [g.op("Unsqueeze", [sel_b, g.const([1])]), g.op("Unsqueeze", [slot, g.const([1])])], axis=1)
    buf_shape = g.op("Concat", [batch, g.const([num_classes * k])], axis=0)
    zero_f = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    zero_i = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    score_buf = g.op("ScatterND", [g.op("ConstantOfShape", [buf_shape], value=zero_f), idx, sel_score])
    anchor_buf = g.op("ScatterND", [g.op("ConstantOfShape", [buf_shape], value=zero_i), idx, sel_a])
    top_scores, top_slots = g.op("TopK", [score_buf, g.const([k])], n_out=2, axis=1, largest=1, sorted=1)
    top_anchor = g.op("GatherElements", [anchor_buf, top_slots], axis=1)  # [B, K]

    valid = g.op("Cast", [g.op("Greater", [top_scores, g.const(0.0, f32)])], to=TensorProto.FLOAT)  # [B, K]
    det_boxes = g.op("GatherND", [boxes, g.op("Unsqueeze", [top_anchor, g.const([2])])], batch_dims=1)  # [B, K, 4]
    g.op("Mul", [det_boxes, g.op("Unsqueeze", [valid, g.const([2])])], output="detection_boxes")
    g.op("Identity", [top_scores], output="detection_scores")
    classes = g.op("Cast", [g.op("Add", [g.op("Div", [top_slots, g.const(k)]), g.const(1)])], to=TensorProto.FLOAT)
    g.op("Mul", [classes, valid], output="detection_classes")
    g.op("ReduceSum", [valid, g.const([1])], keepdims=0, output="num_detections")

    assert num_anchors > 0
    return [
        ("detection_boxes", TensorProto.FLOAT, [BATCH_DIM, k, 4]),
        ("detection_scores", TensorProto.FLOAT, [BATCH_DIM, k]),
        ("detection_classes", TensorProto.FLOAT, [BATCH_DIM, k]),
        ("num_detections", TensorProto.FLOAT, [BATCH_DIM]),
    ]
