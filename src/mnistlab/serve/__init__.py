"""An HTTP API and a drawing page for a trained model (FastAPI on Uvicorn).

=====================  ==========================================================
``POST /v1/predict``   one image: a multipart upload (field ``file``), raw image
                       bytes (``Content-Type: image/png`` ...), or JSON
                       ``{"image": 28x28 numbers in [0, 1]}`` (MNIST form: white
                       ink on black). Query: ``top_k`` (1-10), ``include_input``
                       (return the 28x28 image the model saw).
``POST /v1/predict/batch``  many: multipart with several ``files``, or JSON
                       ``{"images": [28x28, ...]}``; per-item errors.
``POST /v1/read``      a whole number (1-12 handwritten digits): the same bodies
                       as ``/v1/predict``, JSON of any size; the text (or null
                       with a reason), its confidence, each digit's box.
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
or infinity, values outside [0, 1]; FastAPI's validation, with ``detail`` listing
each problem). A client that hangs up mid-upload is no error.

The package, one module per concern::

    schemas          pydantic models of every request and response body
    service          the model behind the routes, latency, reading request bodies
    errors           ApiError, the upload-size limit, JSON error handlers
    routes_predict   POST /v1/predict, /v1/predict/batch, /v1/preprocess
    routes_read      POST /v1/read (mnistlab.read on the served model);
                     its bodies in read_schemas
    routes_info      GET /healthz, /v1/model, /v1/stats
    routes_pages     GET / (the drawing page) and /docs, from Jinja2 templates
    app              create_app: the pieces put together
    server           load_for_serving, listen_socket, run_server, start_in_thread,
                     server_process
    bench            benchmark: client-side latency of a running server
"""

from __future__ import annotations

from mnistlab.serve.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
from mnistlab.serve.bench import benchmark
from mnistlab.serve.errors import ApiError, BodyLimit, BodyTooLarge
from mnistlab.serve.routes_pages import docs_html
from mnistlab.serve.schemas import MAX_BATCH, to_mnist_array
from mnistlab.serve.server import (
    free_port,
    listen_socket,
    load_for_serving,
    run_server,
    server_process,
    start_in_thread,
)
from mnistlab.serve.service import BLANK_RANGE, IMAGE_TYPES, LatencyStats, require_ink

__all__ = [
    "BLANK_RANGE",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "IMAGE_TYPES",
    "MAX_BATCH",
    "ApiError",
    "BodyLimit",
    "BodyTooLarge",
    "LatencyStats",
    "benchmark",
    "create_app",
    "docs_html",
    "free_port",
    "listen_socket",
    "load_for_serving",
    "require_ink",
    "run_server",
    "server_process",
    "start_in_thread",
    "to_mnist_array",
]
