"""Finding and decoding images: every format quirk handled in one place.

Decoding uses Pillow because TensorFlow's decoders ignore EXIF orientation and
cannot read CMYK JPEGs, 16-bit greys or WebP. The result is always an RGB uint8
array; anything that cannot become one raises :class:`ImageError`, which callers
turn into a "skipped" line of their report rather than a crash.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
MAX_PIXELS = 50_000_000  # refuse decompression bombs long before memory runs out
_BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white


class ImageError(ValueError):
    """A file or byte string that cannot be decoded into an RGB image.

    ``code`` says which kind: ``empty``, ``not_an_image``, ``too_many_pixels``,
    ``undecodable`` (a known format, but damaged) or ``unreadable`` (file I/O).
    """

    def __init__(self, message: str, code: str = "undecodable"):
        super().__init__(message)
        self.code = code


def is_image_name(path: str | Path) -> bool:
    """True if the file name has an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursively, hidden files skipped), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and is_image_name(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The image format named by the first bytes, or None (HTML, SVG, text, ...)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: greys, palettes, CMYK, alpha, 16-bit."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(img, dtype=np.uint32)
        peak = 65535 if img.mode.startswith("I;16") or wide.max() > 255 else 255
        grey = (wide.astype(np.float32) * (255.0 / peak)).round().clip(0, 255)
        img = Image.fromarray(grey.astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.asarray(img).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_image(data: bytes, size: int | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes into an (H, W, 3) uint8 RGB array, EXIF-rotated.

    With ``size``, the image is resized to (size, size) with Pillow's bilinear
    filter, which is antialiased like ``tf.image.resize(..., antialias=True)``
    (the in-graph rule of :meth:`helpers.backbones.Backbone.preprocess`; they
    agree to about one grey level). JPEGs much larger than ``size`` are decoded
    at a reduced scale first (Pillow's draft mode), a large saving on photos.
    """
    if not data:
        raise ImageError("empty file", "empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise ImageError(
                    f"{img.width}x{img.height} pixels is more than the limit of {max_pixels:,}",
                    "too_many_pixels",
                )
            if size and img.format == "JPEG":
                img.draft("RGB", (size, size))
            img.load()
            img = _to_rgb(ImageOps.exif_transpose(img))
            if size and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)", "not_an_image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(str(exc), "too_many_pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot decode image: {exc}") from None


def read_image(
    path: str | Path, size: int | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read and decode an image file; see :func:`decode_image`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}", "unreadable") from None
    return decode_image(data, size=size, max_pixels=max_pixels)
