"""Using a saved model: images into MNIST form, the predictor, predicting files, export.

::

    preprocess   any image -> 28x28 MNIST form (white ink on black, centred by mass)
    result       FileResult: one prediction (class, probability, top k) or its error
    predictor    resolve a run or .keras file, load it, Predictor (tf.function or ONNX)
    files        find image files, label them by folder, predict them, summarise
    conversion   the Keras model as SavedModel, ONNX, TFLite
    export       write those formats into the run (atomically, never over other files)

Every public name of the old ``mnistlab.predict``, ``mnistlab.preprocess`` and
``mnistlab.export`` modules is importable from here.

>>> from mnistlab.predict import label_from_path
>>> label_from_path("samples/7/x.png")
7
"""

from __future__ import annotations

from mnistlab.predict.conversion import onnx_bytes
from mnistlab.predict.export import FORMATS, default_export_path, export_model
from mnistlab.predict.files import (
    IMAGE_EXTENSIONS,
    find_images,
    label_from_path,
    predict_files,
    summarise,
)
from mnistlab.predict.predictor import (
    CALIBRATION_FILE,
    DIGITS,
    ENGINES,
    Predictor,
    load_keras_model,
    load_predictor,
    resolve_model,
    time_single_image,
)
from mnistlab.predict.preprocess import (
    MAX_IMAGE_PIXELS,
    ImageError,
    Preprocessed,
    load_image,
    preprocess_array,
    preprocess_image,
    to_png,
)
from mnistlab.predict.result import FileResult

__all__ = [
    "CALIBRATION_FILE",
    "DIGITS",
    "ENGINES",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "FileResult",
    "ImageError",
    "Predictor",
    "Preprocessed",
    "default_export_path",
    "export_model",
    "find_images",
    "label_from_path",
    "load_image",
    "load_keras_model",
    "load_predictor",
    "onnx_bytes",
    "predict_files",
    "preprocess_array",
    "preprocess_image",
    "resolve_model",
    "summarise",
    "time_single_image",
    "to_png",
]
