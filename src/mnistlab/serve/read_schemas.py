"""The bodies of ``POST /v1/read`` (reading a whole number) as pydantic models.

:class:`ReadJson` is the JSON request: a gray image of any size as rows of numbers
in [0, 1] (:data:`InkGrid`, checked by :func:`to_gray_array` with one-line
messages, like the 28x28 grid of ``/v1/predict``). :class:`ReadResponse` is the
answer: the number as text (or null with the reason), its confidence, and each
digit's box, digit and probabilities. FastAPI puts both in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = ["InkGrid", "ReadDigit", "ReadJson", "ReadResponse", "ReadUpload", "to_gray_array"]


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("gray_image", message)


def to_gray_array(value: Any, what: str = "image") -> np.ndarray:
    """Validate a JSON image (rows of equal length, numbers in [0, 1]) -> float32 (H, W).

    Raises
    ------
    pydantic_core.PydanticCustomError
        (a ``ValueError``) with a one-line message naming ``what`` and the problem.

    Examples
    --------
    >>> to_gray_array([[0.0, 1.0, 0.5]] * 2).shape
    (2, 3)
    """
    if not isinstance(value, list) or not value:
        got = "no rows" if isinstance(value, list) else type(value).__name__
        raise _invalid(f"{what} must be a list of rows of numbers in [0, 1]; got {got}")
    width = len(value[0]) if isinstance(value[0], list) else 0
    for i, row in enumerate(value):
        if not isinstance(row, list) or not row or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise _invalid(
                f"{what}: row {i} must hold {width or 'some'} numbers like row 0; got {got}"
            )
        for v in row:
            # bool is an int in Python; true/false are not pixel values.
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _invalid(f"{what}: row {i} holds {type(v).__name__} {v!r}, not a number")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError as err:  # an integer too large for a float (10**400)
        raise _invalid(f"{what} holds a number too large; send numbers in [0, 1]") from err
    if not np.isfinite(arr).all():  # 1e999 parses as infinity
        raise _invalid(f"{what} holds a non-finite value; send finite numbers in [0, 1]")
    if arr.min() < 0 or arr.max() > 1:
        raise _invalid(
            f"{what} values must be in [0, 1]; got {arr.min():g}..{arr.max():g} "
            "(divide 0-255 pixels by 255)"
        )
    return arr.astype(np.float32)


_GRAY_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "description": (
        "a gray image, rows of equal length, values in [0, 1] (0 = black); either "
        "polarity: dark ink on light paper or light ink on dark"
    ),
}

# In Python a float32 (H, W) array; in the schema rows of numbers in [0, 1].
InkGrid = Annotated[
    np.ndarray, PlainValidator(to_gray_array), WithJsonSchema(_GRAY_SCHEMA, mode="validation")
]


class ReadJson(BaseModel):
    """``POST /v1/read`` with a JSON body: one gray image of any size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: InkGrid


class ReadUpload(BaseModel):
    """``POST /v1/read`` as a multipart form: one image file (any format Pillow reads)."""

    file: Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]


class ReadDigit(BaseModel):
    """One digit of the number, left to right."""

    box: list[int] = Field(
        min_length=4, max_length=4, description="x0, y0, x1, y1 in the input image's pixels"
    )
    digit: int = Field(ge=0, le=9, description="the digit read")
    confidence: float = Field(ge=0, le=1, description="its probability")
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="all ten, in digit order"
    )


class ReadResponse(BaseModel):
    """The number read from one image; ``text`` is null when none could be read."""

    text: str | None = Field(description="the digits read, left to right; null when none")
    confidence: float = Field(ge=0, le=1, description="how sure the reader is of the whole")
    reason: str | None = Field(
        None, description="why there is no number (e.g. 'no digits found'); null when read"
    )
    digits: list[ReadDigit] = Field(description="each digit with its box, left to right")
    width: int = Field(description="the input image's width in pixels (the boxes' frame)")
    height: int = Field(description="the input image's height in pixels")
    read_ms: float = Field(description="segmenting and recognising, in milliseconds")
