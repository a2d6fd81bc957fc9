"""Training-time perturbations: the ways real scans and photos differ from MNIST, on the fly.

A fraction ``config.perturb`` of the digits of every training batch gets one
perturbation, chosen uniformly from ``config.perturbations``; the rest stay as
they are (after the affine augmentation, which comes first). Each family draws
its own random settings per image, over a range, so the network sees a family of
changes, not one fixed corruption::

    background      a gray level (0-0.7), even or uneven (a 4x4 grid of random
                    levels, smoothly interpolated), added to the digit, whose
                    contrast drops to 25-100%
    gamma           contrast down to 30-100%, then a gamma of 0.3-3.3
    gaussian_noise  Gaussian noise, sd 0.05-0.35
    salt_pepper     2-30% of the pixels set to white or black
    blur            Gaussian blur, sd 0.3-1.8 px, independently along rows and columns
    elastic         a smooth random displacement field (5x5 grid, up to ~2.5 px),
                    or with a third of the images a rough one (14x14 grid, ~1 px)
    occlude         a rectangle or an ellipse (2-9 px half sides) of any gray over the digit
    strokes         a line or a wavy line (0-3 px waves), solid or dashed, 0.8-2 px
                    half-width, of gray 0.5-1, across part or all of the field, any slope
    outline         the digit's outline only (Sobel gradient magnitude), soft or
                    thresholded, 1-2 px wide
    invert_band     one or two bands (3-12 px wide, rows or columns) inverted

All are pure TensorFlow ops on a float32 batch ``(B, H, W, 1)`` in [0, 1], with
stateless random ops seeded by a ``(2,)`` int64 seed (the pipeline's
``(seed, global step)``), so a batch is perturbed the same way every time, also
after a resume. Every family's output stays in [0, 1] and keeps the shape.

None of these copies a corruption of the robustness benchmark
(:mod:`mnistlab.robustness.corruptions`): those are the reporting set, never used
for training or for choosing these settings (chosen on validation digits only:
clean, and under these families).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from mnistlab.config import PERTURBATION_FAMILIES
from mnistlab.errors import MnistlabError

# (images (B, H, W, 1), seed (2,)) -> images (B, H, W, 1); each in [0, 1].
Perturbation = Callable[[Any, Any], Any]


def perturb_batch(
    images: Any, seed: Any, rate: float, families: Sequence[str] = PERTURBATION_FAMILIES
) -> Any:
    """Perturb a fraction ``rate`` of a batch, one random family per perturbed image.

    Parameters
    ----------
    images : float32 (B, H, W, 1) tensor in [0, 1].
    seed : int64 (2,) tensor for TensorFlow's stateless random ops.
    rate : probability that an image is perturbed, in [0, 1].
    families : the perturbations to choose from (names in :data:`PERTURBATION_FAMILIES`).

    Returns
    -------
    float32 (B, H, W, 1) tensor in [0, 1]; a pure function of ``(images, seed)``.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> x = np.zeros((4, 28, 28, 1), np.float32); x[:, 8:20, 12:16] = 1
    >>> a = perturb_batch(x, tf.constant([1, 2], tf.int64), 1.0).numpy()
    >>> b = perturb_batch(x, tf.constant([1, 2], tf.int64), 1.0).numpy()
    >>> a.shape, bool((a == b).all()), bool(a.min() >= 0 and a.max() <= 1)
    ((4, 28, 28, 1), True, True)
    """
    import tensorflow as tf

    unknown = sorted(set(families) - set(PERTURBATION_FAMILIES))
    if unknown or not families:
        raise MnistlabError(
            f"invalid perturbations {list(families)}: expected one or more of "
            f"{', '.join(PERTURBATION_FAMILIES)}"
        )
    images = tf.convert_to_tensor(images, tf.float32)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    b = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=len(families) + 2)
    chosen = tf.random.stateless_uniform([b], seeds[0], 0, len(families), dtype=tf.int32)
    applied = tf.random.stateless_uniform([b], seeds[1]) < rate
    out = images
    for i, name in enumerate(families):
        where = tf.reshape(applied & (chosen == i), [-1, 1, 1, 1])
        out = tf.where(where, PERTURBATIONS[name](images, seeds[i + 2]), out)
    return tf.clip_by_value(out, 0.0, 1.0)


# %% Helpers ---------------------------------------------------------------------------


def _per_image(seed: Any, images: Any, low: float, high: float) -> Any:
    """One uniform draw in [low, high) per image, shaped (B, 1, 1, 1) to broadcast."""
    import tensorflow as tf

    b = tf.shape(images)[0]
    return tf.random.stateless_uniform([b, 1, 1, 1], seed, low, high)


def _split(seed: Any, n: int) -> list[Any]:
    import tensorflow as tf

    parts = tf.random.experimental.stateless_split(seed, num=n)
    return [parts[i] for i in range(n)]


def _grid(images: Any) -> tuple[Any, Any]:
    """Row and column coordinates, float32 (1, H, W, 1) each."""
    import tensorflow as tf

    shape = tf.shape(images)
    rows = tf.cast(tf.range(shape[1]), tf.float32)[None, :, None, None]
    cols = tf.cast(tf.range(shape[2]), tf.float32)[None, None, :, None]
    return rows + 0 * cols, cols + 0 * rows


def _smooth_field(images: Any, seed: Any, cells: int) -> Any:
    """A smooth random map in [0, 1], (B, H, W, 1): a cells x cells grid, bilinear."""
    import tensorflow as tf

    shape = tf.shape(images)
    grid = tf.random.stateless_uniform([shape[0], cells, cells, 1], seed)
    return tf.image.resize(grid, shape[1:3], method="bilinear")


def _shifted(x: Any, offset: int, axis: int) -> Any:
    """``x`` moved by ``offset`` pixels along ``axis`` (1: rows, 2: columns), edges repeated."""
    import tensorflow as tf

    n = tf.shape(x)[axis]
    index = tf.clip_by_value(tf.range(n) + offset, 0, n - 1)
    return tf.gather(x, index, axis=axis)


def _sample(images: Any, rows: Any, cols: Any) -> Any:
    """Bilinear samples of each image at (rows, cols), each (B, H, W); black outside."""
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    flat = tf.reshape(images, [b, h * w])
    r0, c0 = tf.floor(rows), tf.floor(cols)
    out = tf.zeros_like(rows)
    for dr in (0.0, 1.0):
        for dc in (0.0, 1.0):
            r, c = r0 + dr, c0 + dc
            weight = (1 - tf.abs(rows - r)) * (1 - tf.abs(cols - c))
            inside = (r >= 0) & (r <= tf.cast(h - 1, tf.float32))
            inside &= (c >= 0) & (c <= tf.cast(w - 1, tf.float32))
            index = tf.cast(tf.clip_by_value(r, 0, tf.cast(h - 1, tf.float32)), tf.int32) * w
            index += tf.cast(tf.clip_by_value(c, 0, tf.cast(w - 1, tf.float32)), tf.int32)
            values = tf.gather(flat, tf.reshape(index, [b, -1]), batch_dims=1)
            out += tf.where(inside, weight * tf.reshape(values, tf.shape(rows)), 0.0)
    return out


# %% The families ----------------------------------------------------------------------


def background(images: Any, seed: Any) -> Any:
    """A gray background (even or uneven) added under a digit of lower contrast."""
    import tensorflow as tf

    s_level, s_even, s_field, s_contrast = _split(seed, 4)
    level = _per_image(s_level, images, 0.0, 0.7)
    unevenness = _per_image(s_even, images, 0.0, 1.0)
    field = _smooth_field(images, s_field, 4)
    ground = level * (1 - unevenness + unevenness * field)
    contrast = _per_image(s_contrast, images, 0.25, 1.0)
    return tf.clip_by_value(ground + contrast * images, 0.0, 1.0)


def gamma(images: Any, seed: Any) -> Any:
    """Lower contrast, then a gamma curve (faint or heavy ink)."""
    import tensorflow as tf

    s_contrast, s_gamma = _split(seed, 2)
    contrast = _per_image(s_contrast, images, 0.3, 1.0)
    exponent = tf.exp(_per_image(s_gamma, images, -1.2, 1.2))
    return tf.pow(tf.maximum(contrast * images, 0.0), exponent)


def gaussian_noise(images: Any, seed: Any) -> Any:
    """Additive Gaussian noise of a random strength per image."""
    import tensorflow as tf

    s_sd, s_noise = _split(seed, 2)
    sd = _per_image(s_sd, images, 0.05, 0.35)
    noise = tf.random.stateless_normal(tf.shape(images), s_noise)
    return tf.clip_by_value(images + sd * noise, 0.0, 1.0)


def salt_pepper(images: Any, seed: Any) -> Any:
    """A random share of the pixels set to white (salt) or black (pepper), half each."""
    import tensorflow as tf

    s_amount, s_pixels = _split(seed, 2)
    amount = _per_image(s_amount, images, 0.02, 0.3)
    u = tf.random.stateless_uniform(tf.shape(images), s_pixels)
    out = tf.where(u < amount / 2, 1.0, images)
    return tf.where(u > 1 - amount / 2, 0.0, out)


def blur(images: Any, seed: Any) -> Any:
    """Gaussian blur with its own width along rows and along columns (0.3-1.8 px each)."""
    import tensorflow as tf

    reach = 4  # taps either side: enough for sd 1.8
    out = images
    for axis, part in zip((1, 2), _split(seed, 2), strict=True):
        sd = _per_image(part, images, 0.3, 1.8)
        taps = tf.range(-reach, reach + 1, dtype=tf.float32)
        weights = tf.exp(-(taps**2) / (2 * sd**2))  # (B, 1, 1, taps): one kernel per image
        weights /= tf.reduce_sum(weights, axis=-1, keepdims=True)
        out = tf.add_n(
            [
                weights[..., k][..., None] * _shifted(out, k - reach, axis)
                for k in range(2 * reach + 1)
            ]
        )
    return out


def elastic(images: Any, seed: Any) -> Any:
    """Each pixel displaced by a smooth random field (coarse and larger, or fine and small)."""
    import tensorflow as tf

    s_dr, s_dc, s_size, s_kind, s_fr, s_fc = _split(seed, 6)
    rows, cols = _grid(images)
    size = _per_image(s_size, images, 0.5, 2.5)  # px: the largest displacement, coarse field
    rough = _per_image(s_kind, images, 0.0, 1.0) < 1 / 3
    coarse = [2 * _smooth_field(images, s, 5) - 1 for s in (s_dr, s_dc)]
    fine = [2 * _smooth_field(images, s, 14) - 1 for s in (s_fr, s_fc)]
    dr = tf.where(rough, fine[0], size * coarse[0])
    dc = tf.where(rough, fine[1], size * coarse[1])
    return _sample(images[..., 0], (rows + dr)[..., 0], (cols + dc)[..., 0])[..., None]


def occlude(images: Any, seed: Any) -> Any:
    """A rectangle or an ellipse of a random gray laid over the digit (a stain, a sticker)."""
    import tensorflow as tf

    s_r, s_c, s_hr, s_hc, s_gray, s_shape = _split(seed, 6)
    rows, cols = _grid(images)
    side = tf.cast(tf.shape(images)[1], tf.float32)
    centre_r = _per_image(s_r, images, 0.0, 1.0) * side
    centre_c = _per_image(s_c, images, 0.0, 1.0) * side
    half_r = _per_image(s_hr, images, 2.0, 9.0)
    half_c = _per_image(s_hc, images, 2.0, 9.0)
    du, dv = (rows - centre_r) / half_r, (cols - centre_c) / half_c
    ellipse = du**2 + dv**2 <= 1
    rectangle = (tf.abs(du) <= 1) & (tf.abs(dv) <= 1)
    mask = tf.where(_per_image(s_shape, images, 0.0, 1.0) < 0.5, ellipse, rectangle)
    gray = _per_image(s_gray, images, 0.0, 1.0)
    return tf.where(mask, gray + 0 * images, images)


def strokes(images: Any, seed: Any) -> Any:
    """A straight or wavy line, solid or dashed, across part or all of the field."""
    import tensorflow as tf

    s = _split(seed, 12)
    rows, cols = _grid(images)
    side = tf.cast(tf.shape(images)[1], tf.float32)
    vertical = _per_image(s[0], images, 0.0, 1.0) < 0.5
    along, across = tf.where(vertical, rows, cols), tf.where(vertical, cols, rows)
    start = _per_image(s[1], images, 0.0, 1.0) * side
    slope = _per_image(s[2], images, -0.7, 0.7)
    wave = _per_image(s[3], images, 0.0, 3.0) * tf.cast(
        _per_image(s[4], images, 0.0, 1.0) < 0.5, tf.float32
    )
    frequency = _per_image(s[5], images, 0.4, 1.6)  # radians per pixel
    phase = _per_image(s[6], images, 0.0, 2 * math.pi)
    centre_line = start + slope * (along - side / 2) + wave * tf.sin(frequency * along + phase)
    # Distance to the line across it, not along the axis: divided by the line's stretch.
    steepness = slope + wave * frequency * tf.cos(frequency * along + phase)
    distance = tf.abs(across - centre_line) / tf.sqrt(1 + steepness**2)
    thickness = _per_image(s[7], images, 0.8, 2.0)
    ink = tf.clip_by_value(1 - (distance / thickness) ** 2, 0.0, 1.0)
    # Part of the field or all of it: the line runs between two random points along it.
    first = _per_image(s[8], images, -0.3, 0.4) * side
    span = (along >= first) & (along <= first + _per_image(s[4], images, 0.5, 1.0) * side)
    dashed = _per_image(s[9], images, 0.0, 1.0) < 0.4
    gaps = tf.cos(along * _per_image(s[10], images, 0.8, 2.0)) > 0
    ink *= tf.cast(span & (~dashed | gaps), tf.float32)
    gray = _per_image(s[11], images, 0.5, 1.0)
    return tf.maximum(images, gray * ink)


def outline(images: Any, seed: Any) -> Any:
    """The digit's outline: its Sobel gradient magnitude, soft or thresholded."""
    import tensorflow as tf

    s_threshold, s_hard = _split(seed, 2)
    edges = tf.image.sobel_edges(images)  # (B, H, W, 1, 2): d/drow, d/dcol
    magnitude = tf.sqrt(tf.reduce_sum(edges**2, axis=-1) + 1e-12)
    peak = tf.reduce_max(magnitude, axis=[1, 2, 3], keepdims=True)
    soft = magnitude / tf.maximum(peak, 1e-6)
    threshold = _per_image(s_threshold, images, 0.2, 0.6)
    hard = tf.cast(soft > threshold, tf.float32)
    return tf.where(_per_image(s_hard, images, 0.0, 1.0) < 0.6, hard, soft)


def invert_band(images: Any, seed: Any) -> Any:
    """One or two bands of rows or columns inverted (white paper edges, light leaks)."""
    import tensorflow as tf

    s = _split(seed, 6)
    rows, cols = _grid(images)
    side = tf.cast(tf.shape(images)[1], tf.float32)
    vertical = _per_image(s[0], images, 0.0, 1.0) < 0.5
    position = tf.where(vertical, cols, rows)
    mask = tf.zeros_like(images, tf.bool)
    for k, (s_start, s_width) in enumerate(((s[1], s[2]), (s[3], s[4]))):
        start = _per_image(s_start, images, 0.0, 1.0) * (side + 2) - 4  # -4 .. side - 2
        width = _per_image(s_width, images, 3.0, 12.0)
        band = (position >= start) & (position < start + width)
        if k == 1:  # the second band on half of the images only
            band &= _per_image(s[5], images, 0.0, 1.0) < 0.5
        mask |= band
    return tf.where(mask, 1 - images, images)


PERTURBATIONS: dict[str, Perturbation] = {
    "background": background,
    "gamma": gamma,
    "gaussian_noise": gaussian_noise,
    "salt_pepper": salt_pepper,
    "blur": blur,
    "elastic": elastic,
    "occlude": occlude,
    "strokes": strokes,
    "outline": outline,
    "invert_band": invert_band,
}
