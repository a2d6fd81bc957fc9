"""Reading a whole number: ``POST /v1/read``.

The image comes as ``/v1/predict``'s does: a multipart upload (field ``file``), raw
image bytes, or JSON (:class:`~mnistlab.serve.read_schemas.ReadJson`: a gray image
of any size, not only 28x28). The same upload limits and the same readers of
bodies (:mod:`mnistlab.serve.service`) apply, so a bad body gets the same 4xx. The
image is decoded in its own size and handed to :func:`mnistlab.read.read_image`;
the answer is a :class:`~mnistlab.serve.read_schemas.ReadResponse`.

One :class:`~mnistlab.read.NumberReader` per app (:class:`ReaderSlot`), made from the
served run's predictor: the model already loaded (and its engine) reads the digits.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mnistlab.errors import MnistlabError
from mnistlab.predict import ImageError, Predictor, load_image
from mnistlab.read import NumberReader, NumberReading, read_image
from mnistlab.serve.errors import ApiError
from mnistlab.serve.read_schemas import ReadDigit, ReadJson, ReadResponse, ReadUpload
from mnistlab.serve.schemas import ErrorBody
from mnistlab.serve.service import (
    BLANK_RANGE,
    IMAGE_TYPES,
    Service,
    media_type,
    parse_json_body,
    read_uploads,
    service_of,
)

__all__ = ["REQUEST_BODIES", "ReaderSlot", "router"]

router = APIRouter(tags=["read"])

# The request bodies as OpenAPI documents them (added to the spec by mnistlab.serve.app).
REQUEST_BODIES = (ReadJson, ReadUpload)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/ReadUpload"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ReadJson"}},
            "image/png": _BINARY,
            "image/jpeg": _BINARY,
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty, not an image, truncated, blank, bad JSON"},
    409: {"model": ErrorBody, "description": "the served model does not recognise digits"},
    413: {"model": ErrorBody, "description": "body over the upload limit, too many pixels"},
    415: {"model": ErrorBody, "description": "a content type that is not an image, form or JSON"},
    422: {"model": ErrorBody, "description": "JSON of the wrong shape or values"},
}


class ReaderSlot:
    """The app's :class:`NumberReader` over the served predictor, or why there is none.

    Reads go one at a time (the lock): the reader runs the model on every cut
    hypothesis of an image, and two cores gain nothing from interleaving two images.
    """

    def __init__(self, predictor: Predictor) -> None:
        self._reader: NumberReader | None = None
        self._refusal = ""
        try:
            self._reader = NumberReader(predictor)
        except MnistlabError as err:  # a model whose classes are not digits
            self._refusal = f"{err}; serve a run trained on MNIST to read numbers"
        self._lock = threading.Lock()

    def read(self, image: np.ndarray) -> NumberReading:
        """Read the number in a gray image (float, any polarity); ApiError 400/409 if not."""
        if self._reader is None:
            raise ApiError(409, self._refusal)
        with self._lock:
            try:
                return read_image(self._reader, image)
            except MnistlabError as err:
                raise ApiError(400, str(err)) from err


def reader_of(request: Request) -> ReaderSlot:
    """The :class:`ReaderSlot` of the app serving ``request`` (a FastAPI dependency)."""
    slot: ReaderSlot = request.app.state.reader
    return slot


def _decode(data: bytes, max_pixels: int) -> np.ndarray:
    """An upload as a gray float image in its own size; ApiError 400 or 413 if not."""
    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageError as err:
        raise ApiError(413 if err.too_large else 400, str(err)) from err


async def read_gray(request: Request, service: Service) -> np.ndarray:
    """The request's one image as a gray float (H, W) array in [0, 1], paper and ink as sent."""
    media = media_type(request)
    body = await request.body()
    if media == "application/json":
        # Off the event loop: a JSON image may hold millions of numbers to check.
        image = (await run_in_threadpool(parse_json_body, body, ReadJson)).image
        if image.size > service.max_pixels:
            raise ApiError(
                413,
                f"the image is {image.shape[1]}x{image.shape[0]} = {image.size:,} pixels, "
                f"over the limit of {service.max_pixels:,}; send a smaller image",
            )
    elif media == "multipart/form-data":
        uploads = await read_uploads(request, body, field="file")
        if len(uploads) != 1:
            raise ApiError(
                400, f"send exactly one file in the field 'file' (got {len(uploads)} files)"
            )
        image = await run_in_threadpool(_decode, uploads[0], service.max_pixels)
    elif media in IMAGE_TYPES:
        if not body:
            raise ApiError(400, "the request body is empty; send the image's bytes")
        image = await run_in_threadpool(_decode, body, service.max_pixels)
    else:
        raise ApiError(
            415,
            f"unsupported content type {media or '(none)'!r}; send multipart/form-data, "
            "application/json or an image type (image/png, image/jpeg, ...)",
        )
    if float(image.max() - image.min()) < BLANK_RANGE:
        raise ApiError(
            400,
            f"no number found: the image is blank (every pixel is {float(image.mean()):g}); "
            "send an image of handwritten digits",
        )
    return image


def _unit(x: float) -> float:
    # Probabilities from float32 softmax can stray past 1 by an ulp.
    return round(min(max(float(x), 0.0), 1.0), 6)


def to_response(reading: NumberReading, shape: tuple[int, ...], ms: float) -> ReadResponse:
    """A :class:`NumberReading` of an image of ``shape`` (H, W) as the HTTP answer."""
    return ReadResponse(
        text=reading.text,
        confidence=_unit(reading.confidence),
        reason=reading.reason,
        digits=[
            ReadDigit(
                box=[int(v) for v in d.box],
                digit=int(d.digit),
                confidence=_unit(d.confidence),
                probabilities=[_unit(p) for p in d.probabilities],
            )
            for d in reading.digits
        ],
        width=int(shape[1]),
        height=int(shape[0]),
        read_ms=round(ms, 3),
    )


@router.post(
    "/v1/read",
    summary="Read the number in one image (one line of handwritten digits)",
    response_model=ReadResponse,
    responses=_ERRORS,
    openapi_extra=_BODY,
)
async def read_number(
    request: Request,
    service: Annotated[Service, Depends(service_of)],
    slot: Annotated[ReaderSlot, Depends(reader_of)],
) -> Response:
    """One image of 1-12 digits: a multipart upload (field ``file``), raw bytes, or JSON.

    ``text`` is null (with a ``reason``) when the image holds no readable number.
    """
    image = await read_gray(request, service)

    def timed() -> tuple[NumberReading, float]:
        start = time.perf_counter()
        reading = slot.read(image)
        return reading, (time.perf_counter() - start) * 1000

    reading, ms = await run_in_threadpool(timed)
    answer = to_response(reading, image.shape, ms)
    return Response(answer.model_dump_json().encode(), media_type="application/json")
