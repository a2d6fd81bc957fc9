"""The ink of a page, and a digit's ink in MNIST form.

The same steps as single-digit preprocessing (:mod:`mnistlab.predict.preprocess`),
for a whole page that holds a line of digits::

    gray (either polarity) -> reduced to WORK_SIZE -> polarity: the side of the paper's
    level that reaches farther -> paper estimated under the ink (maximum filter on a
    thumbnail, scipy.ndimage) and subtracted: uneven light gone -> faint background
    cut, ink stretched to [0, 1] -> printed boxes, lines and scanner edges removed
    (mnistlab.predict.cleanup.remove_lines)

(cleanup.paint_out_edges is not used: on a photo lit from one side it takes the
darker half of the page for a scanner's edge and paints over the digits there.)

and a digit's crop into MNIST form: the longer side 20 px (anti-aliased, aspect
kept), placed in 28x28 with its centre of mass at the centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.predict.cleanup import remove_lines

__all__ = ["LineInk", "line_ink", "mnist_form"]

# Longer side of the working image (px); a line of 12 digits keeps ~40 px per digit.
WORK_SIZE = 512
# MNIST's geometry: the ink's longer side, the field's side.
BOX = 20
FIELD = 28


@dataclass(frozen=True)
class LineInk:
    """The ink of a page at working size.

    Attributes
    ----------
    ink : float32 (h, w) in [0, 1], 0 = paper.
    scale : input pixels per working pixel (>= 1).
    polarity : ``"dark-on-light"`` or ``"light-on-dark"``.
    """

    ink: np.ndarray
    scale: float
    polarity: str


def _resize(arr: np.ndarray, width: int, height: int, how: Image.Resampling) -> np.ndarray:
    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    return np.asarray(im.resize((width, height), how))


def _paper(light: np.ndarray) -> np.ndarray:
    """Smooth estimate of light paper under dark ink (never below the pixel).

    A maximum filter a quarter of a 64 px thumbnail wide (a stroke cannot survive a
    maximum wider than itself), blurred, scaled back up.
    """
    h, w = light.shape
    scale = 64 / max(h, w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    thumb = _resize(light, tw, th, Image.Resampling.BOX)
    size = max(3, (max(tw, th) // 4) | 1)
    thumb = ndimage.maximum_filter(thumb, size=size, mode="nearest")
    thumb = ndimage.gaussian_filter(thumb, sigma=size / 4, mode="nearest")
    return np.maximum(_resize(thumb, w, h, Image.Resampling.BILINEAR), light)


def line_ink(gray: np.ndarray, *, cleanup: bool = True) -> LineInk:
    """A page (2-D, uint8 or float in [0, 1], either polarity) -> its ink at working size.

    Parameters
    ----------
    gray : the decoded image (0 = black).
    cleanup : remove printed boxes, lines and scanner edges.
    """
    gray = np.asarray(gray)
    if gray.dtype == np.uint8:
        gray = gray.astype(np.float32) / np.float32(255)
    gray = np.clip(gray.astype(np.float32, copy=False), 0, 1)
    h, w = gray.shape
    scale = max(1.0, max(h, w) / WORK_SIZE)
    if scale > 1:
        size = (max(1, round(w / scale)), max(1, round(h / scale)))
        gray = np.clip(_resize(gray, *size, Image.Resampling.BOX), 0, 1)
    # Polarity: the paper is most of the page; the ink is the side reaching farther.
    smooth = ndimage.gaussian_filter(gray, 1)
    level = float(np.median(smooth))
    dark_ink = level - float(smooth.min()) >= float(smooth.max()) - level
    light = gray if dark_ink else 1 - gray
    ink = _paper(light) - light
    peak = float(ndimage.gaussian_filter(ink, 1).max())
    polarity = "dark-on-light" if dark_ink else "light-on-dark"
    if peak < 0.05:  # under 5% contrast anywhere: nothing written
        return LineInk(np.zeros_like(ink), scale, polarity)
    # The cut: 30% of the strongest ink, above the paper's own grain (median + 6 robust
    # standard deviations of the surely-paper pixels) but never above 60% of the ink.
    paper_px = ink[ink <= np.percentile(ink, 90)]
    median = float(np.median(paper_px))
    spread = 1.4826 * float(np.median(np.abs(paper_px - median)))
    cut = max(0.3 * peak, min(median + 6 * spread, 0.6 * peak))
    ink = np.clip((ink - cut) / (peak - cut), 0, 1).astype(np.float32)
    if cleanup:
        cleaned = remove_lines(ink)
        # All of it looked like lines: more likely a row of 1s than an empty form.
        if float(cleaned.sum()) >= 0.05 * float(ink.sum()):
            ink = cleaned
    return LineInk(ink, scale, polarity)


def mnist_form(crop: np.ndarray) -> np.ndarray:
    """A digit's ink crop (float, 0 = nothing) -> float32 (28, 28) as MNIST digits are.

    The longer side becomes 20 px (anti-aliased, aspect kept); the result is placed
    in a 28x28 field with the ink's centre of mass at the centre (integer shift).
    """
    h, w = crop.shape
    scale = BOX / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    box = np.clip(_resize(crop, nw, nh, Image.Resampling.LANCZOS), 0, 1)
    out = np.zeros((FIELD, FIELD), np.float32)
    total = float(box.sum())
    if total <= 0:
        return out
    cy, cx = ndimage.center_of_mass(box)
    top = int(np.clip(round((FIELD - 1) / 2 - cy), 0, FIELD - nh))
    left = int(np.clip(round((FIELD - 1) / 2 - cx), 0, FIELD - nw))
    out[top : top + nh, left : left + nw] = box
    return out
