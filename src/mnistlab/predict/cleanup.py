"""Clean-up before recognition: remove printed lines, boxes and scanner edges from ink.

People write digits on forms and paper: inside a printed box, on ruled or squared
paper, next to the dark band a scanner leaves at the page's edge. A model trained
on MNIST reads such a line as part of the digit. :func:`remove_lines` takes the
ink of an image (MNIST polarity: 0 = background, 1 = ink, any size) and returns
it with those structures removed::

    ink > INK_LEVEL -> mask
    -> candidates: openings of a max-pooled thumbnail by long line elements,
       horizontal and vertical, each tilted by up to MAX_TILT_DEGREES
       (scipy.ndimage.binary_opening; skimage.draw.line draws the elements)
    -> components of the candidates (scipy.ndimage.label), each judged by its
       length, thickness and where it lies:
         edge  - a band along the image's border, spanning most of that side
         line  - spans most of the image, or is long and clearly thinner than
                 the pen strokes of the rest of the ink
         other - a long straight pen stroke (the bar of a 7, a 1): kept
    -> an edge is removed whole; a line only where it is thin: a pixel whose
       run of ink across the line is no longer than the line is thick, so a
       stroke that crosses or touches the line keeps its ink there
    -> the anti-aliased fringe of removed pixels goes too

Nothing here knows about digits' classes: the judgement is geometric, so the
function serves a single digit (:mod:`mnistlab.predict.preprocess`) and a whole
written number (:mod:`mnistlab.read`) alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "INK_LEVEL",
    "LineParts",
    "edge_bands",
    "find_lines",
    "near_the_largest",
    "paint_out_edges",
    "remove_lines",
]

# Ink above this strength is "ink" for the geometry (the ink is in [0, 1]).
INK_LEVEL = 0.2
# Ink at least this strong (1 = the strongest) is pen, when the pen's width is measured.
PEN_LEVEL = 0.5
# The thumbnail on which candidates are searched has at most this many px a side
# (max-pooled, so a 1 px line stays a 1 px line at full strength).
THUMB_SIDE = 160
# Line elements are this fraction of the image's side along their direction.
ELEMENT_FRACTION = 0.3
# Paper photographed or scanned askew: lines tilted up to this many degrees.
MAX_TILT_DEGREES = 6.0
# A component spanning this fraction of the image's side is a line (paper rules,
# squares, a frame around the page) even when it is as thick as a pen stroke...
SPAN_FRACTION = 0.9
# ... and is at most this many times as thick as the other ink's pen strokes.
SPAN_THICKNESS = 1.2
# A line is at least this many times as long as it is thick.
MIN_ELONGATION = 6.0
# A shorter line must be this much thinner than the ink's pen strokes...
THIN_RATIO = 0.6
# ... and this many times as long as it is thick (the bar of a 7 is about 6).
THIN_ELONGATION = 10.0
# Thin structures (thinner than THIN_RATIO of the pen) need only be this fraction
# of the ink's extent long.
THIN_ELEMENT_FRACTION = 0.2
# Leftover pieces of lines under this many squared pen widths go.
NUB_AREA = 1.5
# A band at the border is this much darker or lighter than the page (0-1 scale).
EDGE_CONTRAST = 0.3
# ... and ends in a step of this fraction of the image's range (a shadow fades).
EDGE_STEP = 0.4
# A band along the border (scanner edge) spans this fraction of its side.
EDGE_SPAN_FRACTION = 0.6


@dataclass(frozen=True)
class LineParts:
    """What :func:`find_lines` found, as boolean masks of the input's shape.

    Attributes
    ----------
    lines : thin printed lines and frames (to be removed where thin).
    edges : bands along the image's border (scanner edges; removed whole).
    remove : the pixels :func:`remove_lines` clears (``edges`` plus the thin parts
        of ``lines``; strokes crossing a line keep their ink).
    """

    lines: np.ndarray
    edges: np.ndarray
    remove: np.ndarray


def remove_lines(ink: np.ndarray) -> np.ndarray:
    """Remove printed boxes, frames, ruled and squared lines and scanner edges.

    Parameters
    ----------
    ink : float (H, W), MNIST polarity: 0 = background, 1 = ink; any size.

    Returns
    -------
    float32 (H, W): ``ink`` with those structures set to 0. Digit strokes are
    kept, also where they cross or touch a line. An image without lines comes back
    unchanged (an equal copy).

    Raises
    ------
    ValueError
        ``ink`` is not a 2-D array.

    Examples
    --------
    >>> ink = np.zeros((60, 60), np.float32)
    >>> ink[40, :] = 1          # a ruled line
    >>> ink[10:45, 28:32] = 1   # a stroke crossing it
    >>> out = remove_lines(ink)
    >>> float(out[40, 5]), float(out[40, 30]), float(out[20, 30])
    (0.0, 1.0, 1.0)
    """
    ink = _as_ink(ink)
    parts = find_lines(ink)
    if not parts.remove.any():
        return ink.copy()
    from scipy import ndimage

    out = np.where(parts.remove, np.float32(0), ink)
    # The anti-aliased fringe of a removed line: faint pixels next to it.
    fringe = ndimage.binary_dilation(parts.remove, iterations=2) & (ink <= INK_LEVEL)
    out[fringe] = 0
    return out.astype(np.float32, copy=False)


def find_lines(ink: np.ndarray) -> LineParts:
    """Find printed lines, frames and scanner edges in ``ink`` (see the module docstring).

    Parameters
    ----------
    ink : float (H, W), 0 = background, 1 = ink.

    Returns
    -------
    :class:`LineParts`, boolean masks of ``ink``'s shape.
    """
    from scipy import ndimage

    ink = _as_ink(ink)
    mask = ink > INK_LEVEL
    empty = np.zeros_like(mask)
    h, w = mask.shape
    if not mask.any() or min(h, w) < 8:
        return LineParts(empty, empty.copy(), empty.copy())

    edges = edge_bands(mask)
    rest = mask & ~edges
    # The pen's width from the strong ink only: a photo's mottled paper, after the
    # shadows are taken out, leaves broad faint blotches over INK_LEVEL that would make
    # a fine pen's own strokes look "thin" (the sides of a narrow 0 taken for lines).
    strong = rest & (ink >= PEN_LEVEL)
    stroke = _stroke_width(strong if strong.any() else rest)
    # Structures thinner than most pen strokes, measured across each direction: a
    # printed line is; the core of a digit's stroke is not.
    thin_limit = math.floor(THIN_RATIO * stroke) if math.isfinite(stroke) else 0
    long_runs = {
        axis: _candidates(rest, axis, ELEMENT_FRACTION * (w, h)[1 - axis]) for axis in (0, 1)
    }
    # Thin lines need only be long beside the ink: a box around a small digit is.
    ys, xs = np.nonzero(rest)
    extent = (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) if len(ys) else (h, w)
    # Lines as thick as a pen count when they span the page and the rest of the ink
    # (what is not on a long straight run) is no thinner.
    # (Their soft borders excluded: a page of nothing but lines leaves no pen.)
    other = rest & ~ndimage.binary_dilation(long_runs[0] | long_runs[1], iterations=2)
    pen = _stroke_width(other) if other.sum() >= 0.05 * rest.sum() else math.inf
    lines = {}
    for axis in (0, 1):
        lines[axis] = _judge(long_runs[axis], axis, SPAN_THICKNESS * pen, SPAN_FRACTION)
        if thin_limit >= 2:  # pen strokes of 1-3 px (MNIST size): too close to tell apart
            # Opening across the lines (1-D filters): what is left is thicker than the limit.
            size, across = thin_limit + 1, 1 - axis
            thick = ndimage.minimum_filter1d(
                rest.view(np.uint8), size, axis=across, mode="constant", cval=0
            )
            thick = ndimage.maximum_filter1d(
                thick, size, axis=across, origin=-1 + size % 2, mode="constant", cval=0
            )
            thin = rest & ~thick.astype(bool)
            candidates = _candidates(thin, axis, THIN_ELEMENT_FRACTION * extent[axis])
            lines[axis] |= _judge(candidates, axis, math.inf, 0.0, THIN_ELONGATION)

    # A line is removed only where it is thin: where the run of ink across it is no
    # longer than the line is thick. Runs are measured without the other direction's
    # thin lines, so that a crossing of two grid lines goes too (two passes: the
    # crossing itself is not thin in either direction until the other line is gone).
    thickness = {
        axis: _thickness_map(lines[axis], axis, _run_lengths(rest, 1 - axis)) for axis in (0, 1)
    }
    thin_parts = {axis: empty for axis in (0, 1)}
    for _ in range(2):
        thin_parts = {
            axis: lines[axis]
            & (_run_lengths(rest & ~thin_parts[1 - axis], 1 - axis) <= 1.5 * thickness[axis] + 2)
            for axis in (0, 1)
        }
    remove = edges | thin_parts[0] | thin_parts[1]
    return LineParts(lines[0] | lines[1], edges, remove | _nubs(rest & ~remove, remove, stroke))


def paint_out_edges(gray: np.ndarray) -> np.ndarray:
    """Bands along one or two sides that differ from the page (a scanner's edge), painted over.

    The image is split into its light and dark pixels (Otsu's threshold,
    skimage.filters.threshold_otsu); for each, the bands it forms along the sides
    (:func:`edge_bands`). The page lines three or four sides; a band of the other
    kind along one or two sides (the smaller, if both kinds look so; never over 60%
    of the picture) is an edge, and is painted with the median of the other pixels. Done on the gray
    image, before the polarity is guessed: wide light bands at both sides of a dark
    page (or a dark one beside a light page) would otherwise turn the guess and the
    paper estimate.

    Parameters
    ----------
    gray : float (H, W) in [0, 1], either polarity.

    Returns
    -------
    float32 (H, W), ``gray`` itself when there is no such band.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    if float(gray.max() - gray.min()) < EDGE_CONTRAST:
        return gray
    light = gray > threshold_otsu(gray)
    found = []
    for side_of in (light, ~light):
        bands = edge_bands(side_of)
        border = (bands[:, 0], bands[:, -1], bands[0, :], bands[-1, :])
        sides = sum(float(np.mean(b)) >= EDGE_SPAN_FRACTION for b in border)
        if 1 <= sides <= 2 and bands.mean() <= 0.6 and _sharp(gray, bands):
            found.append((float(bands.mean()), bands, side_of))
    if not found:
        return gray
    # Both kinds look like bands (a page beside a wide edge): the edge is the smaller.
    _, bands, side_of = min(found, key=lambda f: f[0])
    page = float(np.median(gray[~side_of]))
    bands = ndimage.binary_dilation(bands, iterations=1)  # and its soft boundary
    return np.where(bands, np.float32(page), gray).astype(np.float32)


def _sharp(gray: np.ndarray, band: np.ndarray) -> bool:
    """Whether ``band`` ends in a step: a scanner's edge does, a shadow fades.

    The median level of a 3 px ring inside the band's boundary and of one outside
    it differ by at least ``EDGE_STEP`` of the image's range (1st to 99th percentile).
    """
    from scipy import ndimage

    inside = band & ~ndimage.binary_erosion(band, iterations=3)
    outside = ndimage.binary_dilation(band, iterations=3) & ~band
    if not inside.any() or not outside.any():
        return False
    low, high = np.percentile(gray, [1, 99])
    step = abs(float(np.median(gray[inside])) - float(np.median(gray[outside])))
    return step >= EDGE_STEP * max(float(high - low), 1e-6)


def near_the_largest(
    boxes: list[tuple[slice, ...] | None], candidates: np.ndarray, mass: np.ndarray, gap: float
) -> np.ndarray:
    """Which blobs belong to the digit: the largest and the ``candidates`` near it.

    Grown from the largest blob (by ``mass``) outwards: a candidate is kept when its
    box (``boxes``, as :func:`scipy.ndimage.find_objects` gives them) comes within
    ``gap`` times the size of what is kept so far. Returns a boolean per blob.
    """
    box = np.array(
        [[b[0].start, b[1].start, b[0].stop, b[1].stop] if b else [0, 0, 0, 0] for b in boxes],
        float,
    )
    kept = np.zeros(len(box), bool)
    kept[int(np.argmax(mass))] = True
    while True:
        top, left = box[kept, 0].min(), box[kept, 1].min()
        bottom, right = box[kept, 2].max(), box[kept, 3].max()
        reach = gap * max(bottom - top, right - left)
        near = (
            (box[:, 0] <= bottom + reach)
            & (box[:, 2] >= top - reach)
            & (box[:, 1] <= right + reach)
            & (box[:, 3] >= left - reach)
        )
        grown = kept | (candidates & near)
        if (grown == kept).all():
            return kept
        kept = grown


def _as_ink(ink: np.ndarray) -> np.ndarray:
    arr = np.asarray(ink)
    if arr.ndim != 2:
        raise ValueError(f"ink must be a 2-D array (H, W), got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _nubs(left: np.ndarray, removed: np.ndarray, stroke: float) -> np.ndarray:
    """What is left of the lines: small pieces of ink touching removed pixels.

    The corners of a frame and the bits of a line between two close strokes are
    smaller than ``NUB_AREA`` squared pen widths; a piece of a digit cut by a line
    is a stroke's length long and stays.
    """
    from scipy import ndimage

    labels, n = ndimage.label(left, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros_like(left)
    area = np.bincount(labels.ravel(), minlength=n + 1)
    near = ndimage.binary_dilation(removed, iterations=2)
    touching = np.bincount(labels[near].ravel(), minlength=n + 1) > 0
    small = area < NUB_AREA * min(stroke, max(left.shape)) ** 2
    drop = touching & small
    drop[0] = False
    return drop[labels]


def edge_bands(mask: np.ndarray) -> np.ndarray:
    """Bands of ``mask`` (boolean (H, W)) along a side of the image (scanner edges).

    For each side, the ink reached from the border without a gap (the run from the
    border in every row or column); a band when it is there along at least
    ``EDGE_SPAN_FRACTION`` of the side. Its depth, smoothed along the side (a
    median: a digit touching the band does not make it deeper), says what goes.
    """
    from scipy import ndimage

    bands = np.zeros_like(mask)
    for turns in range(4):  # left, then each other side turned to the left
        view = np.rot90(mask, turns)
        depth = np.logical_and.accumulate(view, axis=1).sum(axis=1)
        if np.mean(depth >= 2) < EDGE_SPAN_FRACTION:
            continue
        size = max(3, (len(depth) // 4) | 1)
        smooth = ndimage.median_filter(depth, size=size, mode="nearest")
        band = np.arange(view.shape[1])[np.newaxis, :] < (smooth[:, np.newaxis] + 1)
        bands |= np.rot90(band & view, -turns)
    return bands


# %% Candidates ---------------------------------------------------------------------------


def _candidates(mask: np.ndarray, axis: int, length_px: float) -> np.ndarray:
    """Pixels on long straight runs along ``axis`` (1: horizontal lines, 0: vertical).

    Openings by straight line elements ``length_px`` long, tilted by up
    to ``MAX_TILT_DEGREES`` in steps of one pixel over the element's length, on a
    max-pooled thumbnail; brought back to full size and restricted to the mask.
    """
    from scipy import ndimage

    h, w = mask.shape
    k = max(1, math.ceil(max(h, w) / THUMB_SIDE))
    padded = np.pad(mask, ((0, -h % k), (0, -w % k)))
    pooled = padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k)
    thumb: np.ndarray = np.asarray(pooled.any(axis=(1, 3)))
    if axis == 0:
        thumb = thumb.T  # vertical lines: the same work on the transposed image
    length = max(5, round(length_px / k)) | 1
    # A tilted line drawn in pixels steps where its rounding does; one pixel of slack
    # across it keeps the steps from breaking the run.
    slack = thumb.copy()
    slack[1:] |= thumb[:-1]
    reach = math.floor(math.tan(math.radians(MAX_TILT_DEGREES)) * (length - 1))
    found = np.zeros_like(thumb)
    for offset in range(-reach, reach + 1):
        found |= _open_along_rows(slack, length, offset / (length - 1))
    found &= thumb
    if axis == 0:
        found = found.T
    if not found.any():
        return np.zeros_like(mask)
    full = np.repeat(np.repeat(found, k, axis=0), k, axis=1)[:h, :w]
    if k > 1:  # a pooled cell holds the line somewhere inside it; the mask says where
        full = ndimage.binary_dilation(full, iterations=1)
    return full & mask


def _open_along_rows(image: np.ndarray, length: int, slope: float) -> np.ndarray:
    """Binary opening of ``image`` by a straight line ``length`` px long (odd), ``slope``
    rows per column.

    The image is sheared so that such lines become rows, opened with 1-D minimum
    and maximum filters (scipy.ndimage, O(1) per pixel whatever the length, where
    a 2-D footprint costs its length), and sheared back.
    """
    from scipy import ndimage

    h, w = image.shape
    shift = np.round(slope * np.arange(w)).astype(np.int64)
    shift -= shift.min()
    pad = int(shift.max())
    rows = np.arange(h + pad)[:, np.newaxis]
    cols = np.arange(w)[np.newaxis, :]
    tall = np.pad(image, ((pad, pad), (0, 0))).astype(np.uint8)
    sheared = tall[rows + shift[np.newaxis, :], cols]  # row y of the line -> row y + pad - shift
    opened = ndimage.minimum_filter1d(sheared, length, axis=1, mode="constant", cval=0)
    opened = ndimage.maximum_filter1d(opened, length, axis=1, mode="constant", cval=0)
    back = opened[np.arange(h)[:, np.newaxis] + pad - shift[np.newaxis, :], cols]
    return back.astype(bool)


# %% Judging ------------------------------------------------------------------------------


def _judge(
    candidates: np.ndarray,
    axis: int,
    max_thickness: float,
    min_span: float,
    elongation: float = MIN_ELONGATION,
) -> np.ndarray:
    """The candidate components along ``axis`` that are lines.

    A line is at least ``elongation`` times as long as it is thick, at most
    ``max_thickness`` thick and spans at least ``min_span`` of the image's side.
    """
    from scipy import ndimage

    along = candidates.shape[1] if axis == 1 else candidates.shape[0]
    lines = np.zeros_like(candidates)
    labels, n = ndimage.label(candidates, structure=np.ones((3, 3)))
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        if where is None:
            continue
        part = labels[where] == index
        rows, cols = where
        extent = (cols.stop - cols.start) if axis == 1 else (rows.stop - rows.start)
        thickness = int(part.sum()) / max(extent, 1)
        if (
            extent >= elongation * thickness
            and thickness <= max_thickness
            and extent >= min_span * along
        ):
            lines[where] |= part
    return lines


def _stroke_width(mask: np.ndarray) -> float:
    """Typical pen width of the thickest strokes in ``mask``, px (inf if empty).

    From the 95th percentile of the distance to the background (the cores of the
    strokes; a stroke w px wide has w/2 + 1/2 at its centre): thin printed lines
    barely move it, since a digit's strokes hold most of the thick ink.
    """
    from scipy import ndimage

    if not mask.any():
        return math.inf
    distance = ndimage.distance_transform_edt(mask)
    return max(1.0, 2 * float(np.percentile(distance[mask], 95)) - 1)


def _run_lengths(mask: np.ndarray, axis: int) -> np.ndarray:
    """Length of the run of True along ``axis`` (0: columns, 1: rows) through each pixel."""
    from scipy import ndimage

    structure = np.zeros((3, 3), bool)
    if axis == 0:
        structure[:, 1] = True
    else:
        structure[1, :] = True
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return np.zeros(mask.shape, np.int64)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return sizes[labels]


def _thickness_map(lines: np.ndarray, axis: int, across: np.ndarray) -> np.ndarray:
    """Each line pixel's line thickness, 0 elsewhere.

    At each position along the line, the shortest run of ink across it among the
    line's pixels there (``across``); the line's thickness is the median of those
    over its length. A stroke lying along part of the line, or merged with it as a
    1 written on a grid line, makes it look thicker only where it lies.
    """
    from scipy import ndimage

    labels, _ = ndimage.label(lines, structure=np.ones((3, 3)))
    thickness = [0.0]
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        runs = np.where(labels[where] == index, across[where], np.iinfo(np.int64).max)
        shortest = runs.min(axis=0 if axis == 1 else 1)
        thickness.append(float(np.median(shortest[shortest < np.iinfo(np.int64).max])))
    return np.asarray(thickness)[labels]
