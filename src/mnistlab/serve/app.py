"""The FastAPI application around a loaded model: :func:`create_app`.

It assembles the pieces: the routers (:mod:`~mnistlab.serve.routes_predict`,
:mod:`~mnistlab.serve.routes_read`, :mod:`~mnistlab.serve.routes_info`,
:mod:`~mnistlab.serve.routes_pages`), the error handlers, the
:class:`~mnistlab.serve.service.Service` the routes share, the static scripts of
the drawing page, and the upload-size limit around it all.
``/openapi.json`` is FastAPI's, generated from the routes and the pydantic models
of :mod:`mnistlab.serve.schemas`, plus the request-body models the prediction
routes read themselves.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from mnistlab.predict import MAX_IMAGE_PIXELS, Predictor
from mnistlab.serve import routes_info, routes_pages, routes_predict, routes_read
from mnistlab.serve.errors import BodyLimit, install_error_handlers
from mnistlab.serve.service import Service

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MiB: a phone photo is 2-6 MB


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
    An ASGI app: the FastAPI app (``.app``; its ``state`` holds ``predictor``,
    ``stats`` and ``service``) wrapped in the upload-size limit.

    Examples
    --------
    >>> import uvicorn
    >>> from mnistlab.predict import load_predictor
    >>> predictor = load_predictor("latest", engine="onnx")  # doctest: +SKIP
    >>> uvicorn.run(create_app(predictor), port=8000)  # doctest: +SKIP
    """
    service = Service(predictor, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels)
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
    app.state.service = service
    app.state.predictor = predictor
    app.state.stats = service.stats
    app.state.index_html = routes_pages.index_html()
    app.state.reader = routes_read.ReaderSlot(predictor)
    install_error_handlers(app, service.counters)
    app.include_router(routes_predict.router)
    app.include_router(routes_read.router)
    app.include_router(routes_info.router)
    app.include_router(routes_pages.router)
    app.mount("/static", StaticFiles(directory=routes_pages.STATIC_DIR), name="static")
    _document_request_bodies(app, (*routes_predict.REQUEST_BODIES, *routes_read.REQUEST_BODIES))
    _warm_up(service)
    return BodyLimit(app, max_upload_bytes)


def _document_request_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add ``models`` to the spec's components/schemas (the routes' requestBody refer to them).

    The prediction routes read their bodies themselves (one route, several content
    types), so FastAPI does not see these models in their signatures.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _warm_up(service: Service) -> None:
    """Run the whole path once (decode, preprocess, model) so the first user is not slow."""
    from PIL import Image, ImageDraw

    warm = io.BytesIO()
    im = Image.new("L", (56, 56), 255)
    ImageDraw.Draw(im).line([(10, 10), (46, 10), (24, 50)], fill=0, width=6)
    im.save(warm, format="PNG")
    service.infer(service.decode(warm.getvalue())[0][np.newaxis])
    service.stats.reset()  # the warm-up is not a request
