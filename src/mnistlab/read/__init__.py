"""Reading whole written numbers (postcodes, years, amounts) with a run's digit classifier.

::

    ink        the page's ink at working size; a crop in MNIST form
    segment    the page's components and cut points, candidate digits
    verifier   is a candidate one whole digit? (a small convnet kept in the run)
    reader     NumberReader (a run's model), read_image / read_bytes -> NumberReading
    annotate   the reading drawn on its image
    compose    synthetic number images from MNIST digits, in several layouts
    benchmark  exact and digit accuracy, speed, per layout, beside Tesseract

>>> from mnistlab.read import NumberReading
>>> NumberReading(text=None, confidence=0.0, reason="no ink").text is None
True
"""

from __future__ import annotations

from mnistlab.read.annotate import annotate
from mnistlab.read.reader import (
    Decoding,
    DigitReading,
    NumberReader,
    NumberReading,
    read_bytes,
    read_image,
)

__all__ = [
    "Decoding",
    "DigitReading",
    "NumberReader",
    "NumberReading",
    "annotate",
    "read_bytes",
    "read_image",
]
