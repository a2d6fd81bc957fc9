"""A saved model ready to classify MNIST-form images: find it, load it, run it fast.

A model is named the way the CLI names it: a run directory (its ``model.keras``),
a run name inside ``runs_dir``, ``latest``, or a path to any ``.keras`` file::

    resolve the model -> load it once -> wrap its forward pass in a tf.function
    (one trace, ~0.5 ms a call instead of ~30 ms for model.predict), or convert it
    to ONNX for onnxruntime -> warm it up -> probabilities (temperature-calibrated)

A model whose outputs are not finite (its training diverged) is refused. A run
trained on Fashion-MNIST predicts its own classes: the predictor carries the run's
class names.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.data import CLASS_NAMES
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import apply_calibration
from mnistlab.models import INPUT_SHAPE, NUM_CLASSES, load_saved_model
from mnistlab.predict.conversion import onnx_bytes
from mnistlab.predict.preprocess import preprocess_image
from mnistlab.predict.result import FileResult
from mnistlab.runs import CALIBRATION_FILE, RunDir, load_calibration, load_run_model
from mnistlab.trust import Abstainer

__all__ = [
    "CALIBRATION_FILE",
    "as_predict_sees",
    "DIGITS",
    "ENGINES",
    "Predictor",
    "load_keras_model",
    "load_predictor",
    "resolve_model",
    "time_single_image",
]

DIGITS = CLASS_NAMES["mnist"]  # "0" .. "9": what a model's classes are unless its run says
# How the forward pass runs: "tf" (the Keras model in a tf.function) or "onnx" (the
# same model converted by tf2onnx, run by onnxruntime: ~20x less overhead per call).
ENGINES = ("tf", "onnx")


# %% Loading a model --------------------------------------------------------------------


def resolve_model(
    ref: str | os.PathLike[str], runs_dir: str | Path = "runs"
) -> tuple[Path, RunDir | None]:
    """Find the model file a reference names.

    Parameters
    ----------
    ref : a ``.keras`` file, a run directory, a run name inside ``runs_dir``, or ``latest``.
    runs_dir : where run names are looked up.

    Returns
    -------
    (path of the .keras file, the RunDir or None for a bare model file).

    Raises
    ------
    MnistlabError
        Nothing found, or the run did not finish training.
    """
    path = Path(ref)
    if path.suffix == ".keras":
        if not path.is_file():
            raise MnistlabError(
                f"no model file at {path}; pass a .keras file, a run directory or 'latest'"
            )
        return path.resolve(), None
    run = RunDir.open(os.fspath(ref), runs_dir)
    run.require_finished()
    return run.model_path, run


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` file for inference (no optimiser state).

    Raises
    ------
    MnistlabError
        Missing, truncated or unreadable file.
    """
    return load_saved_model(path)  # forward pass only


class Predictor:
    """A loaded model with a fast forward pass, ready for single images or batches.

    Parameters
    ----------
    model : a Keras model mapping float32 (N, 28, 28, 1) in [0, 1] to softmax (N, 10).
    name : what to call it in output (the run's name or the file's stem).
    source : where it was loaded from.
    metrics : the run's ``metrics.json`` (empty when there is none).
    temperature : divide log-probabilities by this before the softmax (calibration);
        1.0 leaves the model's probabilities as they are.
    engine : ``"tf"`` (tf.function) or ``"onnx"`` (onnxruntime; converts the model
        at start-up, about a second).
    class_names : what class ``i`` is called (the run's dataset's ``class_names``);
        default the digits ``"0"`` .. ``"9"``.

    Raises
    ------
    MnistlabError
        Bad temperature or engine, or a model whose output is NaN or infinite (a
        diverged training run).

    Examples
    --------
    >>> predictor = load_predictor("runs/latest")  # doctest: +SKIP
    >>> result = predictor.predict_image("samples/7/canvas-a.png")  # doctest: +SKIP
    >>> result.digit  # doctest: +SKIP
    7
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str = "model",
        source: str = "",
        metrics: dict[str, Any] | None = None,
        temperature: float = 1.0,
        engine: str = "tf",
        class_names: Sequence[str] | None = None,
        calibration: dict[str, Any] | None = None,
        abstainer: Abstainer | None = None,
    ) -> None:
        if not (math.isfinite(temperature) and temperature > 0):
            raise MnistlabError(f"invalid temperature={temperature!r}: expected a number > 0")
        if engine not in ENGINES:
            raise MnistlabError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        self.model = model
        self.name = name
        self.source = source
        self.metrics = metrics or {}
        self.temperature = float(temperature)
        # A run's calibration record (temperature or vector scaling) wins over temperature.
        self.calibration = calibration
        self.abstainer = abstainer
        self.engine = engine
        self.class_names = tuple(class_names) if class_names is not None else DIGITS
        if len(self.class_names) != NUM_CLASSES:
            raise MnistlabError(
                f"expected {NUM_CLASSES} class names, got {len(self.class_names)}: "
                f"{', '.join(self.class_names)}"
            )
        self._forward = self._onnx_forward() if engine == "onnx" else self._tf_forward()
        self.warm_up()

    def _tf_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        import tensorflow as tf

        # One trace for any batch size: model.predict builds a tf.data pipeline per
        # call (~30 ms); a traced call on one image is well under a millisecond.
        model = self.model
        fn = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
            reduce_retracing=True,
        )
        return lambda x: fn(x).numpy()

    def _onnx_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One image is ~30 microseconds of arithmetic: spreading it over threads only
        # adds synchronisation, and a server runs many requests side by side anyway.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            onnx_bytes(self.model), options, providers=["CPUExecutionProvider"]
        )
        input_name = session.get_inputs()[0].name
        return lambda x: session.run(None, {input_name: x})[0]

    def warm_up(self, repeats: int = 5) -> None:
        """Trace and run the forward pass a few times so the first request is not slow.

        Raises
        ------
        MnistlabError
            The model's output is NaN or infinite (see :meth:`probabilities`).
        """
        zeros = np.zeros((1, *INPUT_SHAPE), np.float32)
        for _ in range(max(1, repeats)):
            out = self._forward(zeros)
        self._check_finite(out)

    def _check_finite(self, probs: np.ndarray) -> None:
        # A run whose loss went NaN saves NaN weights, and NaN in means NaN out: every
        # "prediction" would be class 0 with probability nan.
        if np.isfinite(probs).all():
            return
        what = "NaN" if np.isnan(probs).any() else "infinite values"
        raise MnistlabError(
            f"the model {self.name} outputs {what}: its training diverged; "
            "retrain it with a lower learning rate (--lr)"
        )

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities of MNIST-form images.

        Parameters
        ----------
        images : float (N, 28, 28) or (N, 28, 28, 1) in [0, 1], white ink on black.
        batch_size : images per forward pass (memory only).

        Returns
        -------
        float32 (N, 10), rows summing to 1.

        Raises
        ------
        MnistlabError
            The model's output for some image is NaN or infinite.
        """
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[..., np.newaxis]
        if x.ndim != 4 or x.shape[1:] != INPUT_SHAPE:
            raise MnistlabError(f"expected images shaped (N, 28, 28), got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        out = [self._forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        probs = np.concatenate(out).astype(np.float32)
        self._check_finite(probs)
        return self._calibrate(probs)

    def _calibrate(self, probs: np.ndarray) -> np.ndarray:
        if self.calibration is not None:
            return apply_calibration(probs, self.calibration).astype(np.float32)
        if self.temperature == 1.0:
            return probs
        return apply_calibration(probs, {"temperature": self.temperature}).astype(np.float32)

    def decide(
        self, images: np.ndarray, probs: np.ndarray, min_confidence: float | None = None
    ) -> list[str | None]:
        """Why to abstain on each MNIST-form image ("not a digit", "unsure", "not a single
        digit"), or None to answer; all None when the predictor does not abstain.

        ``min_confidence`` overrides the operating point for this call."""
        if self.abstainer is None:
            return [None] * len(probs)
        return self.abstainer.decide(images, probs, min_confidence)

    def predict_image(self, source: str | os.PathLike[str] | bytes, top_k: int = 3) -> FileResult:
        """Preprocess one image (path or bytes) and predict its digit (its class).

        Raises
        ------
        ImageError
            The image cannot be read or holds no ink.
        """
        pre = preprocess_image(source, cleanup=self.result_class_names() is None)
        probs = self.probabilities(pre.image[np.newaxis])
        name = "upload" if isinstance(source, bytes | bytearray) else str(source)
        return FileResult.from_probs(
            name,
            probs[0],
            top_k,
            image=pre.image,
            class_names=self.result_class_names(),
            reason=self.decide(pre.image[np.newaxis], probs)[0],
        )

    def result_class_names(self) -> tuple[str, ...] | None:
        """The class names results carry: None for the digits (MNIST output stays as it
        always was), the run's names otherwise (Fashion-MNIST)."""
        return None if self.class_names == DIGITS else self.class_names


def load_predictor(
    ref: str | os.PathLike[str],
    runs_dir: str | Path = "runs",
    *,
    engine: str = "tf",
    calibrated: bool = True,
    abstain: bool = True,
    min_confidence: float | None = None,
) -> Predictor:
    """Load the model a reference names (see :func:`resolve_model`) as a :class:`Predictor`.

    A run's ``metrics.json`` is attached when it exists, a ``calibration.json``
    is applied to the probabilities (unless ``calibrated=False``), an
    ``abstention.json`` makes it say "not a digit" / "unsure" (unless
    ``abstain=False``; ``min_confidence`` moves its operating point), and the classes are
    named as in the run's dataset (Fashion-MNIST's ``Sandal``, ...; a bare
    ``.keras`` file's classes are the digits).

    Parameters
    ----------
    ref : a ``.keras`` file, a run directory, a run name inside ``runs_dir``, or ``latest``.
    runs_dir : where run names are looked up.
    engine : ``"tf"`` (tf.function) or ``"onnx"`` (onnxruntime).
    calibrated : apply the run's calibration (default); False gives the model's own.
    abstain : abstain where the run's abstention rule says so (default).
    min_confidence : answer only when the top (calibrated) probability reaches this
        (default: the run's, chosen on validation); 0 never says "unsure".

    Returns
    -------
    Predictor ready to classify images.

    Raises
    ------
    MnistlabError
        No such model, not an MNIST-shaped classifier, an unreadable calibration,
        or a model that outputs NaN (its training diverged).

    Examples
    --------
    >>> predictor = load_predictor("latest")  # doctest: +SKIP
    >>> predictor.probabilities(np.zeros((2, 28, 28))).shape  # doctest: +SKIP
    (2, 10)
    """
    path, run = resolve_model(ref, runs_dir)
    # A run's model and calibration are read by the run contract (mnistlab.runs).
    model = load_run_model(run) if run is not None else load_keras_model(path)
    if model.input_shape[1:] != INPUT_SHAPE or model.output_shape[1:] != (NUM_CLASSES,):
        raise MnistlabError(
            f"{path} maps {model.input_shape} to {model.output_shape}; "
            f"expected (None, 28, 28, 1) -> (None, 10), an MNIST classifier"
        )
    metrics: dict[str, Any] = {}
    class_names = DIGITS
    if run is not None:
        class_names = CLASS_NAMES.get(run.config().dataset, DIGITS)
        if run.metrics_path.is_file():
            metrics = run.metrics()
    calibration = load_calibration(run) if run is not None and calibrated else None
    abstainer = None
    if run is not None and abstain:
        abstainer = Abstainer.from_run(run, model, min_confidence=min_confidence)
    return Predictor(
        model,
        name=run.name if run is not None else path.stem,
        source=str(run.path if run is not None else path),
        metrics=metrics,
        temperature=float(calibration["temperature"]) if calibration else 1.0,
        engine=engine,
        class_names=class_names,
        calibration=calibration,
        abstainer=abstainer,
    )


# The sizes and resampling filters images are drawn with by :func:`as_predict_sees`:
# a user's file may be a small crop, a scan or a phone picture, upscaled smoothly or
# blockily, and the preprocessing reads each a little differently.
DRAWN_SIZES = (28, 56, 84, 112, 160)


def as_predict_sees(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """MNIST-form images as ``predict`` sees them when they come as image files.

    Each is drawn as dark ink on white paper and brought back through
    :func:`~mnistlab.predict.preprocess.preprocess_array`; one the preprocessing
    refuses (it finds no ink) is kept as it was. With ``size`` None, image ``i`` is
    drawn ``DRAWN_SIZES[i % 5]`` px large, bilinear for even ``i // 5`` and
    nearest-neighbour for odd (deterministic); else every image ``size`` px, bilinear.
    About 5-15 ms an image. :func:`mnistlab.trust.fit_trust` chooses thresholds on
    validation digits so seen.

    Parameters
    ----------
    images : float (N, 28, 28) in [0, 1], white ink on black.
    size : one size for all, or None for the mix above.

    Returns
    -------
    float32 (N, 28, 28).
    """
    from PIL import Image

    from mnistlab.predict.preprocess import ImageError, preprocess_array

    filters = (Image.Resampling.BILINEAR, Image.Resampling.NEAREST)
    out = []
    for i, image in enumerate(np.asarray(images, np.float32).reshape(-1, 28, 28)):
        side = size or DRAWN_SIZES[i % len(DRAWN_SIZES)]
        how = filters[0] if size else filters[(i // len(DRAWN_SIZES)) % 2]
        paper = Image.fromarray(np.round(255 * (1 - image)).astype(np.uint8))
        big = np.asarray(paper.resize((side, side), how))
        try:
            out.append(preprocess_array(big).image)
        except ImageError:
            out.append(image)
    return np.stack(out).astype(np.float32) if out else np.zeros((0, 28, 28), np.float32)


def time_single_image(predictor: Predictor, n: int = 1000) -> dict[str, float]:
    """Latency of the forward pass on one image, in milliseconds (p50, p99, mean).

    Examples
    --------
    >>> time_single_image(load_predictor("latest"), n=200)["p50_ms"] < 1  # doctest: +SKIP
    True
    """
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        predictor.probabilities(x)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "n": n,
        "p50_ms": round(float(np.percentile(times, 50)), 4),
        "p99_ms": round(float(np.percentile(times, 99)), 4),
        "mean_ms": round(float(np.mean(times)), 4),
    }
