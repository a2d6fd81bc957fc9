"""Loading what a run directory holds for the stages after training.

The trained model (``model.keras``), its calibration (``calibration.json``) and
its saved test-set predictions (``predictions.npz``) are read here and nowhere
else, so every stage (evaluate, report, predict, serve, bench) reads a run the
same way and gets the same one-line errors.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from mnistlab.errors import MnistlabError
from mnistlab.models import load_saved_model
from mnistlab.runs.records import CalibrationRecord, describe_error
from mnistlab.runs.rundir import CALIBRATION_FILE, PREDICTIONS_FILE, RunDir

if TYPE_CHECKING:
    import keras


def load_run_model(
    run: RunDir, *, compile: bool = False, hint: str = "retrain the run"
) -> keras.Model:
    """The run's ``model.keras`` (this package's layers included).

    Parameters
    ----------
    run : the run; callers check :meth:`RunDir.require_finished` first.
    compile : restore the optimiser too (training); inference needs not.
    hint : what to do about an unreadable file; ends the error message.

    Raises
    ------
    MnistlabError
        Missing, truncated or unreadable model file.
    """
    return load_saved_model(run.model_path, compile=compile, hint=hint)


def load_calibration(run: RunDir) -> dict[str, Any] | None:
    """The run's ``calibration.json`` (format: :mod:`mnistlab.evaluate.calibration`).

    Parameters
    ----------
    run : the run directory.

    Returns
    -------
    The parsed JSON, or None when the run was never calibrated.

    Raises
    ------
    MnistlabError
        If the file exists but is unreadable or has no valid temperature.
    """
    path = Path(run.path) / CALIBRATION_FILE
    if not path.exists():
        return None
    again = f"run 'mnistlab calibrate {run.path}' again"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MnistlabError(f"cannot read {path} ({err}); {again}") from err
    try:
        CalibrationRecord.model_validate(data)
    except ValidationError as err:
        raise MnistlabError(
            f"{path} is not a calibration ({describe_error(err)}); {again}"
        ) from None
    return data


def load_temperature(run: RunDir | None) -> float:
    """The temperature to apply to the run's probabilities: 1.0 when it has none."""
    calibration = load_calibration(run) if run is not None else None
    return 1.0 if calibration is None else float(calibration["temperature"])


def predictions_path(run: RunDir) -> Path:
    """Where :func:`mnistlab.evaluate.evaluate` keeps a run's test-set probabilities."""
    return run.path / PREDICTIONS_FILE


def load_predictions(
    run: RunDir | str | Path, *, runs_dir: str | Path = "runs", uncalibrated: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The test-set labels and probabilities saved by :func:`mnistlab.evaluate.evaluate`.

    Parameters
    ----------
    run : a :class:`RunDir`, path, run name or ``"latest"``.
    runs_dir : where run names are looked up.
    uncalibrated : the model's own probabilities (before the run's calibration) when
        evaluate saved them; by default the probabilities metrics.json was scored on.

    Returns
    -------
    (y_true uint8 (N,), probs float32 (N, 10)).

    Raises
    ------
    MnistlabError
        The run was not evaluated (or its file is unreadable): says to evaluate it.
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    path = predictions_path(run)
    try:
        with np.load(path) as npz:
            key = "raw_probs" if uncalibrated and "raw_probs" in npz.files else "probs"
            return npz["y_true"], npz[key]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise MnistlabError(
            f"run {run.path} has no readable {PREDICTIONS_FILE}; "
            f"run 'mnistlab evaluate {run.path}' first"
        ) from err
