"""Drawing a reading onto its image: each digit's box and what was read there.

Pillow's ImageDraw on an RGB copy of the image (shown dark ink on light paper as
decoded); the number, or the reason nothing was read, is written along the top.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnistlab.read.reader import NumberReading

__all__ = ["annotate"]

BOX_COLOUR = (220, 30, 30)
TEXT_COLOUR = (20, 60, 200)


def annotate(image: np.ndarray, reading: NumberReading) -> Image.Image:
    """An RGB copy of ``image`` with each digit's box and digit drawn, and the number on top.

    Parameters
    ----------
    image : 2-D uint8 or float in [0, 1], as given to :func:`mnistlab.read.read_image`.
    reading : its reading.

    Returns
    -------
    PIL.Image.Image (RGB), the image's size plus a caption strip on top.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.round(np.clip(arr.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    h, w = arr.shape
    size = max(12, min(48, h // 8))
    strip = size + 8
    out = Image.new("RGB", (w, h + strip), (255, 255, 255))
    out.paste(Image.fromarray(arr).convert("RGB"), (0, strip))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=size)
    small = ImageFont.load_default(size=max(10, size * 2 // 3))
    width = max(1, round(min(w, h) / 150))
    for d in reading.digits:
        x0, y0, x1, y1 = d.box
        colour = BOX_COLOUR if reading.text is not None else (150, 150, 150)
        draw.rectangle((x0, y0 + strip, x1 - 1, y1 - 1 + strip), outline=colour, width=width)
        draw.text((x0 + width + 1, y0 + strip + width), str(d.digit), fill=colour, font=small)
    caption = (
        f"{reading.text}  ({reading.confidence:.0%})"
        if reading.text is not None
        else f"no number: {reading.reason}"
    )
    draw.text((4, 4), caption, fill=TEXT_COLOUR, font=font)
    return out
