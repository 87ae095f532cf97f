"""Image preprocessing: allowlist (415), pixel cap before decode (413), garbage (400), geometry and normalisation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from server.preprocess import output_shape, preprocess_image, sniff_format
from server.repository import ImageConfig


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def solid(w: int, h: int, rgb=(255, 0, 0), mode="RGB") -> Image.Image:
    return Image.new(mode, (w, h), rgb)


CFG = ImageConfig(height=32, width=32, resize=36)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_jpeg_and_png_decode_to_model_tensor(fmt):
    x = preprocess_image(encode(solid(80, 60), fmt), CFG)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32 and x.flags.c_contiguous
    # pure red: R = (1 - 0.485)/0.229, G = (0 - 0.456)/0.224
    assert x[0].mean() == pytest.approx((1 - 0.485) / 0.229, abs=0.05)
    assert x[1].mean() == pytest.approx((0 - 0.456) / 0.224, abs=0.05)


def test_png_with_alpha_and_grayscale_become_rgb():
    assert preprocess_image(encode(solid(40, 40, (1, 2, 3, 4), "RGBA"), "PNG"), CFG).shape == (3, 32, 32)
    assert preprocess_image(encode(solid(40, 40, 128, "L"), "PNG"), CFG).shape == (3, 32, 32)


def test_nhwc_bgr_layout_and_exact_values():
    cfg = ImageConfig(
        height=8,
        width=8,
        resize=None,
        layout="NHWC",
        channel_order="BGR",
        mean=[0.0, 0.0, 0.0],
        std=[1.0, 1.0, 1.0],
        scale=1.0,
    )
    x = preprocess_image(encode(solid(8, 8, (10, 20, 30)), "PNG"), cfg)
    assert x.shape == (8, 8, 3) == output_shape(cfg)
    np.testing.assert_allclose(x[0, 0], [30, 20, 10])


def test_resize_shorter_side_then_center_crop():
    # left half black, right half white, 200x100 → shorter side 36 → 72x36 → center crop 32x32 straddles the edge
    img = Image.new("RGB", (200, 100), (0, 0, 0))
    img.paste((255, 255, 255), (100, 0, 200, 100))
    cfg = ImageConfig(height=32, width=32, resize=36, mean=[0, 0, 0], std=[1, 1, 1])
    x = preprocess_image(encode(img, "PNG"), cfg)
    assert x[0, :, 0].mean() < 0.1 and x[0, :, -1].mean() > 0.9


def test_large_jpeg_uses_reduced_decode_and_is_close():
    img = Image.radial_gradient("L").resize((1024, 768)).convert("RGB")
    data = encode(img, "JPEG", quality=95)
    cfg = ImageConfig(height=32, width=32, resize=36)
    x = preprocess_image(data, cfg)
    ref = np.asarray(img.resize((48, 36), Image.Resampling.BILINEAR).crop((8, 2, 40, 34)), dtype=np.float32)
    ref = (ref / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.abs(x.transpose(1, 2, 0) - ref).mean() < 0.1


def test_gif_is_415():
    with pytest.raises(UnsupportedMediaType) as e:
        preprocess_image(encode(solid(10, 10), "GIF"), CFG)
    assert e.value.status == 415


def test_bmp_is_415_even_when_pil_could_read_it():
    with pytest.raises(UnsupportedMediaType):
        sniff_format(encode(solid(10, 10), "BMP"))


def test_garbage_is_400():
    with pytest.raises(BadRequest) as e:
        preprocess_image(b"\xff\xd8\xff" + b"garbage" * 20, CFG)
    assert e.value.status == 400
    with pytest.raises(BadRequest):
        preprocess_image(b"", CFG)
    truncated = encode(solid(64, 64), "PNG")[:60]
    with pytest.raises(BadRequest):
        preprocess_image(truncated, CFG)


def test_pixel_cap_is_413_before_decoding():
    cfg = ImageConfig(height=32, width=32, resize=36, max_pixels=100 * 100)
    with pytest.raises(PayloadTooLarge) as e:
        preprocess_image(encode(solid(101, 100), "PNG"), cfg)
    assert e.value.status == 413 and "10100 pixels" in e.value.message


def test_decompression_bomb_header_is_413():
    # A PNG header claiming 100000 x 100000 pixels: rejected from the header alone (never decoded).
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    with pytest.raises(PayloadTooLarge):
        preprocess_image(png, CFG)
