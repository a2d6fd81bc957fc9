"""Classification metrics of predicted probabilities: what ``metrics.json`` holds.

Pure functions of ``(y_true, probs, class_names)``, no I/O: the predicted class
of an image is the argmax of its probabilities; per-class precision, recall and
F1 come from scikit-learn's ``classification_report``; ranking (ROC-AUC,
average precision) and calibration (ECE) from :mod:`.analysis` and
:mod:`.calibration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnistlab.evaluate.analysis import average_precision, roc_auc
from mnistlab.evaluate.calibration import N_BINS, expected_calibration_error
from mnistlab.evaluate.probabilities import EPSILON, check_probs


def metrics_from_probs(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Classification metrics of predicted probabilities against true labels.

    The predicted class of an image is the argmax of its probabilities.

    Parameters
    ----------
    y_true : int array (N,), true labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities (rows sum to 1).
    class_names : K names, in label order (``CLASS_NAMES["mnist"]`` is ``"0" .. "9"``).

    Returns
    -------
    dict with plain-JSON values:
    ``n_test``, ``n_errors``, ``test_accuracy``, ``test_loss`` (mean
    cross-entropy, probabilities clipped to ``[1e-7, 1]``), ``confusion_matrix``
    (K x K counts, rows = true class, columns = predicted class),
    ``class_names``, ``per_class`` (one ``{"label", "precision", "recall",
    "f1", "support"}`` per class), ``macro_avg`` and ``weighted_avg``
    (``{"precision", "recall", "f1"}``; weighted by support). A class that is
    never predicted has precision 0 (not NaN). From :func:`analysis_metrics`:
    ``roc_auc`` and ``average_precision`` (one-vs-rest; ``{"per_class",
    "micro", "macro"}``, None for a class with no image) and ``ece``
    (expected calibration error, ``ece_bins`` = 15 equal-width bins).

    Examples
    --------
    >>> m = metrics_from_probs(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]), ["a", "b"])
    >>> m["test_accuracy"], m["confusion_matrix"]
    (0.5, [[1, 0], [1, 0]])
    """
    from sklearn.metrics import classification_report, confusion_matrix

    y_true, probs = check_probs(y_true, probs, class_names)
    n, k = probs.shape
    labels = np.arange(k)
    y_pred = probs.argmax(axis=1)

    # Cross-entropy in float64: float32 logs of 10,000 values lose digits in the mean.
    p_true = probs[np.arange(n), y_true]
    loss = float(-np.mean(np.log(np.clip(p_true, EPSILON, 1.0))))

    cm = confusion_matrix(y_true, y_pred, labels=labels)
    # zero_division=0: a class never predicted gets precision 0 rather than NaN,
    # which JSON cannot hold and tables cannot sort. Keyed by str(label).
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)

    def scores(row: dict[str, Any]) -> dict[str, float]:
        return {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
        }

    n_correct = int(np.trace(cm))
    return {
        "n_test": int(n),
        "n_errors": int(n - n_correct),
        "test_accuracy": n_correct / n,
        "test_loss": loss,
        "confusion_matrix": cm.astype(int).tolist(),
        "class_names": [str(c) for c in class_names],
        "per_class": [
            {
                "label": str(class_names[i]),
                **scores(report[str(i)]),
                "support": int(report[str(i)]["support"]),
            }
            for i in range(k)
        ],
        "macro_avg": scores(report["macro avg"]),
        "weighted_avg": scores(report["weighted avg"]),
        **analysis_metrics(y_true, probs),
    }


def analysis_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """ROC-AUC, average precision and ECE of predictions, as plain JSON values.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.

    Returns
    -------
    ``{"roc_auc": {...}, "average_precision": {...}, "ece": float, "ece_bins": 15}``;
    the two ranking entries as :func:`~.analysis.roc_auc` (per class in label
    order, micro, macro).
    """
    return {
        "roc_auc": roc_auc(y_true, probs),
        "average_precision": average_precision(y_true, probs),
        "ece": expected_calibration_error(y_true, probs, N_BINS),
        "ece_bins": N_BINS,
    }
