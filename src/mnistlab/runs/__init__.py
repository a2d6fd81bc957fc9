"""The run contract: run directories and the typed records in them.

A run directory is the one hand-over between stages. This package is the only
code that reads or writes ``run.json``, ``config.json``, ``metrics.json``,
``calibration.json``, ``robustness.json`` and ``predictions.npz`` and loads a run's model:

- :mod:`~mnistlab.runs.rundir`: :class:`RunDir` (the layout, creation and lookup,
  the run's :attr:`~RunDir.kind` and state, the training lock);
- :mod:`~mnistlab.runs.records`: pydantic records of run.json, metrics.json,
  calibration.json and robustness.json, and :data:`RUN_KINDS`;
- :mod:`~mnistlab.runs.loading`: a run's model, calibration and saved predictions;
- :mod:`~mnistlab.runs.migration`: runs written before run.json recorded a kind.
"""

from mnistlab.runs.loading import (
    load_calibration,
    load_predictions,
    load_run_model,
    load_temperature,
    predictions_path,
)
from mnistlab.runs.migration import CV_FOLD_SOURCE
from mnistlab.runs.records import (
    RUN_KINDS,
    AbstentionRecord,
    CalibrationRecord,
    MetricsRecord,
    RobustnessRecord,
    RunKind,
    RunRecord,
)
from mnistlab.runs.rundir import (
    ABSTENTION_FILE,
    CALIBRATION_FILE,
    OOD_DETECTOR_FILE,
    PREDICTIONS_FILE,
    ROBUSTNESS_FILE,
    RunDir,
)

__all__ = [
    "ABSTENTION_FILE",
    "CALIBRATION_FILE",
    "OOD_DETECTOR_FILE",
    "CV_FOLD_SOURCE",
    "PREDICTIONS_FILE",
    "ROBUSTNESS_FILE",
    "RUN_KINDS",
    "AbstentionRecord",
    "CalibrationRecord",
    "MetricsRecord",
    "RobustnessRecord",
    "RunDir",
    "RunKind",
    "RunRecord",
    "load_calibration",
    "load_predictions",
    "load_run_model",
    "load_temperature",
    "predictions_path",
]
