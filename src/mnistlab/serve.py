"""An HTTP API and a drawing page for a trained model (FastAPI on Uvicorn).

=====================  ==========================================================
``POST /v1/predict``   one image: a multipart upload (field ``file``), raw image
                       bytes (``Content-Type: image/png`` ...), or JSON
                       ``{"image": 28x28 numbers in [0, 1]}`` (MNIST form: white
                       ink on black). Query: ``top_k`` (1-10), ``include_input``
                       (return the 28x28 image the model saw).
``POST /v1/predict/batch``  many: multipart with several ``files``, or JSON
                       ``{"images": [28x28, ...]}``; per-item errors.
``GET /v1/model``      name, source, engine, test metrics, input spec, limits,
                       latency so far.
``GET /v1/stats``      in-server inference latency (model call only) p50/p99.
``GET /healthz``       liveness.
``GET /docs``          the API docs, rendered here from ``GET /openapi.json`` (no
                       CDN: works offline); ``GET /`` the drawing page.
=====================  ==========================================================

Bad input never takes the server down: every request that cannot be served gets
a 4xx with ``{"error": "...", "status": N}``: 400 (empty, not an image,
truncated, blank (an upload or a JSON grid without ink), bad multipart, JSON
that does not parse, hostile JSON included), 413 (body over the upload limit,
more than 256 files in a batch, or an image with too many pixels: decompression
bombs are refused from the header, before decoding), 415 (a content type that is
not an image, multipart or JSON), 422 (JSON of the wrong shape, non-numbers, NaN
or infinity, values outside [0, 1]). A client that hangs up mid-upload is no error.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import html
import http.client
import io
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from mnistlab.errors import MnistlabError
from mnistlab.predict import FileResult, Predictor, load_predictor
from mnistlab.preprocess import MAX_IMAGE_PIXELS, ImageError, preprocess_image, to_png

__all__ = [
    "LatencyStats",
    "benchmark",
    "create_app",
    "free_port",
    "listen_socket",
    "run_server",
    "server_process",
    "start_in_thread",
]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MiB: a phone photo is 2-6 MB
MAX_BATCH = 256  # images per batch request
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


# %% Latency bookkeeping ---------------------------------------------------------------


class LatencyStats:
    """The last ``window`` model-call durations (ms), thread-safe; p50/p99 on demand."""

    def __init__(self, window: int = 10_000) -> None:
        self._times: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, ms: float) -> None:
        with self._lock:
            self._times.append(ms)
            self.count += 1

    def reset(self) -> None:
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


# %% Errors ---------------------------------------------------------------------------------


class ApiError(Exception):
    """A request that cannot be served: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, before they are read.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body
    is counted as it arrives and cut off when it passes the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_error(send, 400, "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await _send_error(send, 413, self._too_large(size))
                return
        received = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self._too_large(received))
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as err:  # raised outside the app's own handlers
            if not started:
                await _send_error(send, 413, str(err))

    def _too_large(self, size: int) -> str:
        return (
            f"the request body is {size:,} bytes, over the limit of {self.max_bytes:,}; "
            "send a smaller image"
        )


class BodyTooLarge(Exception):
    """Raised while reading a body (chunked, no Content-Length) that passes the limit."""


async def _send_error(send: Callable, status: int, message: str) -> None:
    body = _error_body(status, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# %% Parsing requests --------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ApiError(422, f"{name} is not a valid number: send finite values in [0, 1]")


def parse_json_images(body: bytes, key: str) -> list[Any]:
    """The value under ``key`` of a JSON body (NaN/Infinity literals refused).

    Hostile JSON (nesting too deep for the parser, integers with thousands of
    digits) is refused with 400 like any other body that is not valid JSON.
    """
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
    if not isinstance(data, dict) or key not in data:
        raise ApiError(422, f'expected a JSON object with the key "{key}"')
    return data[key]


def to_mnist_array(value: Any, what: str = "image") -> np.ndarray:
    """Validate a JSON 28x28 array of numbers in [0, 1] -> float32 (28, 28)."""
    if not isinstance(value, list) or len(value) != 28:
        got = f"{len(value)} rows" if isinstance(value, list) else type(value).__name__
        raise ApiError(422, f"{what} must be 28 rows of 28 numbers in [0, 1]; got {got}")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 28:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise ApiError(422, f"{what}: row {i} must hold 28 numbers; got {got}")
        for v in row:
            # bool is an int in Python; true/false are not pixel values.
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ApiError(422, f"{what}: row {i} holds {type(v).__name__} {v!r}, not a number")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError as err:  # an integer too large for a float (10**400)
        raise ApiError(422, f"{what} holds a number too large; send numbers in [0, 1]") from err
    if not np.isfinite(arr).all():  # 1e999 parses as infinity
        raise ApiError(422, f"{what} holds a non-finite value; send finite numbers in [0, 1]")
    if arr.min() < 0 or arr.max() > 1:
        raise ApiError(
            422,
            f"{what} values must be in [0, 1] (white ink on black); got "
            f"{arr.min():g}..{arr.max():g} (divide 0-255 pixels by 255)",
        )
    return arr.astype(np.float32)


# An image whose values span less than this has no ink: the model would still name a
# digit, confidently, for an all-black (or any uniform) grid.
BLANK_RANGE = 1e-3


def require_ink(image: np.ndarray, what: str = "the image") -> np.ndarray:
    """``image`` unchanged; ApiError 400 when it is blank (no ink variation at all)."""
    if float(image.max() - image.min()) < BLANK_RANGE:
        raise ApiError(
            400,
            f"no digit found: {what} is blank (every value is {float(image.mean()):g}); "
            "send white ink (1) on black (0)",
        )
    return image


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# %% The API docs page ---------------------------------------------------------------------


def docs_html(spec: dict[str, Any]) -> str:
    """A self-contained HTML page of an OpenAPI spec: no scripts, nothing from the internet."""
    e = html.escape
    info = spec.get("info", {})
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(info.get('title', 'API'))}: API docs</title>",
        "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>",
        f"<h1>{e(info.get('title', 'API'))} API</h1>",
        f"<p>{e(info.get('summary', ''))}. {e(info.get('description', ''))}</p>",
        "<p class='muted'>The machine-readable spec: <a href='/openapi.json'>/openapi.json</a>"
        " (OpenAPI " + e(str(spec.get("openapi", ""))) + "). <a href='/'>The drawing page</a>.</p>",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            out.append(f"<h2><code>{e(method.upper())} {e(path)}</code></h2>")
            out.append(f"<p>{e(op.get('summary', ''))}</p>")
            params = op.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>query</th><th>type</th><th>default</th><th>what</th></tr>"
                )
                for prm in params:
                    schema = prm.get("schema", {})
                    kind = schema.get("type", "")
                    if "minimum" in schema or "maximum" in schema:
                        kind += f" {schema.get('minimum', '')}..{schema.get('maximum', '')}"
                    out.append(
                        f"<tr><td><code>{e(prm['name'])}</code></td><td>{e(kind)}</td>"
                        f"<td>{e(json.dumps(schema.get('default')))}</td>"
                        f"<td>{e(prm.get('description', ''))}</td></tr>"
                    )
                out.append("</table>")
            bodies = op.get("requestBody", {}).get("content", {})
            if bodies:
                kinds = ", ".join(f"<code>{e(k)}</code>" for k in bodies)
                out.append(f"<p>Body: {kinds}.</p>")
    out.append("</body></html>")
    return "\n".join(out)


# %% The app -------------------------------------------------------------------------------------


def create_app(
    predictor: Predictor,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Any:
    """Build the FastAPI application around a loaded model.

    Parameters
    ----------
    predictor : the model (see :func:`mnistlab.predict.load_predictor`).
    max_upload_bytes : larger request bodies get 413.
    max_pixels : larger images (from their header) get 413.

    Returns
    -------
    An ASGI app: the FastAPI app (``.app``; its ``state`` holds ``predictor`` and
    ``stats``) wrapped in the upload-size limit.

    Examples
    --------
    >>> import uvicorn
    >>> uvicorn.run(create_app(load_predictor("latest", engine="onnx")), port=8000)
    """
    stats = LatencyStats()
    app = FastAPI(
        title="mnistlab",
        version="1",
        summary="Handwritten digit recognition with an MNIST model",
        description=(
            "Send an image of a digit (any size, either polarity: it is brought into "
            "MNIST form first) or a 28x28 array in MNIST form; get the digit and its "
            "probabilities. The page at / lets you draw one."
        ),
        # FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN: blank
        # without internet. /docs is rendered here instead, from the same OpenAPI spec.
        docs_url=None,
        redoc_url=None,
    )
    app.state.predictor = predictor
    app.state.stats = stats
    counters: collections.Counter[int] = collections.Counter()

    # -- error handlers: every failure is JSON {"error", "status"} -------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        counters[exc.status] += 1
        return JSONResponse({"error": exc.message, "status": exc.status}, exc.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        counters[413] += 1
        return JSONResponse({"error": str(exc), "status": 413}, 413)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        counters[exc.status_code] += 1
        return JSONResponse({"error": str(exc.detail), "status": exc.status_code}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        counters[422] += 1
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(parts), "status": 422}, 422)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up before sending the whole body: nobody is left to answer,
        # and it is not the server's fault.
        log.info("client disconnected before sending the whole body (%s)", request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input; logged with its traceback, answered as JSON.
        log.exception("unexpected error on %s", request.url.path)
        counters[500] += 1
        return JSONResponse({"error": f"internal error ({type(exc).__name__})", "status": 500}, 500)

    # -- the model call, timed ---------------------------------------------------------------
    def infer(images: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        probs = predictor.probabilities(images)
        ms = (time.perf_counter() - start) * 1000
        if len(images) == 1:  # the latency that matters: one image, model call only
            stats.add(ms)
        return probs, ms

    def decode(data: bytes) -> tuple[np.ndarray, str]:
        try:
            pre = preprocess_image(data, max_pixels=max_pixels)
        except ImageError as err:
            raise ApiError(413 if err.too_large else 400, str(err)) from err
        return pre.image, pre.polarity

    def result_json(
        image: np.ndarray, probs: np.ndarray, top_k: int, include_input: bool, **extra: Any
    ) -> dict[str, Any]:
        # A Fashion-MNIST run's results also name their classes ("class": "Sandal").
        names = predictor.result_class_names()
        result = FileResult.from_probs("", probs, top_k, class_names=names).to_dict()
        for key in ("file", "label", "correct"):
            result.pop(key)
        result.update(extra)
        if include_input:
            result["input"] = np.round(image, 4).tolist()
        return result

    async def read_single(request: Request) -> tuple[np.ndarray, str | None]:
        """The request's one image, in MNIST form, and the input's polarity (None for JSON)."""
        media = _media_type(request.headers.get("content-type", ""))
        body = await request.body()
        if media == "application/json":
            return require_ink(to_mnist_array(parse_json_images(body, "image"))), None
        if media == "multipart/form-data":
            uploads = await _uploads(request, body, field="file")
            if len(uploads) != 1:
                raise ApiError(
                    400, f"send exactly one file in the field 'file' (got {len(uploads)} files)"
                )
            return await run_in_threadpool(decode, uploads[0])
        if media in IMAGE_TYPES:
            if not body:
                raise ApiError(400, "the request body is empty; send the image's bytes")
            return await run_in_threadpool(decode, body)
        raise ApiError(
            415,
            f"unsupported content type {media or '(none)'!r}; send multipart/form-data, "
            "application/json or an image type (image/png, image/jpeg, ...)",
        )

    async def _uploads(request: Request, body: bytes, field: str) -> list[bytes]:
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

    # -- endpoints ---------------------------------------------------------------------
    predict_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {
                                "type": "array",
                                "minItems": 28,
                                "maxItems": 28,
                                "items": {
                                    "type": "array",
                                    "minItems": 28,
                                    "maxItems": 28,
                                    "items": {"type": "number", "minimum": 0, "maximum": 1},
                                },
                                "description": "28x28 MNIST-form image, white ink (1) on black (0)",
                            }
                        },
                        "required": ["image"],
                    }
                },
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "images": {
                                "type": "array",
                                "maxItems": MAX_BATCH,
                                "items": {"type": "array", "description": "28x28 in [0, 1]"},
                            }
                        },
                        "required": ["images"],
                    }
                },
            },
        }
    }

    @app.post("/v1/predict", openapi_extra=predict_body, summary="Predict the digit in one image")
    async def predict(
        request: Request,
        top_k: int = Query(3, ge=1, le=10, description="how many classes to list"),
        include_input: bool = Query(False, description="return the 28x28 image the model saw"),
    ) -> JSONResponse:
        image, polarity = await read_single(request)
        probs, ms = infer(image[np.newaxis])
        extra: dict[str, Any] = {"inference_ms": round(ms, 4)}
        if polarity is not None:
            extra["polarity"] = polarity
        # A JSONResponse skips FastAPI re-validating and re-encoding the dict (~0.3 ms).
        return JSONResponse(result_json(image, probs[0], top_k, include_input, **extra))

    @app.post(
        "/v1/predict/batch", openapi_extra=batch_body, summary="Predict the digits in many images"
    )
    async def predict_batch(
        request: Request,
        top_k: int = Query(3, ge=1, le=10),
        include_input: bool = Query(False),
    ) -> JSONResponse:
        media = _media_type(request.headers.get("content-type", ""))
        body = await request.body()
        items: list[tuple[np.ndarray | None, str | None]] = []
        if media == "application/json":
            values = parse_json_images(body, "images")
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_BATCH:
                n = len(values) if isinstance(values, list) else type(values).__name__
                raise ApiError(422, f'"images" must be a list of 1 to {MAX_BATCH} images; got {n}')
            for i, v in enumerate(values):
                image = to_mnist_array(v, f"images[{i}]")  # a malformed item fails the request
                try:  # a blank one is reported in its place, like an unreadable upload
                    items.append((require_ink(image, f"images[{i}]"), None))
                except ApiError as err:
                    items.append((None, err.message))
        elif media == "multipart/form-data":
            uploads = await _uploads(request, body, field="files")

            def decode_all() -> list[tuple[np.ndarray | None, str | None]]:
                out: list[tuple[np.ndarray | None, str | None]] = []
                for data in uploads:
                    try:
                        out.append((decode(data)[0], None))
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
        probs, ms = infer(np.stack(good)) if good else (np.zeros((0, 10)), 0.0)
        results, i = [], 0
        for index, (image, error) in enumerate(items):
            if image is None:
                results.append({"index": index, "error": error})
                continue
            results.append({"index": index, **result_json(image, probs[i], top_k, include_input)})
            i += 1
        return JSONResponse(
            {"count": len(results), "inference_ms": round(ms, 4), "results": results}
        )

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model", summary="The model: name, metrics, input spec, latency")
    async def model_info() -> dict[str, Any]:
        m = predictor.metrics
        return {
            "name": predictor.name,
            "source": predictor.source,
            "engine": predictor.engine,
            "architecture": m.get("model") or getattr(predictor.model, "name", None),
            "params_count": m.get("params_count") or int(predictor.model.count_params()),
            "metrics": {
                k: m[k] for k in ("test_accuracy", "test_loss", "n_test", "dataset") if k in m
            },
            "temperature": predictor.temperature,
            "input": {
                "upload": "an image file (PNG, JPEG, GIF, BMP, TIFF, WebP; any size, any "
                "polarity) as multipart field 'file' or as the raw body with its image type",
                "json": '{"image": 28x28 numbers in [0, 1], white ink (1) on black (0)}',
                "shape": [28, 28],
                "range": [0, 1],
            },
            "output": {"classes": [str(d) for d in range(10)], "probabilities": "softmax, sum 1"},
            "limits": {
                "max_upload_bytes": max_upload_bytes,
                "max_image_pixels": max_pixels,
                "max_batch": MAX_BATCH,
            },
            "latency": {"inference": stats.summary()},
        }

    @app.get("/v1/stats", summary="In-server single-image inference latency (model call only)")
    async def stats_endpoint() -> dict[str, Any]:
        return {
            "engine": predictor.engine,
            "inference": stats.summary(),
            "errors": {str(k): v for k, v in sorted(counters.items())},
        }

    @app.post("/v1/preprocess", summary="The 28x28 MNIST-form image of an upload, as PNG")
    async def preprocess_endpoint(request: Request, scale: int = Query(1, ge=1, le=20)) -> Any:
        image, _ = await read_single(request)
        return Response(to_png(image, scale=scale), media_type="image/png")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    # Warm the whole path once (decode, preprocess, model) so the first user is not slow.
    warm = io.BytesIO()
    from PIL import Image, ImageDraw

    im = Image.new("L", (56, 56), 255)
    ImageDraw.Draw(im).line([(10, 10), (46, 10), (24, 50)], fill=0, width=6)
    im.save(warm, format="PNG")
    infer(decode(warm.getvalue())[0][np.newaxis])
    stats.reset()  # the warm-up is not a request

    return BodyLimit(app, max_upload_bytes)


# %% Running it ------------------------------------------------------------------------------------


def load_for_serving(ref: str, runs_dir: str | Path = "runs", engine: str = "auto") -> Predictor:
    """Load a model for the server: onnxruntime when it converts, else tf.function.

    ``engine="auto"`` tries ONNX (a forward pass ~20x cheaper than TensorFlow's per
    call) and falls back to ``"tf"`` with a logged reason.
    """
    # tf2onnx narrates its graph optimisations at INFO; that is not news for a server log.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    if engine != "auto":
        return load_predictor(ref, runs_dir, engine=engine)
    try:
        return load_predictor(ref, runs_dir, engine="onnx")
    except ImportError as err:
        log.warning("onnxruntime unavailable (%s); serving with TensorFlow", err)
    except MnistlabError:
        raise
    except Exception as err:  # a conversion failure: TensorFlow still serves the model
        log.warning(
            "ONNX conversion failed (%s: %s); serving with TensorFlow", type(err).__name__, err
        )
    return load_predictor(ref, runs_dir, engine="tf")


def run_server(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    *,
    announce: str | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` with Uvicorn until interrupted (access log off: it costs latency).

    The socket is bound here (or given: ``sock`` from :func:`listen_socket`), not by
    Uvicorn: a port in use or a host that does not resolve raises
    :class:`MnistlabError` (one line), where Uvicorn would log and ``sys.exit(3)``.
    ``announce`` is printed once the socket listens.
    """
    import uvicorn

    sock = sock or listen_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    if announce:
        print(announce, flush=True)
    else:
        url_host = f"[{host}]" if ":" in host else host
        log.info("listening on http://%s:%d/", url_host, sock.getsockname()[1])
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def listen_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (as Uvicorn binds it); MnistlabError if not."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(
            host or None, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0][4]
    except (OSError, UnicodeError) as err:  # gaierror, or an over-long label ("a" * 64)
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise MnistlabError(
            f"cannot listen on {where}: the host {host!r} does not resolve ({reason}); "
            "use an address of this machine such as 127.0.0.1 or 0.0.0.0"
        ) from err
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as err:
        sock.close()
        reason = (err.strerror or str(err)).lower()
        hint = {
            errno.EADDRINUSE: "another program listens there; stop it or choose another --port",
            errno.EACCES: "ports below 1024 need privileges; choose another --port such as 8000",
            errno.EADDRNOTAVAIL: "not an address of this machine; use 127.0.0.1 or 0.0.0.0",
        }.get(err.errno or 0, "choose another --host or --port")
        raise MnistlabError(f"cannot listen on {where}: {reason} ({hint})") from err
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(
    ref: str | Path,
    *,
    runs_dir: str | Path = "runs",
    engine: str = "auto",
    host: str = "127.0.0.1",
    port: int = 0,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 180.0,
    log_path: str | Path | None = None,
) -> Iterator[str]:
    """Run ``mnistlab serve`` in a child process; yield its base URL once /healthz answers.

    The server is a separate process, as in production, so a client in this process
    does not share its interpreter (or its GIL). Stopped (SIGTERM, then SIGKILL)
    on exit.

    Examples
    --------
    >>> with server_process("runs/latest") as url:
    ...     print(benchmark(url, requests=200))
    """
    import subprocess
    import sys
    import urllib.request

    port = port or free_port(host)
    url = f"http://{host}:{port}"
    cmd = [sys.executable, "-m", "mnistlab", "serve", str(ref), "--host", host]
    cmd += ["--port", str(port), "--engine", engine, "--runs-dir", str(runs_dir), *extra_args]
    log_file = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise MnistlabError(
                    f"'mnistlab serve' exited with code {proc.returncode} before answering"
                    + (f"; see {log_path}" if log_path else "")
                )
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise MnistlabError(
                    f"the server on {url} did not answer within {startup_timeout} s"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log_file.close()  # type: ignore[union-attr]


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start Uvicorn on a background thread; return (server, base URL).

    Stop it with ``server.should_exit = True``. ``port=0`` picks a free port.
    """
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MnistlabError(f"the server did not start on {host}:{port}")
        time.sleep(0.01)
    return server, f"http://{host}:{port}"


def benchmark(
    base_url: str,
    *,
    requests: int = 2000,
    concurrency: int = 32,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send ``requests`` POST /v1/predict, ``concurrency`` at a time, on keep-alive connections.

    Parameters
    ----------
    base_url : e.g. ``http://127.0.0.1:8000`` (loopback).
    requests : how many requests in all.
    concurrency : worker threads, each with its own connection.
    body, content_type : the request; default a JSON 28x28 image of a 7.

    Returns
    -------
    ``{"requests", "concurrency", "errors", "seconds", "rps", "p50_ms", "p99_ms"}``:
    round-trip times measured by the client.

    Examples
    --------
    >>> benchmark("http://127.0.0.1:8000", requests=500, concurrency=1)["p50_ms"]
    1.9
    """
    from urllib.parse import urlsplit

    if body is None:
        img = np.zeros((28, 28))
        img[5:8, 6:22] = 1
        for r in range(8, 24):  # the 7's diagonal
            c = int(21 - (r - 8) * 0.6)
            img[r, c - 1 : c + 2] = 1
        body = json.dumps({"image": img.tolist()}).encode()
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                try:
                    conn.request(
                        "POST", "/v1/predict", body=body, headers={"Content-Type": content_type}
                    )
                    resp = conn.getresponse()
                    payload = resp.read()
                    ms = (time.perf_counter() - start) * 1000
                    ok = resp.status == 200 and b'"digit"' in payload
                except (OSError, http.client.HTTPException) as err:
                    ms, ok = 0.0, False
                    payload = str(err).encode()
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                with lock:
                    if ok:
                        times.append(ms)
                    else:
                        errors.append(payload[:200].decode(errors="replace"))
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    arr = np.array(times) if times else np.array([math.nan])
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
    }
