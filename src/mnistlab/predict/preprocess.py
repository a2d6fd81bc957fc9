"""Turn any image of a digit into MNIST form, the way MNIST itself was made.

MNIST digits are white ink on black, size-normalised so the longer side of the
ink's bounding box is 20 px (aspect ratio kept, anti-aliased), and placed in a
28x28 field so that the ink's centre of mass is at the centre. A model trained
on MNIST only works on other images when they are brought into exactly that
form; that is what this module does::

    bytes or file -> Pillow (pixel limit checked before decoding) -> EXIF orientation
    -> first frame -> alpha flattened onto white -> grayscale float in [0, 1]
    -> polarity (dark ink on light paper, or light on dark) -> ink = |paper - pixel|
    -> uneven lighting and faint background suppressed
    -> clean-up: printed boxes, ruled and squared lines, scanner edges removed
       (mnistlab.predict.cleanup); the polarity checked once more on what is left
    -> specks and stray marks away from the digit dropped
    -> crop to the ink's bounding box -> thin pen strokes thickened to MNIST's
    -> longer side 20 px -> centre of mass at (14, 14) in 28x28 -> float32 in [0, 1]

Every failure a user can cause (not an image, truncated file, too many pixels,
a blank page) raises :class:`ImageError`, a :class:`MnistlabError` whose
message says what was wrong.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mnistlab.errors import MnistlabError
from mnistlab.predict.cleanup import near_the_largest, paint_out_edges, remove_lines

__all__ = [
    "MAX_IMAGE_PIXELS",
    "ImageError",
    "Preprocessed",
    "load_image",
    "preprocess_array",
    "preprocess_image",
    "to_png",
]

# 40 megapixels: more than any phone camera's photo (12-50 MP binned to 12), far
# less than a decompression bomb (a 100 kB PNG can claim 50,000 x 50,000 pixels).
# Checked from the header, before a single pixel is decoded.
# Enforced per call by load_image (``max_pixels``); Pillow's own global guard
# (Image.MAX_IMAGE_PIXELS, which refuses at twice its value inside Image.open) is
# left as the user set it: importing mnistlab changes no Pillow setting.
MAX_IMAGE_PIXELS = 40_000_000

# Working resolution: big photos are reduced (anti-aliased) so the longer side is at
# most this many pixels before any analysis. Ink ends up 20 px tall anyway.
WORK_SIZE = 512
# MNIST's geometry.
FIELD = 28  # output side in px
BOX = 20  # longer side of the ink's bounding box in px
# A pen stroke in MNIST is about 2.5 px wide at BOX = 20 px, i.e. ~0.12 of the box.
# Strokes much thinner than this (a fine pen on a big photo) are thickened to it.
MIN_STROKE_FRACTION = 0.09
# Lines are looked for in images at least this many px a side: below, a pen stroke
# is 1-4 px and a printed line cannot be told from it (MNIST's own 28x28 digits).
MIN_CLEANUP_SIDE = 56
# After clean-up, ink over this fraction of the image is suspect: page, not pen.
SUSPECT_COVERAGE = 0.3
# A mark farther from the digit than this fraction of the digit's size is stray.
STRAY_GAP = 0.25
# A blob inside the largest one's box is kept from this share of its mass (else 8%).
ENCLOSED_MASS = 0.02
TARGET_STROKE_FRACTION = 0.12
# A 28x28 image whose ink spans more than this many px is not re-cropped (MNIST's digits
# fit a 20 px box; more is a line or a smudge across the field). Checked on validation
# digits through predict (training perturbations: mean 91% -> 95%; docs/cleanup.md); 20, 21
# and 22 px did the same under MNIST-C on validation digits; 22 is the most conservative.
FULL_FIELD_EXTENT = 22


BLANK_MESSAGE = "no digit found: the image is blank (no ink that stands out)"


class ImageError(MnistlabError):
    """An input that is not a usable image of a digit (one-line message).

    ``too_large`` is True when the image was refused for its size (bytes or pixels),
    so an HTTP server can answer 413 instead of 400; ``blank`` when it decoded but
    holds no ink (a caller whose classes are not digits words that its own way).
    """

    def __init__(self, message: str, *, too_large: bool = False, blank: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large
        self.blank = blank


@dataclass(frozen=True)
class Preprocessed:
    """The MNIST-form image and what was learned on the way.

    Attributes
    ----------
    image : float32 (28, 28) in [0, 1], white ink on black, as the model sees it.
    polarity : ``"dark-on-light"`` or ``"light-on-dark"`` (the input's ink and paper).
    bbox : (left, top, right, bottom) of the ink in the working-size image.
    source_size : (width, height) of the input after EXIF orientation.
    """

    image: np.ndarray
    polarity: str
    bbox: tuple[int, int, int, int]
    source_size: tuple[int, int]


# %% Reading ----------------------------------------------------------------------------


def load_image(
    source: str | os.PathLike[str] | bytes, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Decode an image file or bytes to a grayscale float array, paper and ink as drawn.

    EXIF orientation is applied, animated images give their first frame, alpha is
    flattened onto white, 16-bit, CMYK, palette and float images are accepted.

    Parameters
    ----------
    source : a path or the encoded bytes of the file (PNG, JPEG, GIF, BMP, TIFF, WebP...).
    max_pixels : refuse images with more pixels than this, read from the header
        before decoding (decompression bombs).

    Returns
    -------
    float32 (H, W) in [0, 1], 0 = black.

    Raises
    ------
    ImageError
        Empty, unreadable, truncated, or too many pixels.

    Examples
    --------
    >>> gray = load_image("samples/7/canvas-a.png")
    >>> gray.shape
    (280, 280)
    """
    name = "the upload" if isinstance(source, bytes | bytearray) else str(source)
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ImageError("the image is empty (0 bytes); send a PNG or JPEG file")
        stream: io.BytesIO | str | os.PathLike[str] = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        stream = path
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x its limit; the check below refuses those
            # images with their size, in this project's words.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{name}: image is {width}x{height} = {width * height:,} pixels, "
                        f"over the limit of {max_pixels:,}; send a smaller image",
                        too_large=True,
                    )
                im.seek(0)  # animated GIF/PNG/WebP: the first frame
                im.load()  # decode now, inside the try: truncated files fail here
                return _to_gray(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Over 2x Pillow's limit: refused inside Image.open, from the header, before we
        # see the size; its message holds the pixel count ("Image size (N pixels) ...").
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        raise ImageError(
            f"{name}: image is {size}, over the limit of {limit:,}; send a smaller image",
            too_large=True,
        ) from err
    except Image.UnidentifiedImageError as err:
        raise ImageError(
            f"{name}: not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP...)"
        ) from err
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as err:
        # Truncated or corrupt data: Pillow raises OSError ("image file is truncated"),
        # SyntaxError (broken PNG chunks), ValueError or EOFError depending on format.
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise ImageError(f"{name}: cannot decode the image ({reason}); is it complete?") from err


def _to_gray(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 (H, W) in [0, 1], transparent areas white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit and 32-bit grayscale: scale by the type's range, not clipped to 8 bits.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or (mode == "I" and arr.max() > 255) else 255.0
        if mode == "F":
            top = max(float(arr.max()), 1.0) if arr.max() > 1 else 1.0
        return np.clip(arr / top, 0, 1).astype(np.float32)
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become white paper: a drawing exported with a
        # transparent background is dark ink on nothing.
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    if im.mode != "L":
        im = im.convert("RGB").convert("L")  # CMYK, YCbCr, LAB, 1, RGB -> luminance
    return np.asarray(im, dtype=np.float32) / np.float32(255)


# %% Into MNIST form ----------------------------------------------------------------------


def preprocess_image(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    cleanup: bool = True,
) -> Preprocessed:
    """Read an image and bring it into MNIST form (see the module docstring).

    Parameters
    ----------
    source : a path or encoded image bytes.
    max_pixels : refuse larger images before decoding.
    cleanup : remove printed lines, boxes, scanner edges and stray marks first
        (see :func:`preprocess_array`).

    Returns
    -------
    Preprocessed, whose ``image`` is float32 (28, 28) in [0, 1], white ink on black.

    Raises
    ------
    ImageError
        Not a readable image, too large, or no ink found.

    Examples
    --------
    >>> pre = preprocess_image("samples/3/canvas-a.png")
    >>> pre.image.shape, pre.polarity
    ((28, 28), 'dark-on-light')
    """
    gray = load_image(source, max_pixels=max_pixels)
    return preprocess_array(gray, cleanup=cleanup)


def preprocess_array(gray: np.ndarray, *, cleanup: bool = True) -> Preprocessed:
    """Bring a grayscale image (float in [0, 1] or uint8) into MNIST form.

    Parameters
    ----------
    gray : (H, W) array, 0 = black; either polarity.
    cleanup : remove printed lines, boxes, scanner edges and stray marks before the
        digit is cropped (:func:`mnistlab.predict.cleanup.remove_lines`); False:
        every mark on the page counts as the digit (for comparisons).

    Returns
    -------
    Preprocessed (``image`` float32 (28, 28) in [0, 1], white ink on black).

    Raises
    ------
    ImageError
        Wrong shape, non-finite values, or a blank image (no ink).
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ImageError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    if gray.dtype == np.uint8:
        gray = gray.astype(np.float32) / np.float32(255)
    gray = gray.astype(np.float32, copy=False)
    if not np.isfinite(gray).all():
        raise ImageError("the image has NaN or infinite values")
    source_size = (gray.shape[1], gray.shape[0])

    gray = _shrink(gray, WORK_SIZE)
    if cleanup:
        gray = paint_out_edges(gray)
    ink, polarity = _ink(gray, clean=cleanup)
    if cleanup:
        ink, polarity = _check_polarity(gray, ink, polarity)
        ink = _keep_digit(ink, near=True)
    else:
        ink = _keep_digit(ink)
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        raise ImageError(BLANK_MESSAGE, blank=True)
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    if source_size == (FIELD, FIELD) and max(right - left, bottom - top) > FULL_FIELD_EXTENT:
        # Already in MNIST's form, with marks reaching past the 20 px box (a line across
        # the field): cropping to them would shrink the digit; the model reads it as is.
        return Preprocessed(
            image=ink, polarity=polarity, bbox=(left, top, right, bottom), source_size=source_size
        )
    crop = ink[top:bottom, left:right]
    crop = _normalise_stroke(crop)
    box = _fit_box(crop, BOX)
    return Preprocessed(
        image=_centre_of_mass_field(box, FIELD),
        polarity=polarity,
        bbox=(left, top, right, bottom),
        source_size=source_size,
    )


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image (Pillow's 32-bit float mode, no 8-bit rounding)."""
    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    return np.asarray(im.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0))


def _shrink(gray: np.ndarray, size: int) -> np.ndarray:
    h, w = gray.shape
    scale = size / max(h, w)
    if scale >= 1:
        return gray
    return np.clip(_resize(gray, max(1, round(w * scale)), max(1, round(h * scale))), 0, 1)


def _without_lines(ink: np.ndarray) -> np.ndarray:
    """:func:`~mnistlab.predict.cleanup.remove_lines`, unless it leaves (almost) nothing.

    When all of the ink looked like lines, a lone bar filling the picture is more
    likely a 1 than ruled paper with nothing written on it.
    """
    cleaned = remove_lines(ink)
    return ink if float(cleaned.sum()) < 0.05 * float(ink.sum()) else cleaned


def _check_polarity(gray: np.ndarray, ink: np.ndarray, polarity: str) -> tuple[np.ndarray, str]:
    """The other polarity, when it leaves far less ink after clean-up.

    Handwriting covers a small part of the page. When the cleaned ink still covers
    over ``SUSPECT_COVERAGE`` of the image (what was taken for ink is mostly page),
    the other polarity is cleaned too and kept if it leaves under half as much.
    """
    coverage = float(np.mean(ink > 0.5))
    if coverage <= SUSPECT_COVERAGE:
        return ink, polarity
    other = "light-on-dark" if polarity == "dark-on-light" else "dark-on-light"
    flipped = _ink(gray, dark_ink=other == "dark-on-light", clean=True)[0]
    if float(np.mean(flipped > 0.5)) < coverage / 2:
        return flipped, other
    return ink, polarity


def _ink(
    gray: np.ndarray, dark_ink: bool | None = None, clean: bool = False
) -> tuple[np.ndarray, str]:
    """Ink strength in [0, 1] (0 = paper) and the input's polarity.

    The paper is most of the image, so a wide median of the image is the paper
    whatever its colour; the ink is whichever side stands out farther from it
    (dark ink on light paper, or chalk on a board). Uneven lighting (a photo's
    shadow) is removed by subtracting a smooth estimate of the paper under the ink.
    ``dark_ink`` given: that polarity, not guessed. ``clean``: printed lines,
    boxes and edges are removed before faint ink is cut, while a pale line is
    still whole (cut first, it would break into dashes too short to be a line).
    """
    from scipy import ndimage

    if dark_ink is None:
        flat = ndimage.gaussian_filter(gray - _background(gray, "median"), sigma=1)
        dark_ink = -float(flat.min()) >= float(flat.max())
    polarity = "dark-on-light" if dark_ink else "light-on-dark"
    light = gray if dark_ink else 1 - gray  # from here on: dark ink on light paper
    ink = np.clip(_background(light, "max") - light, 0, None)

    # Strongest ink = 1. A light blur first so one hot pixel of sensor noise does not
    # set the scale.
    peak = float(ndimage.gaussian_filter(ink, sigma=1).max())
    if peak < 0.05:  # less than 5% contrast anywhere: nothing was written
        return np.zeros_like(ink), polarity
    if clean and min(ink.shape) >= MIN_CLEANUP_SIDE:
        ink = _without_lines(np.clip(ink / peak, 0, 1)) * peak
    # Faint background (paper grain, blotches, JPEG ringing, smudges) is dropped and
    # the rest stretched to [0, 1], as MNIST's scanned ink sits on a clean black
    # background. The cut is 30% of the strongest ink, raised above the paper's own
    # texture (its median + 6 robust standard deviations, measured on the 90% of
    # pixels that are surely paper) but never above 60% of the ink.
    paper_px = ink[ink <= np.percentile(ink, 90)]
    median = float(np.median(paper_px))
    spread = 1.4826 * float(np.median(np.abs(paper_px - median)))
    threshold = max(0.3 * peak, min(median + 6 * spread, 0.6 * peak))
    ink = np.clip((ink - threshold) / (peak - threshold), 0, 1)
    return ink.astype(np.float32), polarity


def _background(gray: np.ndarray, how: str) -> np.ndarray:
    """Smooth estimate of the paper, same shape as ``gray``.

    Computed on a 64 px thumbnail with a filter a quarter of the image wide, then
    blurred and scaled back up. ``"median"``: the paper whatever its colour, as long
    as ink covers under half of any window. ``"max"``: light paper under dark ink
    (a stroke cannot survive a maximum wider than itself); never below the pixel.
    """
    from scipy import ndimage

    h, w = gray.shape
    scale = 64 / max(h, w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    thumb = _resize(gray, tw, th)
    size = max(3, (max(tw, th) // 4) | 1)  # odd, ~16 px of 64
    if how == "median":
        thumb = _median(thumb, size)
    else:
        thumb = ndimage.maximum_filter(thumb, size=size, mode="nearest")
    thumb = ndimage.gaussian_filter(thumb, sigma=size / 4, mode="nearest")
    paper = _resize(thumb, w, h)
    return paper if how == "median" else np.maximum(paper, gray)


def _median(thumb: np.ndarray, size: int) -> np.ndarray:
    """Median filter of a small float image in [0, 1], ``size`` x ``size``, edges repeated.

    skimage's histogram-based rank median on 8-bit levels: about 7x faster than
    scipy.ndimage.median_filter at 64 px with a 17 px window, within 1/255 of it.
    """
    from skimage.filters import rank

    pad = size // 2
    levels = np.round(np.clip(thumb, 0, 1) * 255).astype(np.uint8)
    levels = np.pad(levels, pad, mode="edge")
    out = rank.median(levels, footprint=np.ones((size, size), bool))[pad:-pad, pad:-pad]
    return out.astype(np.float32) / np.float32(255)


def _keep_digit(ink: np.ndarray, *, near: bool = False) -> np.ndarray:
    """Drop specks: connected blobs much smaller than the digit's largest stroke.

    A digit written in several strokes (the bar of a 5, the two strokes of a 4)
    keeps all its parts: only blobs under 8% of the largest one's mass are removed.
    ``near``: also drop stray marks away from the digit: a blob is kept only when
    its box comes within ``STRAY_GAP`` of the digit's size of what is kept so far
    (grown from the largest blob outwards), or when it has 40% of the largest's mass.
    """
    from scipy import ndimage

    labels, n = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if n <= 1:
        return ink
    mass = ndimage.sum(ink, labels, index=np.arange(1, n + 1))
    big = mass >= 0.08 * mass.max()
    # Marks inside the largest blob's box are part of the drawing (a smiley's eyes, a
    # dot inside a letter): dropping them would turn a smiley into a "0". Noise specks
    # (a few pixels) stay below ENCLOSED_MASS of the blob and still go.
    boxes = ndimage.find_objects(labels)
    top, left, bottom, right = _box(boxes[int(np.argmax(mass))])
    enclosed = np.array(
        [
            b is not None
            and b[0].start >= top
            and b[0].stop <= bottom
            and b[1].start >= left
            and b[1].stop <= right
            for b in boxes
        ]
    )
    big |= enclosed & (mass >= ENCLOSED_MASS * mass.max())
    if near:
        # A blob of a digit's own mass is never a stray mark: it may be a second digit,
        # which the abstention check "not a single digit" has to see.
        comparable = mass >= 0.4 * mass.max()
        near_digit = near_the_largest(boxes, big, np.asarray(mass), STRAY_GAP)
        big = near_digit | comparable
    keep = np.concatenate([[False], big])
    return np.where(keep[labels], ink, 0).astype(np.float32)


def _box(box: tuple[slice, ...] | None) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a :func:`scipy.ndimage.find_objects` box."""
    if box is None:
        return (0, 0, 0, 0)
    return (box[0].start, box[1].start, box[0].stop, box[1].stop)


def _normalise_stroke(crop: np.ndarray) -> np.ndarray:
    """Thicken hairline strokes to MNIST's pen width (relative to the digit's size).

    Stroke width ~ 2 * area / perimeter of the inked region (a stroke of length L
    and width w has area wL and perimeter ~2L). Measured on the crop max-pooled to
    at most 100 px (max-pooling keeps a hairline at full strength where resizing
    would fade it); strokes under 9% of the longer side are dilated to ~12%.
    """
    from scipy import ndimage

    h, w = crop.shape
    k = max(1, math.ceil(max(h, w) / 100))
    padded = np.pad(crop, ((0, -h % k), (0, -w % k)))
    work = padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).max(axis=(1, 3))
    mask = work > 0.5
    area = int(mask.sum())
    if area == 0:
        return crop
    edge = mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3)))
    width = 2 * area / max(int(edge.sum()), 1)
    side = max(work.shape)
    if width >= MIN_STROKE_FRACTION * side:
        return crop
    radius = max(1, round((TARGET_STROKE_FRACTION * side - width) / 2))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (xx**2 + yy**2) <= radius**2
    work = np.pad(work, radius + 1)  # room for the thickened stroke at the crop's edges
    return ndimage.grey_dilation(work, footprint=disk).astype(np.float32)


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` px, keeping the aspect ratio (anti-aliased)."""
    h, w = crop.shape
    scale = box / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return np.clip(_resize(crop, nw, nh), 0, 1)


def _centre_of_mass_field(box: np.ndarray, field: int) -> np.ndarray:
    """Place ``box`` in a ``field`` x ``field`` black image, centre of mass at the centre."""
    h, w = box.shape
    total = float(box.sum())
    if total <= 0:
        raise ImageError(BLANK_MESSAGE, blank=True)
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = float((ys * box).sum() / total), float((xs * box).sum() / total)
    # Integer shift, as MNIST did; the centre of the field is (field - 1) / 2 in
    # pixel-centre coordinates. Clamped so the whole box stays inside the field.
    top = int(np.clip(round((field - 1) / 2 - cy), 0, field - h))
    left = int(np.clip(round((field - 1) / 2 - cx), 0, field - w))
    out = np.zeros((field, field), np.float32)
    out[top : top + h, left : left + w] = box
    return out


# %% Writing ------------------------------------------------------------------------------


def to_png(image: np.ndarray, *, scale: int = 1) -> bytes:
    """Encode a float (28, 28) image in [0, 1] as an 8-bit grayscale PNG.

    Parameters
    ----------
    image : float array (H, W) in [0, 1].
    scale : enlarge each pixel to ``scale`` x ``scale`` (nearest neighbour) for viewing.

    Returns
    -------
    The PNG file's bytes.
    """
    if scale < 1:
        raise MnistlabError(f"invalid scale={scale!r}: expected an integer >= 1")
    arr = np.clip(np.asarray(image, np.float32), 0, 1)
    im = Image.fromarray(np.round(arr * 255).astype(np.uint8))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
