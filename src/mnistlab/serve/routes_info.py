"""The endpoints about the server: ``GET /healthz``, ``GET /v1/model``, ``GET /v1/stats``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mnistlab.serve.schemas import MAX_BATCH, Health, ModelInfo, Stats
from mnistlab.serve.service import Service, service_of

__all__ = ["router"]

router = APIRouter(tags=["server"])
ServiceDep = Annotated[Service, Depends(service_of)]

_UPLOAD = (
    "an image file (PNG, JPEG, GIF, BMP, TIFF, WebP; any size, any polarity) as "
    "multipart field 'file' or as the raw body with its image type"
)


@router.get("/healthz", summary="Liveness", response_model=Health)
async def healthz() -> Health:
    """``{"status": "ok"}`` while the server runs."""
    return Health()


@router.get(
    "/v1/model",
    summary="The model: name, metrics, input spec, latency",
    response_model=ModelInfo,
)
async def model_info(service: ServiceDep) -> ModelInfo:
    """What is served: the run, its test metrics, its classes, the limits, latency so far."""
    predictor = service.predictor
    m = predictor.metrics
    return ModelInfo.model_validate(
        {
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
                "upload": _UPLOAD,
                "json": '{"image": 28x28 numbers in [0, 1], white ink (1) on black (0)}',
                "shape": [28, 28],
                "range": [0, 1],
            },
            # The run's classes: "0".."9" for MNIST, "T-shirt/top".."Ankle boot" for
            # Fashion-MNIST.
            "output": {
                "classes": list(predictor.class_names),
                "probabilities": "softmax, sum 1",
            },
            "limits": {
                "max_upload_bytes": service.max_upload_bytes,
                "max_image_pixels": service.max_pixels,
                "max_batch": MAX_BATCH,
            },
            "latency": {"inference": service.stats.summary()},
        }
    )


@router.get(
    "/v1/stats",
    summary="In-server single-image inference latency (model call only)",
    response_model=Stats,
)
async def stats(service: ServiceDep) -> Stats:
    """Model-call latency over the last requests and the error responses by status."""
    return Stats(
        engine=service.predictor.engine,
        inference=service.stats.summary(),  # type: ignore[arg-type]
        errors={str(k): v for k, v in sorted(service.counters.items())},
    )
