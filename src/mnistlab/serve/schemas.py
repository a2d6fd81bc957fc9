"""The HTTP API's request and response bodies as pydantic models.

FastAPI builds ``/openapi.json`` (and so ``/docs``) from these; the JSON request
bodies are validated by them, so a body of the wrong shape gets a 422 naming the
field (``body.image``, ``body.images.3``) and what was wrong with it.

A 28x28 image in a JSON body (:data:`MnistGrid`) is checked by
:func:`to_mnist_array`, which gives messages a user can act on ("values must be in
[0, 1] ... divide 0-255 pixels by 255") instead of one error per pixel.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_BATCH",
    "BatchItem",
    "BatchJson",
    "BatchResponse",
    "BatchUpload",
    "ErrorBody",
    "Health",
    "ImageJson",
    "ImageUpload",
    "LatencySummary",
    "ModelInfo",
    "PredictResponse",
    "Stats",
    "TopClass",
    "ValidationIssue",
    "to_mnist_array",
]

MAX_BATCH = 256  # images per batch request
SIDE = 28  # MNIST's image side in pixels


# %% A 28x28 image in JSON ---------------------------------------------------------------


def _invalid(message: str) -> PydanticCustomError:
    # The message is used as is (no "Value error, " prefix): it is what the user reads.
    return PydanticCustomError("mnist_image", message)


def to_mnist_array(value: Any, what: str = "image") -> np.ndarray:
    """Validate a JSON 28x28 array of numbers in [0, 1] -> float32 (28, 28).

    Raises
    ------
    pydantic_core.PydanticCustomError
        (a ``ValueError``) with a one-line message naming ``what`` and the problem.

    Examples
    --------
    >>> to_mnist_array([[0.5] * 28] * 28).shape
    (28, 28)
    """
    if not isinstance(value, list) or len(value) != SIDE:
        got = f"{len(value)} rows" if isinstance(value, list) else type(value).__name__
        raise _invalid(f"{what} must be 28 rows of 28 numbers in [0, 1]; got {got}")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != SIDE:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise _invalid(f"{what}: row {i} must hold 28 numbers; got {got}")
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
            f"{what} values must be in [0, 1] (white ink on black); got "
            f"{arr.min():g}..{arr.max():g} (divide 0-255 pixels by 255)"
        )
    return arr.astype(np.float32)


_GRID_SCHEMA = {
    "type": "array",
    "minItems": SIDE,
    "maxItems": SIDE,
    "items": {
        "type": "array",
        "minItems": SIDE,
        "maxItems": SIDE,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "description": "28x28 MNIST-form image, white ink (1) on black (0)",
}

# In Python a float32 (28, 28) array; in the schema a 28x28 array of numbers in [0, 1].
MnistGrid = Annotated[
    np.ndarray, PlainValidator(to_mnist_array), WithJsonSchema(_GRID_SCHEMA, mode="validation")
]


def _batch_items(value: Any) -> list[np.ndarray]:
    """1 to 256 JSON images, each checked by :func:`to_mnist_array`."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BATCH:
        n = len(value) if isinstance(value, list) else type(value).__name__
        raise PydanticCustomError(
            "batch_size", f'"images" must be a list of 1 to {MAX_BATCH} images; got {n}'
        )
    return [to_mnist_array(v, f"images[{i}]") for i, v in enumerate(value)]


_BATCH_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_BATCH,
    "items": _GRID_SCHEMA,
    "description": f"1 to {MAX_BATCH} images in MNIST form",
}
MnistGrids = Annotated[
    list[np.ndarray], PlainValidator(_batch_items), WithJsonSchema(_BATCH_SCHEMA, mode="validation")
]


# %% Requests ------------------------------------------------------------------------------


class ImageJson(BaseModel):
    """``POST /v1/predict`` (and ``/v1/preprocess``) with a JSON body: one image."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: MnistGrid


class BatchJson(BaseModel):
    """``POST /v1/predict/batch`` with a JSON body: up to 256 images."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    images: MnistGrids


class ImageUpload(BaseModel):
    """``POST /v1/predict`` as a multipart form: one image file (any format Pillow reads)."""

    file: Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]


class BatchUpload(BaseModel):
    """``POST /v1/predict/batch`` as a multipart form: up to 256 image files."""

    files: Annotated[
        list[bytes],
        WithJsonSchema(
            {
                "type": "array",
                "maxItems": MAX_BATCH,
                "items": {"type": "string", "format": "binary"},
            }
        ),
    ]


# %% Responses -----------------------------------------------------------------------------


class TopClass(BaseModel):
    """One of the most likely classes."""

    model_config = ConfigDict(populate_by_name=True)

    digit: int = Field(description="the class number, 0-9")
    class_name: str | None = Field(
        None,
        alias="class",
        description="the class's name (only for runs whose classes are not digits)",
    )
    probability: float


class PredictResponse(BaseModel):
    """The prediction for one image."""

    model_config = ConfigDict(populate_by_name=True)

    digit: int | None = Field(
        description="the most likely class, 0-9; null when abstaining (see reason)"
    )
    class_name: str | None = Field(
        None, alias="class", description="its name (only for runs whose classes are not digits)"
    )
    reason: str | None = Field(
        None, description="why there is no digit: not a digit | unsure | not a single digit"
    )
    explanation: str | None = Field(None, description="the reason in a sentence for people")
    probability: float = Field(description="the top class's (calibrated) probability")
    top_k: list[TopClass] = Field(description="the most likely classes, most likely first")
    probabilities: list[float] = Field(description="all ten, in class order, summing to 1")
    inference_ms: float | None = Field(None, description="the model call, in milliseconds")
    polarity: str | None = Field(
        None, description="the upload's ink on paper: dark-on-light or light-on-dark"
    )
    input: list[list[float]] | None = Field(
        None, description="with include_input=true: the 28x28 image the model saw"
    )


class BatchItem(BaseModel):
    """One image of a batch: its prediction (as :class:`PredictResponse`), or its error."""

    model_config = ConfigDict(populate_by_name=True)

    index: int = Field(description="the image's position in the request")
    digit: int | None = None
    class_name: str | None = Field(None, alias="class")
    reason: str | None = Field(None, description="why there is no digit (see PredictResponse)")
    explanation: str | None = None
    probability: float | None = None
    top_k: list[TopClass] | None = None
    probabilities: list[float] | None = None
    input: list[list[float]] | None = None
    error: str | None = Field(None, description="why this image could not be used")


class BatchResponse(BaseModel):
    """The predictions for a batch, one item per image, in order."""

    count: int
    inference_ms: float = Field(description="the one model call for the whole batch")
    results: list[BatchItem]


class ValidationIssue(BaseModel):
    """One problem with a request, as FastAPI reports it."""

    loc: list[str | int] = Field(description="where: body, query, and the path inside")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every request that cannot be served gets this, with its HTTP status."""

    error: str = Field(description="one line saying what was wrong")
    status: int = Field(description="the HTTP status, repeated")
    detail: list[ValidationIssue] | None = Field(
        None, description="on 422: each problem found (FastAPI's validation errors)"
    )


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"


class LatencySummary(BaseModel):
    """Model-call durations over the last requests (null until there are some)."""

    n: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None


class InputSpec(BaseModel):
    """What the model takes."""

    upload: str
    json_: str = Field(alias="json")
    shape: list[int]
    range: list[int]


class OutputSpec(BaseModel):
    """What the model gives."""

    classes: list[str] = Field(description="the name of class i, in order")
    probabilities: str


class Limits(BaseModel):
    """What the server refuses with 413."""

    max_upload_bytes: int
    max_image_pixels: int
    max_batch: int


class Latency(BaseModel):
    """In-server latency so far."""

    inference: LatencySummary


class ModelInfo(BaseModel):
    """``GET /v1/model``: the model being served."""

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    name: str
    source: str
    engine: str
    architecture: str | None
    params_count: int
    metrics: dict[str, Any] = Field(description="test_accuracy, test_loss, n_test, dataset")
    temperature: float
    input: InputSpec
    output: OutputSpec
    limits: Limits
    latency: Latency


class Stats(BaseModel):
    """``GET /v1/stats``: single-image inference latency and error counts by status."""

    engine: str
    inference: LatencySummary
    errors: dict[str, int]
