"""Input checks on the MNIST-form image, before any model: too much ink, several digits.

Two cheap facts about the 28x28 image the model sees (white ink on black):

- :func:`ink_fraction`: the share of the field inked (> 0.5). MNIST's digits ink at
  most ~40% of it (99.9% of them under 30%); a page of scribbles, a photo of texture
  or noise inks much more. The limit is chosen on validation digits
  (:mod:`mnistlab.trust.fitting`).
- :func:`several_side_by_side`: two or more separate strokes of comparable mass whose
  columns do not overlap, each at least a third of the ink's height, in a field wider
  than tall: several digits written side by side (a number), which ``mnistlab read``
  reads. One digit in two strokes (the bar of a 5, a 4's two lines) overlaps in its
  columns, so it is not flagged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ink_fraction", "several_side_by_side"]


def ink_fraction(images: np.ndarray) -> np.ndarray:
    """Share of each 28x28 field inked above 0.5, float (N,)."""
    x = np.asarray(images, np.float32).reshape(len(images), -1)
    return (x > 0.5).mean(axis=1)


def several_side_by_side(image: np.ndarray) -> bool:
    """Whether a 28x28 image holds several separate digit-sized blobs side by side."""
    from scipy import ndimage

    mask = np.asarray(image) > 0.3
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n < 2:
        return False
    ys, xs = np.nonzero(mask)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    if width < 1.3 * height:  # a number is wider than tall once boxed to 20 px
        return False
    mass = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    big = [i + 1 for i in range(n) if mass[i] >= 0.2 * mass.max()]
    boxes = ndimage.find_objects(labels)
    spans = sorted(
        (boxes[i - 1][1].start, boxes[i - 1][1].stop)
        for i in big
        if (boxes[i - 1][0].stop - boxes[i - 1][0].start) >= height / 3
    )
    separate = sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] >= a[1])
    return separate >= 1
