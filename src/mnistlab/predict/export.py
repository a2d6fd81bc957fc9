"""Export a trained model for other runtimes: TF Serving, onnxruntime, TFLite.

Each format maps the same input to the same output as the Keras model:
float32 (N, 28, 28, 1) in [0, 1] (MNIST form, see ``mnistlab.predict.preprocess``) to
softmax probabilities (N, 10), any batch size N.

=============  ===============================  ==========================================
format         default path in the run          loaded by
=============  ===============================  ==========================================
savedmodel     export/savedmodel/1/             TF Serving (model base path
                                                export/savedmodel, version 1),
                                                ``tf.saved_model.load``; signature
                                                ``serving_default``
onnx           export/model.onnx                onnxruntime (converted by tf2onnx)
tflite         export/model.tflite              the TFLite / LiteRT interpreter
=============  ===============================  ==========================================

A run's calibration (``calibration.json``) is part of every export: the exported
model ends in ``softmax(w * log(p) + b)`` (temperature scaling: ``w = 1/T``, ``b = 0``), so
other runtimes get the same calibrated probabilities as ``mnistlab predict``;
``calibrated=False`` (``mnistlab export --uncalibrated``) exports the model's own.

Every artefact is written to a temporary name beside its destination and
renamed into place, so a failed export never leaves half a model behind. An
existing ONNX or TFLite file is replaced; an existing SavedModel directory is
replaced only when it holds nothing but a SavedModel (an earlier export), so a
mistyped ``--out`` never deletes other files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mnistlab import files
from mnistlab.errors import MnistlabError
from mnistlab.predict.conversion import onnx_bytes, tflite_bytes, write_onnx, write_savedmodel
from mnistlab.predict.predictor import load_keras_model, resolve_model
from mnistlab.runs import load_calibration

__all__ = ["FORMATS", "default_export_path", "export_model", "onnx_bytes"]

FORMATS = ("savedmodel", "onnx", "tflite")
_DEFAULT_PATHS = {
    "savedmodel": Path("export") / "savedmodel" / "1",
    "onnx": Path("export") / "model.onnx",
    "tflite": Path("export") / "model.tflite",
}


def default_export_path(
    model_ref: str | os.PathLike[str], fmt: str, runs_dir: str | Path = "runs"
) -> Path:
    """Where :func:`export_model` writes ``fmt`` when no ``out`` is given.

    Inside the run directory (``export/...``), or beside a bare ``.keras`` file.
    """
    _check_format(fmt)
    model_path, run = resolve_model(model_ref, runs_dir)
    base = run.path if run is not None else model_path.parent / model_path.stem
    return base / _DEFAULT_PATHS[fmt]


def export_model(
    model_ref: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str] | None = None,
    *,
    runs_dir: str | Path = "runs",
    calibrated: bool = True,
) -> Path:
    """Export a run's model (or a ``.keras`` file) in one format.

    Parameters
    ----------
    model_ref : a run directory, a run name in ``runs_dir``, ``latest``, or a ``.keras`` file.
    fmt : ``"savedmodel"``, ``"onnx"`` or ``"tflite"``.
    out : destination (a directory for savedmodel, a file otherwise); default
        :func:`default_export_path`. An existing file, or an existing directory
        holding only an earlier SavedModel export, is replaced; anything else is
        refused and left as it was.
    runs_dir : where run names are looked up.
    calibrated : end the exported model in the run's calibration (when it has one).

    Returns
    -------
    The path written.

    Raises
    ------
    MnistlabError
        Unknown format, no such model, a destination that cannot be replaced (a
        directory where a file belongs, or a directory of other files), or the
        converter failed (with its reason).

    Examples
    --------
    >>> export_model("runs/latest", "onnx")  # doctest: +SKIP
    PosixPath('runs/<run-id>/export/model.onnx')
    """
    _check_format(fmt)
    model_path, run = resolve_model(model_ref, runs_dir)
    dest = Path(out) if out is not None else default_export_path(model_ref, fmt, runs_dir)
    _check_destination(dest, fmt)  # before the slow load and conversion
    model = load_keras_model(model_path)
    calibration = load_calibration(run) if run is not None and calibrated else None
    if calibration is not None:
        model = with_calibration(model, calibration)
    try:
        if fmt == "savedmodel":
            with _atomic_dir(dest) as tmp:
                write_savedmodel(model, tmp)
        elif fmt == "onnx":
            with files.atomic_path(dest, suffix=".onnx") as tmp:
                write_onnx(model, tmp)
        else:
            with files.atomic_path(dest, suffix=".tflite") as tmp:
                tmp.write_bytes(tflite_bytes(model))
    except MnistlabError:
        raise
    except ImportError as err:
        raise MnistlabError(
            f"cannot export {fmt}: {err.name or err} is not installed; "
            "pip install 'mnistlab' again (it depends on onnx, onnxruntime and tf2onnx)"
        ) from err
    except Exception as err:  # a converter's internal failure: say which and why
        reason = " ".join(str(err).split())[:300]
        raise MnistlabError(
            f"exporting {model_path} as {fmt} failed ({type(err).__name__}: {reason})"
        ) from err
    return dest


def with_calibration(model: Any, calibration: dict[str, Any]) -> Any:
    """``model`` followed by its calibration: ``softmax(w * log(p) + b)`` (a Keras model).

    Temperature scaling is ``w = 1/T``, ``b = 0`` in every class; vector scaling has
    its fitted ``weights`` and ``bias``.
    """
    import keras
    import numpy as np

    k = model.output_shape[-1]
    if calibration.get("method") == "vector":
        w = np.asarray(calibration["weights"], np.float32)
        b = np.asarray(calibration["bias"], np.float32)
    else:
        w = np.full(k, 1 / float(calibration["temperature"]), np.float32)
        b = np.zeros(k, np.float32)
    probs = model.outputs[0]
    # log of the clipped probabilities (as mnistlab.evaluate does), scaled per class.
    logs = keras.layers.Activation(lambda p: keras.ops.log(keras.ops.clip(p, 1e-7, 1.0)))(probs)
    scaled = keras.layers.Dense(k, name="calibration")(logs)
    calibrated = keras.layers.Activation("softmax", name="calibrated_softmax")(scaled)
    wrapped = keras.Model(model.inputs, calibrated, name=f"{model.name}_calibrated")
    wrapped.get_layer("calibration").set_weights([np.diag(w), b])
    return wrapped


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise MnistlabError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")


# What Keras and TensorFlow write into a SavedModel directory (TF Serving adds
# assets.extra/ for warm-up requests). A directory holding anything else is not an
# earlier export and is never replaced.
_SAVEDMODEL_ENTRIES = frozenset(
    {
        "saved_model.pb",
        "saved_model.pbtxt",
        "fingerprint.pb",
        "keras_metadata.pb",
        "variables",
        "assets",
        "assets.extra",
    }
)
_FILE_NAMES = {"onnx": ("an ONNX", "model.onnx"), "tflite": ("a TFLite", "model.tflite")}


def _check_destination(dest: Path, fmt: str) -> None:
    """Refuse a destination whose replacement would destroy something not exported.

    Raises
    ------
    MnistlabError
        ``savedmodel`` into a file or into a non-empty directory that is not a
        SavedModel; ``onnx`` or ``tflite`` into a directory.
    """
    if not (dest.exists() or dest.is_symlink()):
        return
    if fmt != "savedmodel":
        if dest.is_dir():
            kind, name = _FILE_NAMES[fmt]
            raise MnistlabError(
                f"{dest} is a directory; {kind} model is one file: pass a file path "
                f"such as --out {dest / name}"
            )
        return
    if not dest.is_dir():
        raise MnistlabError(
            f"{dest} exists and is not a directory; a SavedModel is a directory: "
            "pass a new --out path"
        )
    try:
        names = {entry.name for entry in dest.iterdir()}
    except OSError as err:
        raise MnistlabError(f"cannot read {dest}: {files.describe_os_error(err)}") from err
    is_savedmodel = bool(names & {"saved_model.pb", "saved_model.pbtxt"})
    if names and not (is_savedmodel and names <= _SAVEDMODEL_ENTRIES):
        raise MnistlabError(
            f"{dest} exists and is not a SavedModel export; pass a new --out path "
            "(an earlier export holds only saved_model.pb, variables/ and assets/)"
        )


@contextlib.contextmanager
def _atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``dest``; swap it into place on success.

    ``dest`` may be absent, empty, or an earlier SavedModel export (checked again
    just before the swap: the conversion takes a while); the old one is removed
    only once the new one is in place.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    except OSError as err:
        raise MnistlabError(f"cannot write {dest}: {files.describe_os_error(err)}") from err
    target = tmp / "model"
    try:
        yield target
        _check_destination(dest, "savedmodel")
        old = tmp / "old"
        moved = False
        try:
            if dest.exists() or dest.is_symlink():
                # A directory cannot be renamed over a non-empty one: move the old one
                # into the temporary directory (deleted below), then rename the new one in.
                os.replace(dest, old)
                moved = True
            os.replace(target, dest)
        except OSError as err:
            if moved and not (dest.exists() or dest.is_symlink()):
                os.replace(old, dest)  # put the earlier export back
            raise MnistlabError(f"cannot write {dest}: {files.describe_os_error(err)}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
