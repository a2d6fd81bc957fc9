"""A Keras model in other formats: SavedModel, ONNX and TFLite, written or in memory.

The converters only; where an export goes and how it replaces an earlier one is
:mod:`mnistlab.predict.export`. The predictor uses :func:`onnx_bytes` for its
onnxruntime engine. TensorFlow and the converters are imported on first use.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

__all__ = ["call_once", "onnx_bytes", "tflite_bytes", "write_onnx", "write_savedmodel"]


def call_once(model: Any) -> None:
    """Run the model once on a zero image, so the exporters can trace its call."""
    # Keras's exporters trace the model's call; a model fresh from load_model has
    # not been called yet and the ONNX exporter refuses it ("never called").
    import numpy as np

    model(np.zeros((1, 28, 28, 1), np.float32), training=False)


def write_savedmodel(model: Any, path: Path) -> None:
    """Write ``model`` as a TensorFlow SavedModel directory at ``path``."""
    call_once(model)
    # Keras 3's exporter writes a SavedModel with a 'serve' endpoint and the
    # 'serving_default' signature TF Serving calls: input (None, 28, 28, 1) float32.
    model.export(str(path), format="tf_saved_model", verbose=False)


def write_onnx(model: Any, path: Path) -> None:
    """Write ``model`` as an ONNX file at ``path`` (tf2onnx through Keras's exporter)."""
    # Keras 3 converts through tf2onnx on the TensorFlow backend. tf2onnx touches
    # numpy aliases removed in NumPy 2 (Keras patches them) and warns about them.
    call_once(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        model.export(str(path), format="onnx", verbose=False)


def onnx_bytes(model: Any) -> bytes:
    """The ONNX form of a Keras model, as bytes (for an in-memory onnxruntime session)."""
    with tempfile.TemporaryDirectory(prefix="mnistlab-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(model, path)
        return path.read_bytes()


def tflite_bytes(model: Any) -> bytes:
    """The TFLite flatbuffer of ``model``, converted through a temporary SavedModel."""
    import tensorflow as tf

    # Convert from a SavedModel: the route the TFLite converter supports for Keras 3
    # models (from_keras_model goes through the legacy tf.keras path).
    with tempfile.TemporaryDirectory(prefix="mnistlab-tflite-") as tmp:
        saved = Path(tmp) / "savedmodel"
        write_savedmodel(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        return converter.convert()
