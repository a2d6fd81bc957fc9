"""What the routes share: the loaded model, its timing, and reading request bodies.

One :class:`Service` per app (``app.state.service``): the predictor, the latency
window, the error counters and the limits; it times the model call, decodes
uploads and shapes results. The request readers turn a body (multipart, raw image
bytes or JSON) into MNIST-form images or an :class:`~mnistlab.serve.errors.ApiError`
with the status the API documents. JSON bodies are parsed here (so hostile JSON,
nested too deep or with numbers of thousands of digits, is a 400 in our words) and
validated by the pydantic models of :mod:`mnistlab.serve.schemas`.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab.predict import FileResult, ImageError, Predictor, preprocess_image
from mnistlab.serve.errors import ApiError, request_validation_error
from mnistlab.serve.schemas import MAX_BATCH, ImageJson, PredictResponse

__all__ = [
    "BLANK_RANGE",
    "IMAGE_TYPES",
    "LatencyStats",
    "Service",
    "media_type",
    "parse_json_body",
    "read_single",
    "read_uploads",
    "require_ink",
    "service_of",
]

IMAGE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/webp",
    "image/x-portable-anymap",
    "image/x-portable-graymap",
    "application/octet-stream",
)
# An image whose values span less than this has no ink: the model would still name a
# digit, confidently, for an all-black (or any uniform) grid.
BLANK_RANGE = 1e-3

Body = TypeVar("Body", bound=BaseModel)


# %% Latency bookkeeping ---------------------------------------------------------------


class LatencyStats:
    """The last ``window`` model-call durations (ms), thread-safe; p50/p99 on demand."""

    def __init__(self, window: int = 10_000) -> None:
        self._times: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, ms: float) -> None:
        """Record one model call of ``ms`` milliseconds."""
        with self._lock:
            self._times.append(ms)
            self.count += 1

    def reset(self) -> None:
        """Forget every call recorded so far."""
        with self._lock:
            self._times.clear()
            self.count = 0

    def summary(self) -> dict[str, Any]:
        """``{"n", "p50_ms", "p99_ms", "mean_ms"}`` over the window (None when empty)."""
        with self._lock:
            times = np.array(self._times, dtype=np.float64)
        if len(times) == 0:
            return {"n": 0, "p50_ms": None, "p99_ms": None, "mean_ms": None}
        return {
            "n": int(len(times)),
            "p50_ms": round(float(np.percentile(times, 50)), 4),
            "p99_ms": round(float(np.percentile(times, 99)), 4),
            "mean_ms": round(float(times.mean()), 4),
        }


# %% The model behind the routes -------------------------------------------------------------


@dataclass
class Service:
    """The model an app serves, with its limits, timing and error counts."""

    predictor: Predictor
    max_upload_bytes: int
    max_pixels: int
    stats: LatencyStats = field(default_factory=LatencyStats)
    counters: collections.Counter[int] = field(default_factory=collections.Counter)

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, float]:
        """Probabilities of MNIST-form images and the model call's duration (ms)."""
        start = time.perf_counter()
        probs = self.predictor.probabilities(images)
        ms = (time.perf_counter() - start) * 1000
        if len(images) == 1:  # the latency that matters: one image, model call only
            self.stats.add(ms)
        return probs, ms

    def decide(
        self, images: np.ndarray, probs: np.ndarray, abstain: bool, min_confidence: float | None
    ) -> list[str | None]:
        """Why to abstain on each image (None: answer); all None when ``abstain`` is off."""
        if not abstain:
            return [None] * len(probs)
        return self.predictor.decide(images, probs, min_confidence)

    def decode(self, data: bytes) -> tuple[np.ndarray, str]:
        """An uploaded image in MNIST form and its polarity; ApiError 400 or 413 if not."""
        try:
            pre = preprocess_image(
                data,
                max_pixels=self.max_pixels,
                cleanup=self.predictor.result_class_names() is None,
            )
        except ImageError as err:
            raise ApiError(413 if err.too_large else 400, str(err)) from err
        return pre.image, pre.polarity

    def result(
        self,
        image: np.ndarray,
        probs: np.ndarray,
        top_k: int,
        include_input: bool,
        reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """One image's answer (a :class:`PredictResponse`) as a plain dict; with a
        ``reason`` ("not a digit", "unsure", ...) it has no digit but still the scores."""
        # A Fashion-MNIST run's results also name their classes ("class": "Sandal").
        names = self.predictor.result_class_names()
        answer = FileResult.from_probs("", probs, top_k, class_names=names, reason=reason)
        result = answer.to_dict()
        for key in ("file", "label", "correct"):
            result.pop(key)
        result.update(extra)
        if include_input:
            result["input"] = np.round(image, 4).tolist()
        return result

    def predict_response(self, result: dict[str, Any]) -> bytes:
        """``result`` checked against :class:`PredictResponse`, as JSON bytes."""
        model = PredictResponse.model_validate(result)
        return model.model_dump_json(by_alias=True, exclude_unset=True).encode()


def service_of(request: Request) -> Service:
    """The :class:`Service` of the app serving ``request`` (a FastAPI dependency)."""
    service: Service = request.app.state.service
    return service


# %% Reading request bodies ----------------------------------------------------------------


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters (``""`` when none)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _reject_constant(name: str) -> float:
    raise ApiError(422, f"{name} is not a valid number: send finite values in [0, 1]")


def parse_json_body(body: bytes, model: type[Body]) -> Body:
    """A JSON body validated by ``model`` (NaN/Infinity literals refused).

    Raises
    ------
    ApiError
        400: empty, or not JSON (hostile JSON included: nesting too deep for the
        parser, integers with thousands of digits); 422: NaN or Infinity.
    fastapi.exceptions.RequestValidationError
        The JSON does not fit ``model`` (422, with each problem's place).
    """
    key = next(iter(model.model_fields))
    example = '{"images": [[[...], ...], ...]}' if key == "images" else '{"image": [[...], ...]}'
    if not body:
        raise ApiError(400, f"the request body is empty; send JSON like {example}")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"the body is not valid JSON ({err})") from err
    except RecursionError as err:
        raise ApiError(
            400, f"the body is not valid JSON (nested too deeply); send JSON like {example}"
        ) from err
    except ValueError as err:  # an integer over Python's int-string limit (4,300 digits)
        raise ApiError(
            400,
            "the body is not valid JSON (a number with thousands of digits); "
            "send numbers in [0, 1]",
        ) from err
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise request_validation_error(err) from None


def require_ink(image: np.ndarray, what: str = "the image") -> np.ndarray:
    """``image`` unchanged; ApiError 400 when it is blank (no ink variation at all)."""
    if float(image.max() - image.min()) < BLANK_RANGE:
        raise ApiError(
            400,
            f"no digit found: {what} is blank (every value is {float(image.mean()):g}); "
            "send white ink (1) on black (0)",
        )
    return image


async def read_single(request: Request, service: Service) -> tuple[np.ndarray, str | None]:
    """The request's one image, in MNIST form, and the input's polarity (None for JSON)."""
    media = media_type(request)
    body = await request.body()
    if media == "application/json":
        return require_ink(parse_json_body(body, ImageJson).image), None
    if media == "multipart/form-data":
        uploads = await read_uploads(request, body, field="file")
        if len(uploads) != 1:
            raise ApiError(
                400, f"send exactly one file in the field 'file' (got {len(uploads)} files)"
            )
        return await run_in_threadpool(service.decode, uploads[0])
    if media in IMAGE_TYPES:
        if not body:
            raise ApiError(400, "the request body is empty; send the image's bytes")
        return await run_in_threadpool(service.decode, body)
    raise ApiError(
        415,
        f"unsupported content type {media or '(none)'!r}; send multipart/form-data, "
        "application/json or an image type (image/png, image/jpeg, ...)",
    )


async def read_uploads(request: Request, body: bytes, field: str) -> list[bytes]:
    """The files of a multipart body (any field name); ``field`` is the documented one."""
    what = "the image in the field 'file'" if field == "file" else "the images in 'files'"
    if not body:
        raise ApiError(400, f"the request body is empty; send a multipart form with {what}")
    try:
        # Starlette parses the body it has already read (request.body() cached it).
        form = await request.form(max_files=MAX_BATCH, max_fields=MAX_BATCH)
    except StarletteHTTPException as err:  # Starlette's MultiPartException, as a 400
        if str(err.detail).startswith("Too many files"):
            raise ApiError(
                413,
                f"the form holds more than {MAX_BATCH} files, the limit per request; "
                "split them into smaller batches",
            ) from err
        raise ApiError(400, f"cannot parse the multipart form ({err.detail})") from err
    except Exception as err:  # malformed multipart: boundary missing, truncated parts
        raise ApiError(400, f"cannot parse the multipart form ({err})") from err
    files = []
    for _, value in form.multi_items():
        if hasattr(value, "read"):
            files.append(await value.read())
    await form.close()
    if not files:
        raise ApiError(400, f"the multipart form holds no file; send {what}")
    return files
