"""Synthetic images of written numbers, composed from MNIST digits (seeded).

A number of 2-8 digits is drawn, each digit an MNIST image of that class, scaled
to a common height with some jitter, and laid out in one of :data:`LAYOUTS`:

- ``spaced``: gaps of 0.15-0.7 digit heights between digits;
- ``touching``: neighbours overlap by 2-15% of the height, so strokes touch or cross;
- ``boxed``: one printed box per digit, as on a form (:func:`mnistlab.data.paper.box_frame`);
- ``ruled``: spaced digits on ruled paper, the rule often through or under the digits
  (:func:`mnistlab.data.paper.draw_paper`);
- ``photo``: a larger page, the number off-centre and slightly turned, uneven light,
  grey paper, sensor noise and a little blur.

In every layout some digits (10%) have a stroke broken by a gap. Images are dark
ink on light paper, uint8. The same ``seed`` gives the same images. Benchmark
sets take digits from the MNIST test split, choices are made on sets from the
validation part of the train split, and the sequence model trains on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.data.paper import box_frame, draw_paper

__all__ = ["LAYOUTS", "NumberImage", "compose_number", "compose_set"]

LAYOUTS = ("spaced", "touching", "boxed", "ruled", "photo")
# Share of digits with a broken stroke.
BROKEN_SHARE = 0.1


@dataclass(frozen=True)
class NumberImage:
    """One composed image: ``image`` uint8 (H, W) dark ink on light paper, its ``text``.

    ``owners`` (only when asked for, to train the reader's verifier): int16 (H, W),
    ``k + 1`` where digit ``k``'s ink is, 0 on paper and printed lines.
    """

    image: np.ndarray
    text: str
    layout: str
    owners: np.ndarray | None = None


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    return np.clip(np.asarray(im.resize((width, height), Image.Resampling.BILINEAR)), 0, 1)


def _digit_ink(digit: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit's ink (float, cropped), scaled to ``height`` px, maybe broken."""
    ink = digit.astype(np.float32) / 255
    ys, xs = np.nonzero(ink > 0.1)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = height / ink.shape[0]
    ink = _resize(ink, max(1, round(ink.shape[1] * scale)), max(1, round(height)))
    if rng.random() < BROKEN_SHARE:
        # A gap across one stroke: a band 6-10% of the height wide at a random angle.
        h, w = ink.shape
        yy, xx = np.mgrid[0:h, 0:w]
        angle = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.3, 0.7) * w
        dist = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
        ink = np.where(dist < rng.uniform(0.03, 0.05) * h, 0, ink).astype(np.float32)
    return ink


def _place(
    inks: list[np.ndarray], gaps: list[float], jitter: np.ndarray, margin: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """Lay inks left to right with the given gaps (px, negative = overlap) on one canvas.

    Returns the canvas, its owner map (``k + 1`` where digit ``k`` is the darker ink)
    and each digit's box."""
    height = max(i.shape[0] for i in inks)
    xs = [0.0]
    for ink, gap in zip(inks[:-1], gaps, strict=True):
        xs.append(xs[-1] + ink.shape[1] + gap)
    left = -min(0.0, min(xs))
    width = int(max(x + left + i.shape[1] for x, i in zip(xs, inks, strict=True))) + 2 * margin
    top_room = int(np.abs(jitter).max()) + margin
    canvas = np.zeros((height + 2 * top_room, width), np.float32)
    owners = np.zeros(canvas.shape, np.int16)
    boxes = []
    for k, (x, dy, ink) in enumerate(zip(xs, jitter, inks, strict=True)):
        x0 = int(round(x + left)) + margin
        y0 = top_room + int(dy) + (height - ink.shape[0]) // 2
        region = canvas[y0 : y0 + ink.shape[0], x0 : x0 + ink.shape[1]]
        mine = owners[y0 : y0 + ink.shape[0], x0 : x0 + ink.shape[1]]
        mine[(ink > 0.1) & (ink >= region)] = k + 1
        np.maximum(region, ink, out=region)
        boxes.append((x0, y0, x0 + ink.shape[1], y0 + ink.shape[0]))
    return canvas, owners, boxes


def compose_number(digits: list[np.ndarray], layout: str, rng: np.random.Generator) -> np.ndarray:
    """Compose MNIST digit images (uint8 28x28) into one number image of ``layout``.

    Returns
    -------
    uint8 (H, W), dark ink on light paper.
    """
    return _compose(digits, layout, rng)[0]


def _compose(
    digits: list[np.ndarray], layout: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compose_number` and the image's owner map (see :class:`NumberImage`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    big = layout == "photo"
    height = float(rng.uniform(48, 80) if big else rng.uniform(28, 48))
    inks = [_digit_ink(d, height * rng.uniform(0.85, 1.05), rng) for d in digits]
    n = len(inks)
    touching = layout == "touching" or (big and rng.random() < 0.3)
    if touching:
        gaps = [-height * rng.uniform(0.02, 0.15) for _ in range(n - 1)]
    elif layout == "boxed":
        gaps = [height * rng.uniform(0.45, 0.7) for _ in range(n - 1)]
    else:
        gaps = [height * rng.uniform(0.15, 0.7) for _ in range(n - 1)]
    jitter = rng.uniform(-0.08, 0.08, n) * height
    margin = round(height * rng.uniform(0.4, 0.8))
    ink, owners, boxes = _place(inks, gaps, jitter, margin)
    if layout == "boxed":
        ink = np.maximum(ink, _boxes(ink.shape, boxes, height, rng))
    elif layout == "ruled":
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        box = (float(x0), float(y0), float(x1), float(y1))
        page = draw_paper(ink.shape, "ruled", rng, digit_box=box, touching=rng.random() < 0.5)
        ink = np.maximum(ink, page)
    if big:
        return _photo(ink, owners, rng)
    contrast = rng.uniform(0.8, 1.0)
    return np.round((1 - contrast * ink) * 255).astype(np.uint8), owners


def _boxes(
    shape: tuple[int, int],
    boxes: list[tuple[int, int, int, int]],
    height: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One printed box per digit, centred on it, all of one size as on a form."""
    side = height * rng.uniform(1.15, 1.35)
    thickness, contrast = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.5, 1.0))
    page = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cell = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        page = np.maximum(page, box_frame(shape, cell, thickness=thickness, contrast=contrast))
    return page


def _photo(
    ink: np.ndarray, owners: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The number on a larger, unevenly lit grey page, off-centre and slightly turned."""
    angle = rng.uniform(-5, 5)
    ink = ndimage.rotate(ink, angle, reshape=True, order=1)
    owners = ndimage.rotate(owners, angle, reshape=True, order=0)
    h, w = ink.shape
    page_h, page_w = int(h * rng.uniform(1.6, 2.6)), int(w * rng.uniform(1.2, 1.8))
    page = np.zeros((page_h, page_w), np.float32)
    owner_page = np.zeros((page_h, page_w), np.int16)
    top, left = int(rng.integers(0, page_h - h + 1)), int(rng.integers(0, page_w - w + 1))
    page[top : top + h, left : left + w] = np.clip(ink, 0, 1)
    owner_page[top : top + h, left : left + w] = owners
    yy, xx = np.mgrid[0:page_h, 0:page_w].astype(np.float32)
    # Light falling from one side: the paper's brightness varies by up to 35%.
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xx / page_w - 0.5) * np.cos(angle) + (yy / page_h - 0.5) * np.sin(angle)
    paper = rng.uniform(0.7, 0.95) + rng.uniform(0.1, 0.35) * ramp
    pen = rng.uniform(0.05, 0.3)
    gray = paper * (1 - page) + pen * page
    gray = ndimage.gaussian_filter(gray, rng.uniform(0.3, 1.0))
    gray = gray + rng.normal(0, rng.uniform(0.01, 0.04), gray.shape)
    return np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8), owner_page


def compose_set(
    x: np.ndarray,
    y: np.ndarray,
    layout: str,
    count: int,
    *,
    seed: int,
    lengths: tuple[int, int] = (2, 8),
    owners: bool = False,
) -> list[NumberImage]:
    """``count`` number images of ``layout`` from digit images ``x`` with labels ``y``.

    Parameters
    ----------
    x, y : uint8 (N, 28, 28) MNIST digits and their labels (one split only).
    layout : one of :data:`LAYOUTS`.
    count : how many images.
    seed : the same seed (and data) gives the same images.
    lengths : numbers have ``lengths[0]`` to ``lengths[1]`` digits.
    owners : keep each image's owner map (which digit each ink pixel belongs to).

    Examples
    --------
    >>> from mnistlab.data import load_dataset  # doctest: +SKIP
    >>> data = load_dataset()  # doctest: +SKIP
    >>> compose_set(data.x_test, data.y_test, "touching", 2, seed=0)[0].text  # doctest: +SKIP
    '805'
    """
    rng = np.random.default_rng([seed, LAYOUTS.index(layout)])
    by_class = [np.flatnonzero(y == c) for c in range(10)]
    out = []
    for _ in range(count):
        n = int(rng.integers(lengths[0], lengths[1] + 1))
        text = "".join(str(int(c)) for c in rng.integers(0, 10, n))
        picks = [x[rng.choice(by_class[int(c)])] for c in text]
        image, owner_map = _compose(picks, layout, rng)
        out.append(NumberImage(image, text, layout, owner_map if owners else None))
    return out
