"""The 15 corruptions of MNIST-C (Mu and Gilmer, 2019), implemented by this project.

MNIST-C corrupts MNIST's test digits in ways a human still reads at a glance
(arXiv:1906.02337). Each corruption here is one function, registered by its
MNIST-C name, written from the paper's description with the severity MNIST-C
published (the parameters are named where they are used)::

    shot_noise     photon noise: Poisson counts of 3 photons at full ink
    impulse_noise  salt and pepper on 17% of the pixels
    glass_blur     blur (sigma 0.7), pixels swapped with a neighbour (twice), blur
    motion_blur    a one-sided blur 10 px long (Gaussian weights, sigma 3), angle +-45 deg
    shear          horizontal shear by 0.4 rad about the centre, either way
    scale          the digit shrunk to 70% about the centre
    rotate         rotation by 0.4 rad (23 deg) about the centre, either way
    brightness     everything brightened by half the range (background mid-gray)
    translate      shifted 3 px along both axes, each way at random
    stripe         the left and right quarters (7 columns each) inverted
    fog            fractal clouds (diamond-square) laid over the digit, 3x its ink
    spatter        blobs of gray mud (smooth noise thresholded) over the digit
    dotted_line    a dashed line from the left edge to the right edge
    zigzag         a zigzag line (2 px legs, 2 px amplitude) across the digit
    canny_edges    only the edges Canny finds (skimage.feature.canny), white on black

A corruption maps float64 images ``(N, 28, 28)`` in [0, 1] (white ink on black)
and a NumPy ``Generator`` to images of the same shape; :func:`corrupt` is the
entry point on uint8 arrays. Its random draws come from a generator seeded by
``(seed, CRC-32 of the name)``, so one corruption gives the same images for a
seed whatever other corruptions run, in whatever order.

>>> import numpy as np
>>> digits = np.zeros((2, 28, 28), np.uint8)
>>> digits[:, 8:20, 12:16] = 255
>>> noisy = corrupt(digits, "shot_noise", seed=0)
>>> noisy.shape, noisy.dtype, bool((noisy == corrupt(digits, "shot_noise", seed=0)).all())
((2, 28, 28), dtype('uint8'), True)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from mnistlab.errors import MnistlabError

SIDE = 28
CENTRE = (SIDE - 1) / 2  # 13.5: the centre of the field in pixel-centre coordinates

# float64 (N, 28, 28) in [0, 1] and a generator -> float64 (N, 28, 28) in [0, 1].
Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]

CORRUPTIONS: dict[str, Corruption] = {}


def register(name: str) -> Callable[[Corruption], Corruption]:
    """Add a corruption to :data:`CORRUPTIONS` under ``name`` (MNIST-C's name)."""

    def add(function: Corruption) -> Corruption:
        CORRUPTIONS[name] = function
        return function

    return add


def corruption_names() -> tuple[str, ...]:
    """The registered corruptions, in MNIST-C's order."""
    return tuple(CORRUPTIONS)


def corrupt(images: np.ndarray, name: str, *, seed: int = 0) -> np.ndarray:
    """Apply the corruption ``name`` to MNIST images.

    Parameters
    ----------
    images : uint8 (N, 28, 28), white ink on black (MNIST's form).
    name : one of :func:`corruption_names`.
    seed : a non-negative integer; the same seed gives the same images.

    Returns
    -------
    uint8 (N, 28, 28): the corrupted images.

    Raises
    ------
    MnistlabError
        Images of another shape or type, an unknown name, or a bad seed.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise MnistlabError(
            f"expected uint8 images shaped (N, {SIDE}, {SIDE}), got {images.dtype} {images.shape}"
        )
    if name not in CORRUPTIONS:
        raise MnistlabError(
            f"unknown corruption {name!r}; choose one of: {', '.join(corruption_names())}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MnistlabError(f"invalid seed={seed!r}: expected an integer >= 0")
    if len(images) == 0:
        return images.copy()
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
    out = CORRUPTIONS[name](images.astype(np.float64) / 255, rng)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


# %% Helpers ---------------------------------------------------------------------------


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image (not across the batch axis)."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")


def _warp(x: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Map every image of ``x`` by the same linear map about the centre (bilinear, black fill).

    ``linear`` is 2x2 in (column, row) coordinates and says where an output pixel
    takes its value from (the inverse map, as :func:`skimage.transform.warp` wants).
    """
    from skimage.transform import AffineTransform, warp

    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = CENTRE - linear @ np.array([CENTRE, CENTRE])
    if len(x) == 0:
        return x
    # skimage warps the first two axes and carries the last one along: images as channels.
    out = warp(
        np.moveaxis(x, 0, -1),
        AffineTransform(matrix=matrix),
        order=1,
        mode="constant",
        cval=0.0,
        preserve_range=True,
    )
    return np.moveaxis(out, -1, 0)


def _warp_each_way(
    x: np.ndarray, rng: np.random.Generator, linear: Callable[[int], np.ndarray]
) -> np.ndarray:
    """Warp each image by ``linear(+1)`` or ``linear(-1)``, chosen at random per image."""
    signs = rng.choice(np.array([-1, 1]), size=len(x))
    out = np.empty_like(x)
    for sign in (-1, 1):
        chosen = signs == sign
        out[chosen] = _warp(x[chosen], linear(sign))
    return out


def _sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of each image at (rows, cols), each (N, 28, 28); black outside."""
    index = np.broadcast_to(np.arange(len(x))[:, None, None], rows.shape)
    # The batch coordinate is an exact integer, so interpolation never mixes images.
    return ndimage.map_coordinates(x, [index, rows, cols], order=1, mode="constant", cval=0.0)


# Lines drawn over digits: full strength on the centre line, fading to nothing 1.5 px
# away, about as wide as an MNIST pen stroke.
LINE_HALF_WIDTH = 1.5


def _draw_segments(n: int, segments: np.ndarray) -> np.ndarray:
    """Ink (N, 28, 28) in [0, 1] of line segments; ``segments`` (N, S, 4): r0, c0, r1, c1."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    ink = np.zeros((n, SIDE, SIDE))
    for k in range(segments.shape[1]):
        r0, c0, r1, c1 = (segments[:, k, i, None, None] for i in range(4))
        dr, dc = r1 - r0, c1 - c0
        # The nearest point of the segment to each pixel, as a fraction t along it.
        t = np.clip(((rows - r0) * dr + (cols - c0) * dc) / np.maximum(dr**2 + dc**2, 1e-12), 0, 1)
        dist = np.hypot(rows - (r0 + t * dr), cols - (c0 + t * dc))
        ink = np.maximum(ink, np.clip(1 - (dist / LINE_HALF_WIDTH) ** 2, 0, 1))
    return ink


def _plasma(n: int, rng: np.random.Generator, size: int = 64, decay: float = 2.0) -> np.ndarray:
    """Fractal clouds by the diamond-square algorithm: (n, size, size) maps in [0, 1].

    ``size`` is a power of two; the map wraps around at its edges. The random
    displacement shrinks by ``decay`` at each finer scale, so the clouds are mostly
    broad shapes with fading detail.
    """
    out = np.zeros((n, size, size))
    step, amplitude = size, 1.0
    while step >= 2:
        half = step // 2
        corners = out[:, 0:size:step, 0:size:step]
        right, below = np.roll(corners, -1, axis=2), np.roll(corners, -1, axis=1)
        diagonal = np.roll(below, -1, axis=2)
        # Square step: each square's centre is the mean of its corners, displaced.
        centres = (corners + right + below + diagonal) / 4
        centres += amplitude * rng.uniform(-1, 1, centres.shape)
        out[:, half:size:step, half:size:step] = centres
        # Diamond step: each edge's midpoint is the mean of its two corners and the
        # two centres beside it (above/below for top edges, left/right for left edges).
        top = (corners + right + centres + np.roll(centres, 1, axis=1)) / 4
        left = (corners + below + centres + np.roll(centres, 1, axis=2)) / 4
        out[:, 0:size:step, half:size:step] = top + amplitude * rng.uniform(-1, 1, top.shape)
        out[:, half:size:step, 0:size:step] = left + amplitude * rng.uniform(-1, 1, left.shape)
        step, amplitude = half, amplitude / decay
    low = out.min(axis=(1, 2), keepdims=True)
    high = out.max(axis=(1, 2), keepdims=True)
    return (out - low) / np.maximum(high - low, 1e-12)


# %% Noise -----------------------------------------------------------------------------


@register("shot_noise")
def shot_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon noise: each pixel is a Poisson count of ``3 * x`` photons, divided by 3."""
    photons = 3  # at full ink; the black background stays black
    return np.clip(rng.poisson(x * photons) / photons, 0, 1)


@register("impulse_noise")
def impulse_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: 17% of the pixels set to white or black, half each."""
    from skimage.util import random_noise

    return random_noise(x, mode="s&p", amount=0.17, salt_vs_pepper=0.5, rng=rng)


# %% Blur ------------------------------------------------------------------------------


@register("glass_blur")
def glass_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frosted glass: blur, swap pixels with a random neighbour (two sweeps), blur again.

    Each sweep visits the pixels from the bottom right to the top left; at each, half
    of the images (at random) swap it with a pixel up to 1 px away in each direction.
    The swaps of one position are done for all images at once.
    """
    sigma, reach, sweeps = 0.7, 1, 2
    x = _blur(x, sigma)
    n = len(x)
    for _ in range(sweeps):
        swap = rng.random((n, SIDE, SIDE)) < 0.5
        dy = rng.integers(-reach, reach + 1, size=(n, SIDE, SIDE))
        dx = rng.integers(-reach, reach + 1, size=(n, SIDE, SIDE))
        for r in range(SIDE - 1 - reach, reach - 1, -1):
            for c in range(SIDE - 1 - reach, reach - 1, -1):
                who = np.flatnonzero(swap[:, r, c])
                r2, c2 = r + dy[who, r, c], c + dx[who, r, c]
                here = x[who, r, c]
                x[who, r, c] = x[who, r2, c2]
                x[who, r2, c2] = here
    return np.clip(_blur(x, sigma), 0, 1)


@register("motion_blur")
def motion_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera moving during the exposure: a one-sided blur along a random angle.

    Each output pixel is a weighted mean of the pixels 0 to 10 px away along the
    image's direction (uniform in -45 to 45 degrees), Gaussian weights (sigma 3 px)
    that fall with the distance.
    """
    length, sigma = 10, 3.0
    steps = np.arange(length + 1, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    weights /= weights.sum()
    angle = np.deg2rad(rng.uniform(-45, 45, size=len(x)))[:, None, None]
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    out = np.zeros_like(x)
    for step, weight in zip(steps, weights, strict=True):
        out += weight * _sample(x, rows + step * np.sin(angle), cols + step * np.cos(angle))
    return np.clip(out, 0, 1)


# %% Affine transformations -------------------------------------------------------------


@register("shear")
def shear(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Horizontal shear by 0.4 rad (rows slide sideways in proportion to their height)."""
    slope = np.tan(0.4)
    return _warp_each_way(x, rng, lambda sign: np.array([[1.0, sign * slope], [0.0, 1.0]]))


@register("scale")
def scale(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit shrunk to 70% of its size about the centre of the field."""
    del rng  # the same for every image
    size = 0.7
    return _warp(x, np.eye(2) / size)


@register("rotate")
def rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by 0.4 rad (about 23 degrees) about the centre, clockwise or not."""

    def turn(sign: int) -> np.ndarray:
        angle = sign * 0.4
        return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    return _warp_each_way(x, rng, turn)


@register("brightness")
def brightness(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brighter by half the range: black background becomes mid-gray, ink saturates.

    MNIST-C raises the value (V) of HSV by 0.5; for a gray pixel V is its gray
    level, so that is adding 0.5 to every pixel.
    """
    del rng
    return np.clip(x + 0.5, 0, 1)


@register("translate")
def translate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shift of 3 px along each axis, left or right and up or down at random."""
    shift = 3
    signs = rng.choice(np.array([-1, 1]), size=(len(x), 2))
    out = np.empty_like(x)
    for sy in (-1, 1):
        for sx in (-1, 1):
            chosen = (signs[:, 0] == sy) & (signs[:, 1] == sx)
            out[chosen] = ndimage.shift(x[chosen], (0, sy * shift, sx * shift), order=0, cval=0)
    return out


# %% Occlusion and other changes of the image ------------------------------------------


@register("stripe")
def stripe(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The leftmost and rightmost 7 columns inverted: white bands at both sides."""
    del rng
    out = x.copy()
    band = SIDE // 4
    out[:, :, :band] = 1 - out[:, :, :band]
    out[:, :, SIDE - band :] = 1 - out[:, :, SIDE - band :]
    return out


@register("fog")
def fog(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fractal clouds 3x as strong as the ink, scaled back to the image's brightest pixel.

    The image becomes ``(x + 3 * clouds) * peak / (peak + 3)``: the digit keeps a
    quarter of its contrast, on an uneven gray background. Each image gets its own
    clouds, a 28 px corner of a 64 px map.
    """
    strength = 3.0
    peak = x.max(axis=(1, 2), keepdims=True)
    out = np.empty_like(x)
    for start in range(0, len(x), 1000):  # 1,000 maps of 64x64 at a time: ~33 MB
        part = slice(start, start + 1000)
        clouds = _plasma(len(x[part]), rng)[:, :SIDE, :SIDE]
        out[part] = (x[part] + strength * clouds) * peak[part] / (peak[part] + strength)
    return np.clip(out, 0, 1)


@register("spatter")
def spatter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mud: dark gray blobs (25% gray) where smooth random noise is high, over the digit.

    Per-pixel noise (mean 0.65, sd 0.3) is blurred (sigma 1 px) into smooth blobs;
    where it is above its mean is wet; the wet mask, blurred (sigma 1.5 px), keeps
    only the inside of large blobs (>= 0.8), which are painted over the image.
    """
    mean, spread, grain, soften = 0.65, 0.3, 1.0, 1.5
    mud_gray = 63 / 255
    liquid = _blur(rng.normal(mean, spread, size=x.shape), grain)
    mud = _blur((liquid > mean).astype(np.float64), soften)
    mud[mud < 0.8] = 0
    return np.clip(x * (1 - mud) + mud_gray * mud, 0, 1)


@register("dotted_line")
def dotted_line(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dashed line (2 px dashes, 2 px gaps) from a random row at the left edge to the right."""
    n = len(x)
    r0, r1 = rng.integers(0, SIDE, size=(2, n))
    segments = np.stack([r0, np.zeros(n), r1, np.full(n, SIDE - 1.0)], axis=1)[:, None, :]
    ink = _draw_segments(n, segments.astype(np.float64))
    phase = rng.integers(0, 4, size=n)[:, None, None]
    dashes = ((np.arange(SIDE)[None, None, :] + phase) // 2) % 2 == 0
    return np.clip(x + ink * dashes, 0, 1)


@register("zigzag")
def zigzag(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag line across the digit: legs 2 px long, 2 px either side of its axis.

    The axis runs from column 2 to column 25, from a random row to a row up to 5 px
    higher or lower.
    """
    n = len(x)
    leg, amplitude, c0, c1 = 2.0, 2.0, 2.0, 25.0
    r0 = rng.integers(0, SIDE, size=n).astype(np.float64)
    r1 = r0 + rng.integers(-5, 6, size=n)
    theta = np.arctan2(r1 - r0, c1 - c0)
    length = np.hypot(r1 - r0, c1 - c0)  # 23 to 23.5 px: the same number of turns for all
    turns = np.arange(leg, c1 - c0, 2 * leg)  # distance along the axis of each turn
    along = np.concatenate([np.zeros((n, 1)), np.tile(turns, (n, 1)), length[:, None]], axis=1)
    side = np.concatenate([[0.0], amplitude * (-1.0) ** np.arange(len(turns)), [0.0]])
    side = np.broadcast_to(side, along.shape)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    cols = c0 + along * cos - side * sin
    rows = r0[:, None] + along * sin + side * cos
    segments = np.stack([rows[:, :-1], cols[:, :-1], rows[:, 1:], cols[:, 1:]], axis=2)
    return np.clip(x + _draw_segments(n, segments), 0, 1)


@register("canny_edges")
def canny_edges(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's outline: Canny edges (skimage.feature.canny, sigma 1) in white."""
    from skimage.feature import canny

    del rng
    return np.stack([canny(image) for image in x]).astype(np.float64).reshape(x.shape)
