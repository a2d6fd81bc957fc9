"""Evaluation: a finished run scored once on its test set, understood, calibrated, compared.

- :mod:`~mnistlab.evaluate.scoring`: the stages, :func:`evaluate` (metrics.json,
  predictions.npz) and :func:`calibrate` (calibration.json);
- :mod:`~mnistlab.evaluate.metrics`: :func:`metrics_from_probs`, what metrics.json holds;
- :mod:`~mnistlab.evaluate.analysis`: ROC and precision-recall curves, mistakes,
  confused pairs, an ensemble's member overlap;
- :mod:`~mnistlab.evaluate.calibration`: reliability bins, ECE, fitting a temperature;
- :mod:`~mnistlab.evaluate.probabilities`: the one check of ``(y_true, probs)``, the
  one temperature softmax, the log loss;
- :mod:`~mnistlab.evaluate.compare`: two evaluated runs, McNemar and the bootstrap,
  and the comparison's text;
- :mod:`~mnistlab.evaluate.formatting`: the CLI's text of metrics and a calibration.

Every name the former ``mnistlab.evaluate``, ``mnistlab.analysis`` and
``mnistlab.compare`` modules had is importable from here.
"""

from mnistlab.ensemble import ENSEMBLE_AVERAGE_LAYER
from mnistlab.evaluate.analysis import (
    Curve,
    average_precision,
    confused_pairs,
    member_overlap,
    per_class_accuracy,
    pr_curves,
    ranked_mistakes,
    roc_auc,
    roc_curves,
)
from mnistlab.evaluate.calibration import (
    N_BINS,
    TEMPERATURE_RANGE,
    Reliability,
    before_after,
    choose_calibrator,
    expected_calibration_error,
    fit_temperature,
    fit_vector_scaling,
    reliability,
    risk_coverage,
)
from mnistlab.evaluate.compare import (
    ALPHA,
    CONFIDENCE,
    N_BOOTSTRAP,
    bootstrap_intervals,
    compare_predictions,
    compare_runs,
    contingency,
    format_comparison,
    mcnemar_exact,
)
from mnistlab.evaluate.formatting import format_calibration, format_members, format_metrics
from mnistlab.evaluate.metrics import analysis_metrics, metrics_from_probs
from mnistlab.evaluate.probabilities import (
    EPSILON,
    apply_calibration,
    apply_temperature,
    apply_vector_scaling,
    check_probs,
    negative_log_likelihood,
)
from mnistlab.evaluate.scoring import calibrate, evaluate, run_dataset
from mnistlab.runs import (
    CALIBRATION_FILE,
    PREDICTIONS_FILE,
    load_calibration,
    load_predictions,
    predictions_path,
)

__all__ = [
    "ALPHA",
    "CALIBRATION_FILE",
    "CONFIDENCE",
    "ENSEMBLE_AVERAGE_LAYER",
    "EPSILON",
    "N_BINS",
    "N_BOOTSTRAP",
    "PREDICTIONS_FILE",
    "TEMPERATURE_RANGE",
    "Curve",
    "Reliability",
    "analysis_metrics",
    "apply_calibration",
    "apply_temperature",
    "apply_vector_scaling",
    "average_precision",
    "before_after",
    "bootstrap_intervals",
    "calibrate",
    "choose_calibrator",
    "check_probs",
    "compare_predictions",
    "compare_runs",
    "confused_pairs",
    "contingency",
    "evaluate",
    "expected_calibration_error",
    "fit_temperature",
    "fit_vector_scaling",
    "format_calibration",
    "format_comparison",
    "format_members",
    "format_metrics",
    "load_calibration",
    "load_predictions",
    "mcnemar_exact",
    "member_overlap",
    "metrics_from_probs",
    "negative_log_likelihood",
    "per_class_accuracy",
    "pr_curves",
    "predictions_path",
    "ranked_mistakes",
    "reliability",
    "roc_auc",
    "risk_coverage",
    "roc_curves",
    "run_dataset",
]
