"""Encoded images for `--payload image` and `{{image:...}}` templates: seeded synthetic JPEGs that look like photos to
a codec, or the JPEG/PNG files of a directory."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from loadgen.engine.tensors import PayloadError

IMAGE_SIZES = [(224, 224), (256, 256), (320, 240), (400, 300)]


def synthetic_images(n: int, seed: int, sizes: list[tuple[int, int]] = IMAGE_SIZES, quality: int = 88) -> list[bytes]:
    """n seeded JPEGs that look like photos to a codec: gradients, low-frequency noise, shapes."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            a, b, c0 = rng.uniform(-1, 1, 3)
            img[..., c] = 128 + 90 * (a * xx / w + b * yy / h) * 0.8 + 40 * c0
        low = rng.normal(0, 1, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
        low = np.kron(low, np.ones((16, 16, 1), np.float32))[:h, :w]
        img += 18 * low + rng.normal(0, 6, (h, w, 3))
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(3, 8))):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=color)
        pil = pil.filter(ImageFilter.GaussianBlur(0.6))
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def load_images(directory: str) -> list[bytes]:
    d = Path(directory)
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if d.is_dir() else []
    if not files:
        raise PayloadError(f"--images {directory}: no .jpg/.jpeg/.png files found")
    return [p.read_bytes() for p in files]


def _jpeg_with_comment(jpeg: bytes, text: bytes) -> bytes:
    """Insert a COM segment after SOI: different bytes, identical pixels."""
    if jpeg[:2] != b"\xff\xd8":
        return jpeg
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]
