"""The prediction endpoints: ``POST /v1/predict``, ``/v1/predict/batch``, ``/v1/preprocess``.

Each takes an image as a multipart upload, as raw image bytes (``/v1/predict`` and
``/v1/preprocess``) or as JSON in MNIST form (:class:`~mnistlab.serve.schemas.ImageJson`,
:class:`~mnistlab.serve.schemas.BatchJson`). The bodies are read by
:mod:`mnistlab.serve.service` (one endpoint, several content types: FastAPI would
parse every body as JSON), and documented in OpenAPI by the schemas named in
:data:`REQUEST_BODIES`.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mnistlab.predict import to_png
from mnistlab.serve.errors import ApiError
from mnistlab.serve.schemas import (
    BatchItem,
    BatchJson,
    BatchResponse,
    BatchUpload,
    ErrorBody,
    ImageJson,
    ImageUpload,
    PredictResponse,
)
from mnistlab.serve.service import (
    Service,
    media_type,
    parse_json_body,
    read_single,
    read_uploads,
    require_ink,
    service_of,
)

__all__ = ["REQUEST_BODIES", "router"]

router = APIRouter(tags=["predict"])
ServiceDep = Annotated[Service, Depends(service_of)]


def _ref(model: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# The request bodies as OpenAPI documents them; their models are added to the
# spec's components by mnistlab.serve.app.
REQUEST_BODIES = (ImageJson, ImageUpload, BatchJson, BatchUpload)
_SINGLE = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _ref(ImageUpload)},
            "application/json": {"schema": _ref(ImageJson)},
            "image/png": _BINARY,
            "image/jpeg": _BINARY,
        },
    }
}
_BATCH = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _ref(BatchUpload)},
            "application/json": {"schema": _ref(BatchJson)},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty, not an image, truncated, blank, bad JSON"},
    413: {"model": ErrorBody, "description": "body over the upload limit, too many pixels/files"},
    415: {"model": ErrorBody, "description": "a content type that is not an image, form or JSON"},
    422: {"model": ErrorBody, "description": "JSON of the wrong shape or values, bad query"},
}
TopK = Annotated[int, Query(ge=1, le=10, description="how many classes to list")]
Abstain = Annotated[
    bool, Query(description="false: always name a digit (no 'not a digit' / 'unsure')")
]
MinConfidence = Annotated[
    float | None,
    Query(
        ge=0,
        le=1,
        description="answer only when the top calibrated probability reaches this "
        "(default: the run's operating point, chosen on validation)",
    ),
]
IncludeInput = Annotated[bool, Query(description="return the 28x28 image the model saw")]


def _json(data: bytes) -> Response:
    return Response(data, media_type="application/json")


@router.post(
    "/v1/predict",
    summary="Predict the digit in one image",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=_SINGLE,
)
async def predict(
    request: Request,
    service: ServiceDep,
    top_k: TopK = 3,
    include_input: IncludeInput = False,
    abstain: Abstain = True,
    min_confidence: MinConfidence = None,
) -> Response:
    """One image: a multipart upload (field ``file``), raw image bytes, or JSON 28x28.

    When the image is not a digit, several digits side by side, or the model is unsure,
    ``digit`` is null and ``reason`` says why; the probabilities are still there."""
    image, polarity = await read_single(request, service)
    probs, ms = service.infer(image[np.newaxis])
    (reason,) = service.decide(image[np.newaxis], probs, abstain, min_confidence)
    extra: dict[str, Any] = {"inference_ms": round(ms, 4)}
    if polarity is not None:
        extra["polarity"] = polarity
    result = service.result(image, probs[0], top_k, include_input, reason=reason, **extra)
    return _json(service.predict_response(result))


@router.post(
    "/v1/predict/batch",
    summary="Predict the digits in many images",
    response_model=BatchResponse,
    responses=_ERRORS,
    openapi_extra=_BATCH,
)
async def predict_batch(
    request: Request,
    service: ServiceDep,
    top_k: TopK = 3,
    include_input: IncludeInput = False,
    abstain: Abstain = True,
    min_confidence: MinConfidence = None,
) -> Response:
    """Up to 256 images; one that cannot be used is reported in its place."""
    media = media_type(request)
    body = await request.body()
    items: list[tuple[np.ndarray | None, str | None]] = []
    if media == "application/json":
        # A malformed item fails the request (422); a blank one is reported in its
        # place, like an unreadable upload.
        for i, grid in enumerate(parse_json_body(body, BatchJson).images):
            try:
                items.append((require_ink(grid, f"images[{i}]"), None))
            except ApiError as err:
                items.append((None, err.message))
    elif media == "multipart/form-data":
        uploads = await read_uploads(request, body, field="files")

        def decode_all() -> list[tuple[np.ndarray | None, str | None]]:
            out: list[tuple[np.ndarray | None, str | None]] = []
            for data in uploads:
                try:
                    out.append((service.decode(data)[0], None))
                except ApiError as err:  # one bad file does not spoil the batch
                    out.append((None, err.message))
            return out

        items = await run_in_threadpool(decode_all)
    else:
        raise ApiError(
            415,
            f"unsupported content type {media or '(none)'!r} for a batch; send "
            "multipart/form-data with the images in the field 'files', or JSON "
            '{"images": [28x28, ...]} (one raw image goes to POST /v1/predict)',
        )
    good = [img for img, _ in items if img is not None]
    probs, ms = service.infer(np.stack(good)) if good else (np.zeros((0, 10)), 0.0)
    reasons = service.decide(np.stack(good), probs, abstain, min_confidence) if good else []
    results: list[BatchItem] = []
    i = 0
    for index, (image, error) in enumerate(items):
        if image is None:
            results.append(BatchItem.model_validate({"index": index, "error": error}))
            continue
        result = service.result(image, probs[i], top_k, include_input, reason=reasons[i])
        results.append(BatchItem.model_validate({"index": index, **result}))
        i += 1
    answer = BatchResponse(count=len(results), inference_ms=round(ms, 4), results=results)
    return _json(answer.model_dump_json(by_alias=True, exclude_unset=True).encode())


@router.post(
    "/v1/preprocess",
    summary="The 28x28 MNIST-form image of an upload, as PNG",
    response_class=Response,
    responses={200: {"content": {"image/png": _BINARY}}, **_ERRORS},
    openapi_extra=_SINGLE,
)
async def preprocess(
    request: Request,
    service: ServiceDep,
    scale: Annotated[int, Query(ge=1, le=20, description="enlarge each pixel")] = 1,
) -> Response:
    """What the model would see, enlarged ``scale`` times for viewing."""
    image, _ = await read_single(request, service)
    return Response(to_png(image, scale=scale), media_type="image/png")
