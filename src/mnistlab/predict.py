"""Predict digits (or a run's other classes) in image files with a saved model.

A model is named the way the CLI names it: a run directory (its ``model.keras``),
a run name inside ``runs_dir``, ``latest``, or a path to any ``.keras`` file::

    resolve the model -> load it once -> wrap its forward pass in a tf.function
    (one trace, ~0.5 ms a call instead of ~30 ms for model.predict) -> warm it up
    -> each image: mnistlab.preprocess into MNIST form -> probabilities
    -> digit, probability, top-k; directories recursively; labels from folder names

An image that cannot be read is reported and counted; the batch goes on. A model
whose outputs are not finite (its training diverged) is refused, and so is a
request that finds no image files at all.

A run trained on Fashion-MNIST predicts its own classes: results carry the run's
class names, and only folders named by one of them (``Sandal/x.png``) label files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.data import CLASS_NAMES
from mnistlab.errors import MnistlabError
from mnistlab.models import INPUT_SHAPE, NUM_CLASSES, load_saved_model
from mnistlab.preprocess import ImageError, preprocess_image
from mnistlab.runs import RunDir

__all__ = [
    "IMAGE_EXTENSIONS",
    "FileResult",
    "Predictor",
    "find_images",
    "label_from_path",
    "load_keras_model",
    "load_predictor",
    "predict_files",
    "resolve_model",
    "summarise",
]

# Files a directory walk picks up; a file named explicitly is always tried.
_EXTENSIONS = tuple(".png .jpg .jpeg .gif .bmp .tif .tiff .webp .pgm .ppm .pnm".split())
IMAGE_EXTENSIONS = frozenset(_EXTENSIONS)
DIGITS = CLASS_NAMES["mnist"]  # "0" .. "9": what a model's classes are unless its run says
CALIBRATION_FILE = "calibration.json"  # optional, with a "temperature" key
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
    run = RunDir.open(ref, runs_dir)
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
    >>> predictor = load_predictor("runs/latest")
    >>> result = predictor.predict_image("samples/7/canvas-a.png")
    >>> result.digit
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

        from mnistlab.export import onnx_bytes  # export builds on this module: import late

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
        if self.temperature == 1.0:
            return probs
        logits = np.log(np.clip(probs, 1e-12, 1)) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict_image(self, source: str | os.PathLike[str] | bytes, top_k: int = 3) -> FileResult:
        """Preprocess one image (path or bytes) and predict its digit (its class).

        Raises
        ------
        ImageError
            The image cannot be read or holds no ink.
        """
        pre = preprocess_image(source)
        probs = self.probabilities(pre.image[np.newaxis])[0]
        name = "upload" if isinstance(source, bytes | bytearray) else str(source)
        return FileResult.from_probs(
            name, probs, top_k, image=pre.image, class_names=self.result_class_names()
        )

    def result_class_names(self) -> tuple[str, ...] | None:
        """The class names results carry: None for the digits (MNIST output stays as it
        always was), the run's names otherwise (Fashion-MNIST)."""
        return None if self.class_names == DIGITS else self.class_names


def load_predictor(
    ref: str | os.PathLike[str], runs_dir: str | Path = "runs", *, engine: str = "tf"
) -> Predictor:
    """Load the model a reference names (see :func:`resolve_model`) as a :class:`Predictor`.

    A run's ``metrics.json`` is attached when it exists, a ``calibration.json``
    with a ``temperature`` is applied to the probabilities, and the classes are
    named as in the run's dataset (Fashion-MNIST's ``Sandal``, ...; a bare
    ``.keras`` file's classes are the digits).

    Parameters
    ----------
    ref : a ``.keras`` file, a run directory, a run name inside ``runs_dir``, or ``latest``.
    runs_dir : where run names are looked up.
    engine : ``"tf"`` (tf.function) or ``"onnx"`` (onnxruntime).

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
    >>> predictor = load_predictor("latest")
    >>> predictor.probabilities(np.zeros((2, 28, 28))).shape
    (2, 10)
    """
    path, run = resolve_model(ref, runs_dir)
    model = load_keras_model(path)
    if model.input_shape[1:] != INPUT_SHAPE or model.output_shape[1:] != (NUM_CLASSES,):
        raise MnistlabError(
            f"{path} maps {model.input_shape} to {model.output_shape}; "
            f"expected (None, 28, 28, 1) -> (None, 10), an MNIST classifier"
        )
    metrics: dict[str, Any] = {}
    temperature = 1.0
    class_names = DIGITS
    if run is not None:
        class_names = CLASS_NAMES.get(run.config().dataset, DIGITS)
        if run.metrics_path.is_file():
            metrics = run.metrics()
        calibration = run.path / CALIBRATION_FILE
        if calibration.is_file():
            try:
                temperature = float(json.loads(calibration.read_text())["temperature"])
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise MnistlabError(f"cannot read the temperature in {calibration}: {err}") from err
    return Predictor(
        model,
        name=run.name if run is not None else path.stem,
        source=str(run.path if run is not None else path),
        metrics=metrics,
        temperature=temperature,
        engine=engine,
        class_names=class_names,
    )


# %% Files in, results out ------------------------------------------------------------------


@dataclass
class FileResult:
    """The prediction for one file, or why there is none.

    Attributes
    ----------
    file : the path as given (or found in a directory).
    digit, probability : the predicted class and its probability (None on error).
    top_k : [(digit, probability), ...], most likely first.
    probabilities : all ten, in digit order.
    label : the true digit when the file sits in a folder named by it (``samples/7/x.png``;
        for a run with other classes, a folder named by a class: ``Sandal/x.png``).
    error : the one-line reason when the file could not be used.
    image : the 28x28 image the model saw (float32), not serialised.
    class_names : the classes' names when they are not the digits (Fashion-MNIST);
        then :meth:`to_dict` adds a ``class`` beside each class number.
    """

    file: str
    digit: int | None = None
    probability: float | None = None
    top_k: list[tuple[int, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    label: int | None = None
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    @classmethod
    def from_probs(
        cls,
        file: str,
        probs: np.ndarray,
        top_k: int,
        image: np.ndarray | None = None,
        class_names: tuple[str, ...] | None = None,
    ) -> FileResult:
        order = np.argsort(-probs, kind="stable")[: max(1, top_k)]
        return cls(
            file=file,
            digit=int(order[0]),
            probability=float(probs[order[0]]),
            top_k=[(int(d), float(probs[d])) for d in order],
            probabilities=[float(p) for p in probs],
            image=image,
            class_names=class_names,
        )

    def class_name(self, index: int) -> str:
        """What class ``index`` is called: ``"7"`` for MNIST, ``"Sandal"`` for Fashion-MNIST's 5."""
        return self.class_names[index] if self.class_names else str(index)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def correct(self) -> bool | None:
        """True/False when the label is known, None otherwise."""
        if self.label is None or self.digit is None:
            return None
        return self.digit == self.label

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the image)."""
        if self.error is not None:
            return {"file": self.file, "error": self.error, "label": self.label}
        if self.class_names is None:  # MNIST: the digits are the names
            top_k = [{"digit": d, "probability": p} for d, p in self.top_k]
            named = {}
        else:
            top_k = [
                {"digit": d, "class": self.class_name(d), "probability": p} for d, p in self.top_k
            ]
            named = {"class": self.class_name(self.digit) if self.digit is not None else None}
        return {
            "file": self.file,
            "digit": self.digit,
            **named,
            "probability": self.probability,
            "top_k": top_k,
            "probabilities": self.probabilities,
            "label": self.label,
            "correct": self.correct,
        }


def label_from_path(
    path: str | os.PathLike[str], class_names: Sequence[str] | None = None
) -> int | None:
    """The class a file's folder names (``samples/7/x.png`` -> 7), else None.

    Parameters
    ----------
    path : an image file.
    class_names : the model's classes (default the digits). For other classes the
        folder must be named by one of them, ignoring case, spaces and punctuation
        (``Sandal/``, ``t-shirt-top/``, ``ankle_boot/``): a digit folder does not
        label a Fashion-MNIST image.

    Examples
    --------
    >>> fashion = CLASS_NAMES["fashion-mnist"]
    >>> label_from_path("samples/7/x.png"), label_from_path("shoes/sandal/x.png", fashion)
    (7, 5)
    """
    parent = Path(path).parent.name
    if class_names is None or tuple(class_names) == DIGITS:
        return int(parent) if len(parent) == 1 and parent.isdigit() else None
    wanted = _folder_key(parent)
    matches = [i for i, name in enumerate(class_names) if _folder_key(name) == wanted]
    return matches[0] if wanted and matches else None


def _folder_key(name: str) -> str:
    # "T-shirt/top" cannot be a folder name: compare letters and digits only.
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def find_images(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand files and directories (recursively, sorted) into image files.

    Files named explicitly are yielded whatever their extension (and reported later
    if they are not images); inside directories only image extensions are taken and
    hidden files and folders are skipped. Paths that do not exist are yielded too,
    so the caller reports them.
    """
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            yield from found
        else:
            yield path


def predict_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    top_k: int = 3,
    chunk: int = 64,
) -> Iterator[FileResult]:
    """Predict every image under ``paths``; a file that fails gives a result with ``error``.

    Parameters
    ----------
    predictor : the loaded model.
    paths : files and directories (see :func:`find_images`).
    top_k : how many classes to list per file (1-10).
    chunk : files preprocessed before one batched forward pass.

    Yields
    ------
    FileResult per file, in order.

    Raises
    ------
    MnistlabError
        ``top_k`` out of range, no image file at all under ``paths`` (e.g. an empty
        directory), or a model whose output is NaN.

    Examples
    --------
    >>> results = list(predict_files(load_predictor("latest"), ["samples"]))
    >>> summarise(results)["accuracy"]
    0.96
    """
    if not 1 <= top_k <= NUM_CLASSES:
        raise MnistlabError(f"invalid top_k={top_k!r}: expected 1 to {NUM_CLASSES}")
    paths = list(paths)
    names = predictor.result_class_names()
    pending: list[tuple[FileResult, np.ndarray | None]] = []
    found = 0
    for path in find_images(paths):
        found += 1
        result = FileResult(file=str(path), label=label_from_path(path, names), class_names=names)
        image = None
        try:
            image = preprocess_image(path).image
        except ImageError as err:
            result.error = str(err).removeprefix(f"{path}: ")
        pending.append((result, image))
        if len(pending) >= chunk:
            yield from _predict_chunk(predictor, pending, top_k)
            pending = []
    if not found:
        where = ", ".join(str(p) for p in paths) or "the paths given"
        raise MnistlabError(
            f"no image files found in {where} (looked for {', '.join(_EXTENSIONS)}; "
            "hidden files and folders are skipped)"
        )
    yield from _predict_chunk(predictor, pending, top_k)


def _predict_chunk(
    predictor: Predictor, pending: Sequence[tuple[FileResult, np.ndarray | None]], top_k: int
) -> Iterator[FileResult]:
    images = [img for _, img in pending if img is not None]
    probs = predictor.probabilities(np.stack(images)) if images else np.zeros((0, NUM_CLASSES))
    i = 0
    for result, image in pending:
        if image is not None:
            done = FileResult.from_probs(
                result.file, probs[i], top_k, image=image, class_names=result.class_names
            )
            done.label = result.label
            result = done
            i += 1
        yield result


def summarise(results: Sequence[FileResult]) -> dict[str, Any]:
    """Counts and, over files with a label, accuracy.

    Returns
    -------
    dict with ``files``, ``predicted``, ``failed``, ``labelled``, ``correct`` and
    ``accuracy`` (None when no file has a label).
    """
    scored = [r for r in results if r.ok and r.label is not None]
    correct = sum(bool(r.correct) for r in scored)
    return {
        "files": len(results),
        "predicted": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "labelled": len(scored),
        "correct": correct,
        "accuracy": round(correct / len(scored), 4) if scored else None,
    }


def time_single_image(predictor: Predictor, n: int = 1000) -> dict[str, float]:
    """Latency of the forward pass on one image, in milliseconds (p50, p99, mean).

    Examples
    --------
    >>> time_single_image(load_predictor("latest"), n=200)["p50_ms"] < 1
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
