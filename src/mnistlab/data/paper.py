"""Paper around digits: printed boxes, ruled and squared lines, scanner edges (seeded).

People write on forms and paper, not on MNIST's black field. This module draws
what is printed or scanned around handwriting, as an ink layer in MNIST polarity
(0 = nothing, 1 = full ink), float32, any size, anti-aliased, with the slight
tilt of a page photographed or scanned askew. A caller combines it with the ink
of its digits by ``np.maximum`` and renders the result however it likes (dark
on light paper for a photo-like file).

- :func:`ruled_lines`, :func:`squared_lines`, :func:`box_frame`,
  :func:`scanner_edge`: one structure each, every parameter explicit;
- :func:`draw_paper`: a plausible background of one :data:`PAPER_KINDS` kind
  around a digit's (or a row of digits') box, its thicknesses, contrasts,
  spacing and tilt drawn from a :class:`numpy.random.Generator` (the same seed,
  the same page); ``touching=True`` puts a line through or against the digit.

Each drawing is the distance of every pixel to the structure turned into
coverage (``thickness / 2 + 0.5 - distance``, clipped to [0, 1]): vectorised
numpy, no per-pixel loops.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "PAPER_KINDS",
    "box_frame",
    "draw_paper",
    "ruled_lines",
    "scanner_edge",
    "squared_lines",
]

# The kinds draw_paper knows; "boxes" is one box per digit in a row.
PAPER_KINDS = ("box", "boxes", "ruled", "squared", "edge")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def _coverage(distance: np.ndarray, thickness: float, contrast: float) -> np.ndarray:
    """Anti-aliased ink of a stroke ``thickness`` px wide, from each pixel's distance to it."""
    cover = np.clip(thickness / 2 + 0.5 - distance, 0, 1)
    return (contrast * cover).astype(np.float32)


def ruled_lines(
    shape: tuple[int, int],
    *,
    spacing: float,
    thickness: float = 1.5,
    contrast: float = 0.8,
    tilt: float = 0.0,
    offset: float = 0.0,
) -> np.ndarray:
    """Horizontal ruled lines across the whole page.

    Parameters
    ----------
    shape : (H, W) of the page in px.
    spacing : px between lines (> thickness).
    thickness : line width in px.
    contrast : line ink in (0, 1].
    tilt : degrees, counter-clockwise (a page photographed askew).
    offset : y of one line at the page's horizontal centre, px.

    Returns
    -------
    float32 (H, W) ink in [0, ``contrast``].
    """
    if spacing <= thickness:
        raise ValueError(f"spacing={spacing!r} must be larger than thickness={thickness!r}")
    xs, ys = _grid(shape)
    theta = math.radians(tilt)
    # Signed distance across the lines, measured from the line through (W/2, offset).
    across = (ys - offset) * math.cos(theta) + (xs - shape[1] / 2) * math.sin(theta)
    phase = np.mod(across, spacing)
    distance = np.minimum(phase, spacing - phase)
    return _coverage(distance, thickness, contrast)


def squared_lines(
    shape: tuple[int, int],
    *,
    spacing: float,
    thickness: float = 1.0,
    contrast: float = 0.6,
    tilt: float = 0.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Squared (graph) paper: ruled lines both ways, ``offset`` = (x, y) of one crossing."""
    rows = ruled_lines(
        shape, spacing=spacing, thickness=thickness, contrast=contrast, tilt=tilt, offset=offset[1]
    )
    # The vertical lines: the same drawing on the transposed page, tilted the same way.
    cols = ruled_lines(
        (shape[1], shape[0]),
        spacing=spacing,
        thickness=thickness,
        contrast=contrast,
        tilt=-tilt,
        offset=offset[0],
    ).T
    return np.maximum(rows, cols)


def box_frame(
    shape: tuple[int, int],
    box: Box,
    *,
    thickness: float = 2.0,
    contrast: float = 0.9,
    tilt: float = 0.0,
) -> np.ndarray:
    """A printed rectangle (the frame of a form's field) whose edges run along ``box``.

    ``box`` is (x0, y0, x1, y1), the centre line of the frame; ``tilt`` turns it
    about its centre by that many degrees.
    """
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box={box!r}: expected x0 < x1 and y0 < y1")
    xs, ys = _grid(shape)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    theta = math.radians(tilt)
    u = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)
    v = -(xs - cx) * math.sin(theta) + (ys - cy) * math.cos(theta)
    du, dv = np.abs(u) - (x1 - x0) / 2, np.abs(v) - (y1 - y0) / 2
    # Distance to the rectangle's outline: inside, to the nearest side; outside, to the shape.
    outside = np.hypot(np.maximum(du, 0), np.maximum(dv, 0))
    inside = np.minimum(np.maximum(du, dv), 0)
    return _coverage(np.abs(outside + inside), thickness, contrast)


def scanner_edge(
    shape: tuple[int, int],
    *,
    side: str = "left",
    width: float = 10.0,
    contrast: float = 1.0,
    tilt: float = 0.0,
) -> np.ndarray:
    """The dark band a scanner leaves beyond the page's edge, along one side.

    Parameters
    ----------
    side : ``"left"``, ``"right"``, ``"top"`` or ``"bottom"``.
    width : the band's width in px at the middle of that side.
    contrast : its darkness in (0, 1] (as ink).
    tilt : degrees; the page lay askew on the glass.
    """
    if side not in ("left", "right", "top", "bottom"):
        raise ValueError(f"side={side!r}: expected 'left', 'right', 'top' or 'bottom'")
    h, w = shape
    xs, ys = _grid(shape)
    slope = math.tan(math.radians(tilt))
    depth = {
        "left": xs - (ys - h / 2) * slope,
        "right": (w - 1 - xs) + (ys - h / 2) * slope,
        "top": ys + (xs - w / 2) * slope,
        "bottom": (h - 1 - ys) - (xs - w / 2) * slope,
    }[side]
    cover = np.clip(width + 0.5 - depth, 0, 1)
    return (contrast * cover).astype(np.float32)


def draw_paper(
    shape: tuple[int, int],
    kind: str,
    rng: np.random.Generator,
    *,
    digit_box: Box,
    count: int = 1,
    touching: bool = False,
) -> np.ndarray:
    """A plausible page of ``kind`` around digits, parameters drawn from ``rng``.

    Parameters
    ----------
    shape : (H, W) of the page in px.
    kind : one of :data:`PAPER_KINDS`.
    rng : the source of every random choice (seed it for the same page again).
    digit_box : (x0, y0, x1, y1) of the written ink (all ``count`` digits).
    count : digits in a row inside ``digit_box`` (``"boxes"`` draws one box each).
    touching : a line runs through the digit or against it (ruled: the baseline
        or a line through the middle; box: the frame touches the ink; edge: the
        band reaches the digit; squared paper always crosses it).

    Returns
    -------
    float32 (H, W) ink in [0, 1].

    Examples
    --------
    >>> page = draw_paper((120, 100), "ruled", np.random.default_rng(0), digit_box=(30, 20, 70, 90))
    >>> page.shape, page.dtype, bool(0 < page.max() <= 1)
    ((120, 100), dtype('float32'), True)
    """
    if kind not in PAPER_KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(PAPER_KINDS)}")
    x0, y0, x1, y1 = digit_box
    size = max(x1 - x0, y1 - y0, 1.0)  # the digit's height, roughly: the page's scale
    tilt = float(rng.uniform(-3, 3))
    # Printed lines on a photo or scan: 1-4 px, as dark as a pen or pale (blue rules).
    thickness = float(rng.uniform(1.0, 1.0 + 0.03 * size))
    contrast = float(rng.uniform(0.45, 1.0))
    if kind == "ruled":
        spacing = float(rng.uniform(1.15, 1.6)) * (y1 - y0)
        if touching:  # the baseline under the digit, or a line through its middle
            offset = y1 if rng.random() < 0.5 else (y0 + y1) / 2 + rng.uniform(-0.2, 0.2) * size
        else:
            offset = y1 + float(rng.uniform(0.03, 0.1)) * size
        return ruled_lines(
            shape,
            spacing=max(spacing, thickness + 2),
            thickness=thickness,
            contrast=contrast,
            tilt=tilt,
            offset=float(offset),
        )
    if kind == "squared":
        spacing = float(rng.uniform(0.45, 0.8)) * size
        crossing = (float(rng.uniform(0, spacing)), float(rng.uniform(0, spacing)))
        return squared_lines(
            shape,
            spacing=max(spacing, thickness + 2),
            thickness=thickness * 0.8,
            contrast=contrast * 0.8,
            tilt=tilt,
            offset=crossing,
        )
    if kind in ("box", "boxes"):
        tilt /= 3  # a printed form is scanned nearly straight
        margin = 0.0 if touching else float(rng.uniform(0.08, 0.3)) * size
        cells = count if kind == "boxes" else 1
        step = (x1 - x0) / cells
        page = np.zeros(shape, np.float32)
        for i in range(cells):
            cx0, cx1 = x0 + i * step, x0 + (i + 1) * step
            box = (cx0 - margin, y0 - margin, cx1 + margin, y1 + margin)
            frame = box_frame(shape, box, thickness=thickness + 0.5, contrast=contrast, tilt=tilt)
            page = np.maximum(page, frame)
        return page
    # A scanner's edge along the side nearest the digit (or a random one).
    h, w = shape
    gaps = {"left": x0, "right": w - x1, "top": y0, "bottom": h - y1}
    side = min(gaps, key=lambda s: gaps[s]) if touching else str(rng.choice(list(gaps)))
    # Touching: the band reaches 2% of the digit's size into its box; else it stops short.
    reach = gaps[side] + (0.02 * size if touching else -float(rng.uniform(0.1, 0.5)) * gaps[side])
    width = max(2.0, float(reach))
    return scanner_edge(
        shape, side=side, width=width, contrast=float(rng.uniform(0.7, 1.0)), tilt=tilt / 2
    )
