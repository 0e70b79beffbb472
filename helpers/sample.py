"""A small synthetic image set for offline demos: one folder per hashtag.

These are NOT Instagram photos. Every picture is painted here from numpy noise
and Pillow shapes: a procedural sunset, beach, forest, snow scene or city at
night, with random layout, colours, lighting and grain, so that pictures of one
hashtag differ from each other while a pretrained ImageNet network still tells
the hashtags apart. They let the workshop run end to end with no network and no
scraping; a model trained on them has learnt nothing about real photos.

``generate_sample("hashtags")`` writes ``hashtags/sunset/sunset_000.jpg`` and so
on. The same seed always gives the same bytes.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFAULT_TAGS = ("sunset", "beach", "forest", "snow", "citylights")
SAMPLE_NOTE = (
    "These are synthetic demo images painted by helpers.sample, not Instagram "
    "photos; a model trained on them shows the workflow, not real-world accuracy."
)
JPEG_QUALITY = 90

_Canvas = np.ndarray  # (H, W, 3) float32, 0..255


# --- painting primitives ---------------------------------------------------------------


def _jitter(rng: np.random.Generator, rgb, amount: float = 18.0) -> np.ndarray:
    """A colour moved at random by up to ``amount`` per channel."""
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _rgb(colour) -> tuple[int, int, int]:
    """A colour as the int triple Pillow wants."""
    r, g, b = np.clip(np.asarray(colour, np.float32), 0, 255).astype(int)
    return int(r), int(g), int(b)


def _gradient(h: int, w: int, stops) -> _Canvas:
    """A vertical gradient through ``stops`` = [(position 0..1, rgb), ...]."""
    pos = np.array([p for p, _ in stops], np.float32)
    cols = np.array([c for _, c in stops], np.float32)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)
    column = np.stack([np.interp(y, pos, cols[:, k]) for k in range(3)], axis=1)
    return np.repeat(column[:, None, :], w, axis=1).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid, smoothly upscaled."""
    ch, cw = max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))
    coarse = rng.uniform(0, 255, (ch, cw)).astype(np.uint8)
    up = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(up, np.float32) / 127.5 - 1.0


def _glow(h: int, w: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """A radial falloff (1 at the centre, 0 far away), shape (H, W, 1)."""
    yy, xx = np.ogrid[0:h, 0:w]
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (radius * radius)
    return np.exp(-d2, dtype=np.float32)[..., None]


class _Pen:
    """A transparent layer: each shape drawn in its colour, and opaque in the mask."""

    def __init__(self, w: int, h: int):
        self.rgb = Image.new("RGB", (w, h))
        self.mask = Image.new("L", (w, h))
        self._colour, self._alpha = ImageDraw.Draw(self.rgb), ImageDraw.Draw(self.mask)

    def __call__(self, kind: str, xy, colour, alpha: int = 255, **kw) -> None:
        """Draw one ``ImageDraw`` shape (``kind`` = "polygon", "ellipse", ...)."""
        getattr(self._colour, kind)(xy, fill=_rgb(colour), **kw)
        getattr(self._alpha, kind)(xy, fill=int(alpha), **kw)

    def onto(
        self,
        canvas: _Canvas,
        rng: np.random.Generator | None = None,
        texture: float = 0.0,
        blur: float = 0.0,
    ) -> _Canvas:
        """Composite this layer over ``canvas``, with grain ``texture`` and soft edges."""
        rgb, mask = self.rgb, self.mask
        if blur:
            rgb, mask = (
                rgb.filter(ImageFilter.GaussianBlur(blur)),
                mask.filter(ImageFilter.GaussianBlur(blur)),
            )
        layer = np.asarray(rgb, np.float32)
        if texture and rng is not None:
            layer = layer + texture * rng.standard_normal(canvas.shape[:2] + (1,), np.float32)
        alpha = np.asarray(mask, np.float32)[..., None] * (1.0 / 255.0)
        return canvas + (layer - canvas) * alpha

    def glow(self, blur: float) -> _Canvas:
        """This layer blurred, as light to add to a canvas."""
        return np.asarray(self.rgb.filter(ImageFilter.GaussianBlur(blur)), np.float32)


def _finish(
    canvas: _Canvas, rng: np.random.Generator, grain: float = 5.0, blur: float = 0.6
) -> Image.Image:
    """Add uneven lighting, a colour cast and sensor grain; return an RGB image."""
    h, w = canvas.shape[:2]
    light = 1.0 + 0.12 * _smooth_noise(rng, h, w, 3)[..., None]
    cast = rng.uniform(0.93, 1.07, 3).astype(np.float32) * rng.uniform(0.88, 1.1)
    out = canvas * light * cast + grain * rng.standard_normal((h, w, 3), np.float32)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(blur)) if blur else img


def _palm(pen: _Pen, x: float, base: float, top: float, rng: np.random.Generator, colour) -> None:
    """A palm tree: a leaning trunk and a crown of drooping fronds."""
    height = base - top
    lean = rng.uniform(-0.25, 0.25) * height
    tip = (x + lean, top)
    pen(
        "line",
        [(x, base), (x + lean * 0.4, (base + top) / 2), tip],
        colour,
        width=max(2, int(height * 0.045)),
    )
    for angle in np.linspace(0, np.pi, rng.integers(6, 10)) + rng.normal(0, 0.15, 1):
        length = height * rng.uniform(0.25, 0.42)
        dx, droop = np.cos(angle) * length, length * rng.uniform(0.25, 0.6)
        mid = (tip[0] + dx * 0.55, tip[1] - length * 0.18)
        end = (tip[0] + dx, tip[1] + droop)
        pen(
            "polygon",
            [tip, (mid[0], mid[1] - length * 0.07), end, (mid[0], mid[1] + length * 0.07)],
            colour,
        )


# --- scenes ------------------------------------------------------------------------------


def _sunset(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Orange-to-purple sky, a low sun, a dark silhouette of sea or hills."""
    horizon = int(h * rng.uniform(0.55, 0.75))
    top = _jitter(rng, [[60, 30, 90], [40, 30, 80], [90, 40, 100]][rng.integers(3)], 20)
    mid = _jitter(rng, [215, 80, 70], 25)
    low = _jitter(rng, [255, 165, 60], 20)
    band = horizon / h
    canvas = _gradient(h, w, [(0, top), (band * rng.uniform(0.4, 0.6), mid), (band, low), (1, low)])
    sx, sy = rng.uniform(0.15, 0.85) * w, horizon - rng.uniform(-0.02, 0.1) * h
    radius = rng.uniform(0.07, 0.15) * min(w, h)
    canvas += _glow(h, w, sx, sy, radius * 4) * _jitter(rng, [120, 70, 10], 15)
    sky = _Pen(w, h)
    sky(
        "ellipse",
        [sx - radius, sy - radius, sx + radius, sy + radius],
        _jitter(rng, [255, 230, 150], 10),
    )
    canvas = sky.onto(canvas, blur=1.5)
    clouds = _Pen(w, h)
    for _ in range(rng.integers(2, 7)):  # thin glowing cloud streaks
        cy, cx = rng.uniform(0.1, 0.9) * horizon, rng.uniform(-0.1, 1.0) * w
        cw, ch = rng.uniform(0.2, 0.6) * w, rng.uniform(0.01, 0.035) * h
        clouds("ellipse", [cx, cy, cx + cw, cy + ch], _jitter(rng, [150, 60, 110], 30), 200)
    canvas = clouds.onto(canvas, blur=3)
    dark = _jitter(rng, [30, 15, 30], 10)
    ground = _Pen(w, h)
    if rng.random() < 0.5:  # sea with the sun's reflection
        ground("rectangle", [0, horizon, w, h], dark * 1.6)
        glint = _jitter(rng, [250, 150, 60], 20)
        for y in range(horizon + 2, h, 3):
            half = rng.uniform(0.2, 1.0) * radius * (1 + 2 * (y - horizon) / h)
            x0 = sx + rng.normal(0, 3) - half
            ground("line", [x0, y, x0 + 2 * half, y], glint * rng.uniform(0.6, 1.0))
    else:  # rolling hills
        xs = np.linspace(0, w, 9)
        ys = horizon + rng.uniform(-0.08, 0.04, 9) * h
        ground("polygon", list(zip(xs, ys)) + [(w, h), (0, h)], dark)
    for _ in range(rng.integers(0, 4)):  # silhouetted palms
        tx, base = rng.uniform(0, w), h - rng.uniform(0, 0.15) * h
        _palm(ground, tx, base, base - rng.uniform(0.25, 0.55) * h, rng, dark * 0.6)
    canvas = ground.onto(canvas, rng, texture=3)
    return _finish(canvas, rng, grain=4)


def _beach(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Blue sky, a turquoise sea with waves and foam, textured sand, maybe a parasol."""
    horizon = int(h * rng.uniform(0.3, 0.48))
    shore = int(h * rng.uniform(0.58, 0.72))
    canvas = _gradient(
        h,
        w,
        [
            (0, _jitter(rng, [60, 130, 215], 20)),
            (horizon / h, _jitter(rng, [175, 215, 240], 15)),
            (1, [0, 0, 0]),
        ],
    )
    clouds = _Pen(w, h)
    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.8) * horizon
        cw, ch = rng.uniform(0.1, 0.3) * w, rng.uniform(0.04, 0.1) * h
        clouds("ellipse", [cx, cy, cx + cw, cy + ch], [250, 250, 252], 230)
    canvas = clouds.onto(canvas, blur=4)
    deep, shallow = _jitter(rng, [20, 95, 160], 15), _jitter(rng, [60, 200, 200], 20)
    sea = _gradient(shore - horizon, w, [(0, deep), (1, shallow)])
    canvas[horizon:shore] = sea * (1 + 0.08 * _smooth_noise(rng, shore - horizon, w, 8)[..., None])
    sand = _jitter(rng, [225, 200, 150], 18)
    sand_layer = _gradient(h - shore, w, [(0, sand * 0.92), (1, sand)])
    sand_layer *= 1 + 0.07 * _smooth_noise(rng, h - shore, w, 20)[..., None]
    canvas[shore:] = sand_layer + 9 * rng.standard_normal((h - shore, w, 1), np.float32)
    waves = _Pen(w, h)
    phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 3.0)
    xs = np.arange(0, w + 8, 8, dtype=np.float32)
    for k, y in enumerate(np.linspace(horizon + 4, shore - 3, rng.integers(4, 9))):
        ys = y + amp * np.sin(xs / rng.uniform(12, 30) + phase + k)
        waves("line", list(zip(xs, ys)), [235, 250, 250], 170, width=1 + k // 3)
    xs = np.arange(0, w + 6, 6, dtype=np.float32)
    waves("line", list(zip(xs, shore + 2 * np.sin(xs / 17 + phase))), [248, 250, 248], width=4)
    canvas = waves.onto(canvas, blur=0.8)
    props = _Pen(w, h)
    if rng.random() < 0.6:  # a beach parasol
        px, py = rng.uniform(0.1, 0.9) * w, rng.uniform(shore + 0.1 * h, h * 0.95)
        r = rng.uniform(0.08, 0.15) * w
        colour = [[220, 50, 50], [240, 200, 40], [40, 120, 220]][rng.integers(3)]
        props("line", [px, py, px, py - 1.3 * r], [240, 240, 235], width=2)
        props(
            "pieslice",
            [px - r, py - 1.7 * r, px + r, py - 0.9 * r],
            _jitter(rng, colour, 15),
            start=180,
            end=360,
        )
    if rng.random() < 0.5:  # a palm at one side
        tx = (rng.uniform(0, 0.2) if rng.random() < 0.5 else rng.uniform(0.8, 1.0)) * w
        _palm(
            props,
            tx,
            h * rng.uniform(0.8, 1.0),
            h * rng.uniform(0.05, 0.3),
            rng,
            _jitter(rng, [60, 90, 40], 15),
        )
    canvas = props.onto(canvas, rng, texture=6)
    return _finish(canvas, rng, grain=4)


def _forest(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Rows of conifers and broadleaf trees, a dark floor, dappled sunlight."""
    canvas = _gradient(
        h,
        w,
        [
            (0, _jitter(rng, [170, 200, 170], 25)),
            (0.6, _jitter(rng, [80, 120, 70], 20)),
            (1, [0, 0, 0]),
        ],
    )
    floor_y = int(h * rng.uniform(0.7, 0.85))
    floor = _gradient(
        h - floor_y, w, [(0, _jitter(rng, [40, 65, 30], 12)), (1, _jitter(rng, [55, 45, 25], 12))]
    )
    canvas[floor_y:] = floor * (1 + 0.2 * _smooth_noise(rng, h - floor_y, w, 24)[..., None])
    for depth in np.linspace(0.0, 1.0, 4):  # far rows first: paler, smaller
        shade = 0.7 + 0.4 * (1 - depth)
        row = _Pen(w, h)
        for _ in range(rng.integers(6, 14)):
            x = rng.uniform(-0.05, 1.05) * w
            base = floor_y + depth * (h - floor_y) * rng.uniform(0.3, 1.0)
            height = h * rng.uniform(0.35, 0.8) * (0.6 + 0.6 * depth)
            green = _jitter(rng, [35, 95, 40], 22) * shade
            tw = max(2.0, height * rng.uniform(0.03, 0.06))
            row(
                "rectangle",
                [x - tw / 2, base - height * 0.8, x + tw / 2, base],
                _jitter(rng, [80, 55, 35], 12) * shade,
            )
            if rng.random() < 0.6:  # conifer: stacked triangles
                spread = height * rng.uniform(0.18, 0.3)
                for k in range(4):
                    y0, s = base - height * (0.25 + 0.19 * k), spread * (1 - 0.2 * k)
                    row(
                        "polygon",
                        [(x - s, y0), (x + s, y0), (x, y0 - height * 0.35)],
                        green * (0.9 + 0.06 * k),
                    )
            else:  # broadleaf: a cluster of round crowns
                cx, cy, r = x, base - height * 0.75, height * rng.uniform(0.18, 0.28)
                for _ in range(5):
                    bx, by = cx + rng.normal(0, r * 0.5), cy + rng.normal(0, r * 0.4)
                    br = r * rng.uniform(0.5, 0.9)
                    row(
                        "ellipse",
                        [bx - br, by - br, bx + br, by + br],
                        green * rng.uniform(1.0, 1.25),
                    )
        canvas = row.onto(canvas, rng, texture=10)
    dapple = np.clip(_smooth_noise(rng, h, w, 30) - rng.uniform(0.2, 0.5), 0, None)[..., None]
    canvas += dapple * _jitter(rng, [170, 170, 90], 20)
    return _finish(canvas, rng, grain=6)


def _snow(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Pale sky, snow-capped mountains, white ground with blue shadows, falling snow."""
    horizon = int(h * rng.uniform(0.45, 0.65))
    canvas = _gradient(
        h,
        w,
        [
            (0, _jitter(rng, [175, 195, 215], 15)),
            (horizon / h, _jitter(rng, [225, 230, 238], 10)),
            (1, [0, 0, 0]),
        ],
    )
    for layer in range(rng.integers(1, 3) + 1):
        peaks = rng.integers(2, 5)
        xs = np.sort(rng.uniform(-0.1, 1.1, peaks * 2 + 1)) * w
        ys = np.where(
            np.arange(xs.size) % 2 == 1,
            horizon - rng.uniform(0.15, 0.4, xs.size) * h * (1 - 0.25 * layer),
            horizon - rng.uniform(0.0, 0.08, xs.size) * h,
        )
        ridge = list(zip(xs, ys))
        range_pen = _Pen(w, h)
        range_pen(
            "polygon",
            ridge + [(w * 1.2, horizon + 2), (-w * 0.2, horizon + 2)],
            _jitter(rng, [95, 105, 125], 15) * (1 + 0.15 * layer),
        )
        for (x0, y0), (x1, y1), (x2, y2) in zip(ridge, ridge[1:], ridge[2:]):
            if y1 < y0 and y1 < y2:  # cap each peak with snow
                f = rng.uniform(0.35, 0.6)
                range_pen(
                    "polygon",
                    [
                        (x1, y1),
                        (x1 + (x2 - x1) * f, y1 + (y2 - y1) * f),
                        (x1 + (x2 - x1) * f * 0.5, y1 + (y2 - y1) * f * 0.8),
                        (x1 + (x0 - x1) * f * 0.5, y1 + (y0 - y1) * f * 0.7),
                        (x1 + (x0 - x1) * f, y1 + (y0 - y1) * f),
                    ],
                    [245, 247, 252],
                )
        canvas = range_pen.onto(canvas, rng, texture=8)
    ground = _gradient(
        h - horizon,
        w,
        [(0, _jitter(rng, [225, 232, 242], 8)), (1, _jitter(rng, [245, 247, 252], 5))],
    )
    drifts = np.clip(_smooth_noise(rng, h - horizon, w, 10), 0, None)[..., None]
    canvas[horizon:] = ground + drifts * _jitter(rng, [-45, -25, 5], 8)
    trees = _Pen(w, h)
    for _ in range(rng.integers(0, 6)):  # a few dark firs
        x, base = rng.uniform(0, w), rng.uniform(horizon, h)
        height = (base - horizon + 10) * rng.uniform(0.8, 1.6)
        trees(
            "polygon",
            [(x - height * 0.22, base), (x + height * 0.22, base), (x, base - height)],
            _jitter(rng, [35, 60, 50], 10),
        )
    canvas = trees.onto(canvas, rng, texture=25)
    flakes = _Pen(w, h)
    for _ in range(rng.integers(150, 600)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.6, 2.2)
        flakes("ellipse", [x - r, y - r, x + r, y + r], [252, 252, 255])
    canvas = flakes.onto(canvas, blur=0.6)
    return _finish(canvas, rng, grain=4, blur=0.4)


def _citylights(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A night skyline: dark towers full of lit windows, a glowing haze, bokeh lights."""
    canvas = _gradient(
        h, w, [(0, _jitter(rng, [8, 10, 30], 6)), (1, _jitter(rng, [55, 35, 70], 15))]
    )
    stars = rng.integers(20, 60)
    canvas[rng.integers(0, h // 2, stars), rng.integers(0, w, stars)] += 120
    for row in range(2):  # far row, then near row
        city = _Pen(w, h)
        x = rng.uniform(-20, 0)
        while x < w:
            bw = rng.uniform(0.06, 0.16) * w * (1 + row * 0.3)
            top = h * rng.uniform(0.15, 0.6) + row * h * 0.15
            body = _jitter(rng, [22, 24, 38], 8) * (1.4 - row * 0.4)
            city("rectangle", [x, top, x + bw, h], body)
            cell_w, cell_h = rng.uniform(4, 8), rng.uniform(5, 9)
            lit_share = rng.uniform(0.3, 0.75)
            warm = _jitter(rng, [255, 205, 110], 20)
            for wy in np.arange(top + 3, h - 2, cell_h):
                for wx in np.arange(x + 2, x + bw - cell_w * 0.6, cell_w):
                    if rng.random() < lit_share:
                        city(
                            "rectangle",
                            [wx, wy, wx + cell_w * 0.55, wy + cell_h * 0.5],
                            warm * rng.uniform(0.55, 1.0),
                        )
            x += bw + rng.uniform(-3, 6)
        canvas = city.onto(canvas, rng, texture=3)
    canvas += _glow(h, w, w / 2, h * 1.1, w * 0.6) * _jitter(rng, [60, 35, 15], 15)
    bokeh = _Pen(w, h)
    palette = ([255, 180, 60], [255, 90, 60], [255, 230, 160], [120, 170, 255])
    for _ in range(rng.integers(6, 20)):
        bx, by, r = rng.uniform(0, w), rng.uniform(0.3, 1.0) * h, rng.uniform(4, 18)
        bokeh("ellipse", [bx - r, by - r, bx + r, by + r], palette[rng.integers(4)])
    return _finish(canvas + 0.5 * bokeh.glow(2.5), rng, grain=5, blur=0.5)


_SCENES: dict[str, Callable[[np.random.Generator, int, int], Image.Image]] = {
    "sunset": _sunset,
    "beach": _beach,
    "forest": _forest,
    "snow": _snow,
    "citylights": _citylights,
}


# --- public API --------------------------------------------------------------------------


def render(tag: str, rng: np.random.Generator, size=(320, 240)) -> Image.Image:
    """One synthetic scene for a tag (one of DEFAULT_TAGS), ``size`` = (width, height)."""
    if tag not in _SCENES:
        raise ValueError(f"no synthetic scene for {tag!r}: choose from {', '.join(_SCENES)}")
    w, h = _check_size(size)
    return _SCENES[tag](rng, w, h)


def _check_size(size) -> tuple[int, int]:
    """(width, height) as ints, refusing images smaller than 16x16."""
    w, h = (int(v) for v in size)
    if w < 16 or h < 16:
        raise ValueError(f"image size must be at least 16x16, got {w}x{h}")
    return w, h


def _image_rng(seed: int, tag: str, index: int) -> np.random.Generator:
    """The generator for one image: depends only on (seed, tag, index)."""
    return np.random.default_rng([int(seed), zlib.crc32(tag.encode()), int(index)])


def _write_atomic(img: Image.Image, path: Path) -> None:
    """Save ``img`` as JPEG under a temporary name beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, "JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _count_samples(folder: Path, tag: str) -> int:
    """How many ``<tag>_NNN.jpg`` files ``folder`` holds."""
    pattern = re.compile(rf"{re.escape(tag)}_\d+\.jpg")
    return sum(1 for p in folder.iterdir() if p.is_file() and pattern.fullmatch(p.name))


def _check_tags(tags: Sequence[str]) -> list[str]:
    """Refuse unknown, repeated or path-like tag names."""
    tags = [tags] if isinstance(tags, str) else list(tags)
    unknown = [t for t in tags if t not in _SCENES]
    if unknown:
        raise ValueError(
            f"no synthetic scene for {', '.join(map(repr, unknown))}: "
            f"choose from {', '.join(_SCENES)}"
        )
    if len(set(tags)) != len(tags):
        raise ValueError(f"repeated tags in {tags}")
    return tags


def generate_sample(
    dest, per_tag: int = 40, tags=DEFAULT_TAGS, seed: int = 0, size=(320, 240)
) -> dict[str, int]:
    """Write per_tag JPEGs for each tag under dest/<tag>/ and return {tag: count written}.

    Files are named ``dest/<tag>/<tag>_NNN.jpg`` (NNN = 000 .. per_tag-1, at least three
    digits). Image NNN depends only on (seed, tag, NNN), so the output is the same byte
    for byte on every run with the same arguments.

    Existing files are never overwritten: if ``<tag>_NNN.jpg`` is already there it is
    skipped, whatever it holds. So a rerun is cheap, finishes an interrupted run, and
    leaves hand-placed files alone. Each new file is written to a hidden temporary
    name in the same folder and renamed into place, so a reader never sees half a JPEG.

    Returns:
        For each tag, the number of ``<tag>_NNN.jpg`` files in ``dest/<tag>/`` after the
        call (new and already present, including any beyond per_tag from earlier runs).
    """
    if per_tag < 0:
        raise ValueError(f"per_tag must be >= 0, got {per_tag}")
    tags = _check_tags(tags)
    _check_size(size)
    dest = Path(dest)
    digits = max(3, len(str(max(per_tag - 1, 0))))
    counts = {}
    for tag in tags:
        folder = dest / tag
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_tag):
            path = folder / f"{tag}_{index:0{digits}d}.jpg"
            if not path.exists():
                _write_atomic(render(tag, _image_rng(seed, tag, index), size), path)
        counts[tag] = _count_samples(folder, tag)
    return counts
