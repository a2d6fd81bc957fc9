"""How the API fails: :class:`ApiError`, the upload-size limit, and the error handlers.

Every request that cannot be served is answered with JSON ``{"error": "...",
"status": N}`` (:class:`mnistlab.serve.schemas.ErrorBody`), whatever raised: our
own :class:`ApiError`, FastAPI's validation (422, with ``detail``), Starlette's
404/405, a body over the limit (413), or a bug (500, logged with its traceback).
Each status is counted for ``GET /v1/stats``.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

__all__ = [
    "ApiError",
    "BodyLimit",
    "BodyTooLarge",
    "install_error_handlers",
    "request_validation_error",
]

log = logging.getLogger("mnistlab.serve")


class ApiError(Exception):
    """A request that cannot be served: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def request_validation_error(err: ValidationError, where: str = "body") -> RequestValidationError:
    """A pydantic error in a body we validated ourselves, as FastAPI's own 422 error."""
    return RequestValidationError(
        [{**e, "loc": (where, *e["loc"])} for e in err.errors(include_url=False)]
    )


def _issues(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only where, what and which kind: pydantic's "input" would echo a whole image back.
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg")),
            "type": str(e.get("type")),
        }
        for e in errors
    ]


def install_error_handlers(app: FastAPI, counters: collections.Counter[int]) -> None:
    """Answer every failure on ``app`` as JSON ``{"error", "status"}``; count statuses."""

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
        issues = _issues(exc.errors())
        message = "; ".join(f"{'.'.join(str(p) for p in i['loc'])}: {i['msg']}" for i in issues)
        return JSONResponse({"error": message, "status": 422, "detail": issues}, 422)

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


# %% The upload-size limit ------------------------------------------------------------------


class BodyTooLarge(Exception):
    """Raised while reading a body (chunked, no Content-Length) that passes the limit."""


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


async def _send_error(send: Callable, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
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
