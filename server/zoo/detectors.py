"""Object detectors: SSDLite with a MobileNetV2 backbone (300x300, COCO-sized: 90 classes, 1917 anchors)
and a few-KB test detector. Both end in the shared in-graph post-processing (`postprocess.py`):
anchors constant-folded into initializers, box decoding, NonMaxSuppression, fixed K outputs per image.
"""

from __future__ import annotations

import onnx

from server.zoo.classifiers import mobilenet_v2_features
from server.zoo.graph import GraphBuilder, float_input
from server.zoo.postprocess import anchors_per_location, detection_postprocess, head_outputs, ssd_anchors

SSD_NUM_CLASSES = 90  # COCO label map ids 1..90 (+ background 0)
SSD_MAX_DETECTIONS = 100
SSD_FEATURE_SIZES = (19, 10, 5, 3, 2, 1)
SSD_EXTRA_CHANNELS = (512, 256, 256, 128)
# Class-logit bias (focal-loss style prior) so that random weights give a realistic, sparse set of
# candidates above the score threshold (~80-95 detections per random image) instead of every anchor
# in every class.
SSD_PRIOR_BIAS = -3.8918202981106265  # = -log((1 - p) / p) for p = 0.02, written out (no libm in builds)
LOC_GAIN = 0.25  # box-regression head output scale: decoded boxes stay near their anchors
CONF_GAIN = 1.0


def _ssdlite_head(g: GraphBuilder, x: str, cin: int, anchors: int, num_classes_bg: int, bias: float) -> tuple[str, str]:
    """SSDLite predictor: 3x3 depthwise (ReLU6) + 1x1 conv, one for boxes and one for classes."""
    d = g.conv(x, cin, cin, 3, group=cin, act="relu6", prefix="box_dw")
    y_loc = g.conv(d, cin, anchors * 4, 1, act=None, gain=LOC_GAIN, prefix="box_loc")
    d = g.conv(x, cin, cin, 3, group=cin, act="relu6", prefix="cls_dw")
    y_conf = g.conv(d, cin, anchors * num_classes_bg, 1, act=None, gain=CONF_GAIN, bias_mean=bias, prefix="cls_conf")
    return head_outputs(g, y_loc, y_conf, num_classes_bg)


def ssd_mobilenet() -> onnx.ModelProto:
    """SSDLite-MobileNetV2 300x300: "input" [batch,3,300,300] → detection_boxes/scores/classes, num_detections.

    Feature maps: block 13 expansion (576 ch, 19x19), last 1x1 conv (1280 ch, 10x10), then four
    SSDLite extra layers (1x1 → 3x3 depthwise stride 2 → 1x1) to 5x5, 3x3, 2x2, 1x1.
    """
    g = GraphBuilder("ssd_mobilenet", seed=300)
    final, tap = mobilenet_v2_features(g, "input", tap_expansion_of=13)
    assert tap is not None
    maps = [(tap, 576), (final, 1280)]
    x, cin = final, 1280
    for cout in SSD_EXTRA_CHANNELS:
        y = g.conv(x, cin, cout // 2, 1, act="relu6", prefix="extra_reduce")
        y = g.conv(y, cout // 2, cout // 2, 3, stride=2, group=cout // 2, act="relu6", prefix="extra_dw")
        x = g.conv(y, cout // 2, cout, 1, act="relu6", prefix="extra_expand")
        cin = cout
        maps.append((x, cout))

    bias = SSD_PRIOR_BIAS
    locs, confs = [], []
    for layer, (fmap, ch) in enumerate(maps):
        loc, conf = _ssdlite_head(g, fmap, ch, anchors_per_location(layer), SSD_NUM_CLASSES + 1, bias)
        locs.append(loc)
        confs.append(conf)
    loc = g.op("Concat", locs, axis=1, prefix="box_encodings")
    conf = g.op("Concat", confs, axis=1, prefix="class_logits")
    outputs = detection_postprocess(
        g,
        "input",
        loc,
        conf,
        ssd_anchors(SSD_FEATURE_SIZES),
        num_classes=SSD_NUM_CLASSES,
        k=SSD_MAX_DETECTIONS,
        iou_threshold=0.6,
        score_threshold=0.3,
    )
    return g.model(
        [float_input("input", 3, 300, 300)],
        outputs,
        doc="SSDLite MobileNetV2 300x300 (inferload built-in; random seeded weights; decode + NMS in graph)",
    )


TINY_NUM_CLASSES = 3
TINY_MAX_DETECTIONS = 10
TINY_PRIOR_BIAS = -1.3862943611198906  # -log(4), p = 0.2


def tiny_detector() -> onnx.ModelProto:
    """Few-KB test detector: "input" [batch,3,64,64] → the same 4 outputs as ssd_mobilenet with K=10."""
    g = GraphBuilder("tiny_detector", seed=64)
    x = g.conv("input", 3, 8, 3, stride=2)  # 32
    x = g.conv(x, 8, 16, 3, stride=2)  # 16
    f1 = g.conv(x, 16, 16, 3, stride=2)  # 8
    f2 = g.conv(f1, 16, 16, 3, stride=2)  # 4
    bias = TINY_PRIOR_BIAS
    locs, confs = [], []
    for layer, fmap in enumerate((f1, f2)):
        a = anchors_per_location(layer, aspect_ratios=2)
        y_loc = g.conv(fmap, 16, a * 4, 3, act=None, gain=LOC_GAIN, prefix="box_loc")
        y_conf = g.conv(fmap, 16, a * (TINY_NUM_CLASSES + 1), 3, act=None, bias_mean=bias, prefix="cls_conf")
        loc, conf = head_outputs(g, y_loc, y_conf, TINY_NUM_CLASSES + 1)
        locs.append(loc)
        confs.append(conf)
    outputs = detection_postprocess(
        g,
        "input",
        g.op("Concat", locs, axis=1, prefix="box_encodings"),
        g.op("Concat", confs, axis=1, prefix="class_logits"),
        ssd_anchors((8, 4), aspect_ratios=(1.0, 2.0)),
        num_classes=TINY_NUM_CLASSES,
        k=TINY_MAX_DETECTIONS,
        iou_threshold=0.5,
        score_threshold=0.3,
    )
    return g.model(
        [float_input("input", 3, 64, 64)],
        outputs,
        doc="tiny_detector (inferload built-in test model; decode + NMS in graph)",
    )
