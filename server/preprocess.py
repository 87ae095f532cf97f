"""Encoded image → model tensor, per the model's `[image]` config. Pure CPU work: the service runs it in a
thread pool, off the event loop.

Safety: only JPEG and PNG (sniffed from magic bytes, not trusted from headers) → else 415; the pixel count is
checked from the image header *before* decoding (width*height > max_pixels → 413), and PIL's own
decompression-bomb guard is turned into 413 too; undecodable data → 400.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from server.repository import ImageConfig

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALLOWED_FORMATS = ("JPEG", "PNG")

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def sniff_format(data: bytes) -> str:
    """'JPEG' or 'PNG' from the magic bytes; anything else → 415."""
    if data[:3] == JPEG_MAGIC:
        return "JPEG"
    if data[:8] == PNG_MAGIC:
        return "PNG"
    if not data:
        raise BadRequest("empty image")
    raise UnsupportedMediaType("image format not allowed: only JPEG and PNG are accepted")


def _norm_constants(cfg: ImageConfig) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    if cfg.channel_order == "BGR":
        mean, std = mean[::-1], std[::-1]
    mul = (np.float32(cfg.scale) / std).astype(np.float32)
    add = (-mean / std).astype(np.float32)
    return mul, add


def output_shape(cfg: ImageConfig) -> tuple[int, int, int]:
    """Shape of one preprocessed image (no batch dimension)."""
    return (3, cfg.height, cfg.width) if cfg.layout == "NCHW" else (cfg.height, cfg.width, 3)


def _resized(img: Image.Image, cfg: ImageConfig) -> Image.Image:
    """Shorter side → `resize`, then the center `height` x `width` crop — computed in one PIL resize of just the
    source box that the crop keeps (same result, ~half the work of resizing the whole picture first)."""
    resample = _RESAMPLE[cfg.interpolation]
    w, h = img.size
    if cfg.resize is None or cfg.crop == "none":
        return img.resize((cfg.width, cfg.height), resample)
    scale = cfg.resize / min(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if nw < cfg.width or nh < cfg.height:  # crop larger than the resized picture: resize, then pad by cropping
        img = img.resize((nw, nh), resample)
        left, top = (nw - cfg.width) // 2, (nh - cfg.height) // 2
        return img.crop((left, top, left + cfg.width, top + cfg.height))
    sx, sy = w / nw, h / nh
    left, top = (nw - cfg.width) // 2, (nh - cfg.height) // 2
    box = (left * sx, top * sy, (left + cfg.width) * sx, (top + cfg.height) * sy)
    return img.resize((cfg.width, cfg.height), resample, box=box)


def decode_image(data: bytes, cfg: ImageConfig) -> Image.Image:
    """Checked decode to an RGB PIL image (allowlist, pixel cap before decode, errors → 400)."""
    fmt = sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            w, h = img.size
            if w * h > cfg.max_pixels:
                raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {cfg.max_pixels}")
            if w < 1 or h < 1:
                raise BadRequest(f"image has an empty size {w}x{h}")
            if fmt == "JPEG" and cfg.resize is not None and cfg.crop == "center":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the picture is much larger than needed.
                short = min(w, h)
                need = max(cfg.resize, cfg.height, cfg.width)
                if short >= 2 * need:
                    img.draft("RGB", (max(1, w * need // short), max(1, h * need // short)))
            img = img.convert("RGB")  # forces the full decode
    except Image.DecompressionBombError as e:
        raise PayloadTooLarge(f"image rejected as a decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as e:
        raise BadRequest(f"cannot decode {fmt} image: {e}") from None
    return img


def preprocess_image(data: bytes, cfg: ImageConfig) -> np.ndarray:
    """Encoded JPEG/PNG bytes → float32 tensor of `output_shape(cfg)`."""
    img = _resized(decode_image(data, cfg), cfg)
    u8 = np.asarray(img)  # H, W, 3 (RGB) uint8
    order = (2, 1, 0) if cfg.channel_order == "BGR" else (0, 1, 2)
    mul, add = _norm_constants(cfg)
    if cfg.layout == "NCHW":
        out = np.empty((3, cfg.height, cfg.width), dtype=np.float32)
        for c, src in enumerate(order):  # uint8 plane → scaled float32 plane, no HWC float temporary
            np.multiply(u8[:, :, src], mul[c], out=out[c], casting="unsafe")
            out[c] += add[c]
        return out
    x = u8[:, :, list(order)].astype(np.float32)
    x *= mul
    x += add
    return x
