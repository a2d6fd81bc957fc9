"""Predicted probabilities: the one check at the edge, temperature scaling, the log loss.

Every function of this package that takes ``(y_true, probs)`` (true labels, int
(N,), and predicted class probabilities, float (N, K), rows summing to 1) checks
them with :func:`check_probs`. :func:`apply_temperature` is the one temperature
softmax of mnistlab: calibration fits with it, the report draws with it and
:class:`mnistlab.predict.Predictor` applies a run's calibration with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError

# Probabilities are clipped to [EPSILON, 1] before the log, as Keras's
# cross-entropy does, so one confident mistake costs -log(1e-7) ~ 16.1, not inf.
EPSILON = 1e-7


def check_probs(
    y_true: np.ndarray | Sequence[int],
    probs: np.ndarray | Sequence[Sequence[float]],
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and probabilities at the edge; return them as int64 and float64.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), finite, N >= 1, K >= 2.
    class_names : if given, K must be its length.

    Returns
    -------
    (y_true int64 (N,), probs float64 (N, K)). Float64 so sums over 10,000
    images and logs of tiny probabilities keep their digits.

    Raises
    ------
    MnistlabError
        Shapes that do not match, no image, labels out of range, or probabilities
        that are NaN or infinite (what a diverged training run produces).

    Examples
    --------
    >>> y, p = check_probs([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    >>> y.dtype, p.dtype
    (dtype('int64'), dtype('float64'))
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if class_names is not None:
        k = len(class_names)
        if probs.ndim != 2 or probs.shape[1] != k:
            raise MnistlabError(
                f"probs must have shape (N, {k}) for {k} class names, got {probs.shape}"
            )
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise MnistlabError(f"probs must have shape (N, K) with K >= 2 classes, got {probs.shape}")
    n, k = probs.shape
    if y_true.shape != (n,):
        raise MnistlabError(f"y_true must have shape ({n},) to match probs, got {y_true.shape}")
    if n == 0:
        raise MnistlabError("y_true and probs are empty; give at least one image")
    if not np.issubdtype(y_true.dtype, np.integer) or y_true.min() < 0 or y_true.max() >= k:
        raise MnistlabError(f"y_true must hold integer labels in 0..{k - 1}")
    if not np.all(np.isfinite(probs)):
        # What a diverged training run produces; its "accuracy" would be meaningless.
        raise MnistlabError(
            "probs contain NaN or infinity (did training diverge?); "
            "retrain with a lower learning rate"
        )
    return y_true.astype(np.int64), probs.astype(np.float64)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities by a temperature: ``softmax(log(probs) / T)``.

    The same as dividing the model's logits by T, since ``log(probs)`` differs
    from the logits only by a per-row constant; the argmax never changes.

    Parameters
    ----------
    probs : float array (N, K), softmax outputs.
    temperature : T > 0; T > 1 makes predictions less confident, T < 1 more.

    Returns
    -------
    float64 (N, K), rows summing to 1, with the same argmax as ``probs``.

    Examples
    --------
    >>> apply_temperature(np.array([[0.8, 0.2]]), 1.0).round(3)
    array([[0.8, 0.2]])
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise MnistlabError(f"invalid temperature={temperature!r}: expected a number > 0")
    probs = np.asarray(probs, dtype=np.float64)
    from scipy.special import softmax

    # log(0) = -inf is fine here: softmax gives it 0 again, and each row's top
    # probability is > 0, so every row has a finite maximum.
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / temperature
    return np.asarray(softmax(logits, axis=1), dtype=np.float64)


def apply_vector_scaling(
    probs: np.ndarray, weights: Sequence[float], bias: Sequence[float]
) -> np.ndarray:
    """Vector scaling on log-probabilities: ``softmax(weights * log(probs) + bias)``.

    Parameters
    ----------
    probs : float array (N, K), softmax outputs.
    weights, bias : K floats each (fitted by
        :func:`mnistlab.evaluate.calibration.fit_vector_scaling`).

    Returns
    -------
    float64 (N, K), rows summing to 1.
    """
    from scipy.special import softmax

    probs = np.asarray(probs, dtype=np.float64)
    w, b = np.asarray(weights, np.float64), np.asarray(bias, np.float64)
    if w.shape != (probs.shape[1],) or b.shape != w.shape or not np.isfinite([w, b]).all():
        raise MnistlabError(
            f"vector scaling needs {probs.shape[1]} finite weights and biases, "
            f"got {w.shape} and {b.shape}"
        )
    logits = w * np.log(np.clip(probs, EPSILON, 1.0)) + b
    return np.asarray(softmax(logits, axis=1), dtype=np.float64)


def apply_calibration(probs: np.ndarray, calibration: Mapping[str, Any] | None) -> np.ndarray:
    """Apply a run's calibration record (``calibration.json``) to softmax outputs.

    ``None`` (no calibration) leaves ``probs`` as they are (as float64).

    Examples
    --------
    >>> apply_calibration(np.array([[0.8, 0.2]]), {"temperature": 1.0}).round(3)
    array([[0.8, 0.2]])
    """
    if calibration is None:
        return np.asarray(probs, dtype=np.float64)
    if calibration.get("method") == "vector":
        return apply_vector_scaling(probs, calibration["weights"], calibration["bias"])
    return apply_temperature(probs, float(calibration["temperature"]))


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log probability of the true class (cross-entropy), in nats.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.

    Returns
    -------
    ``-mean(log(clip(p_true, 1e-7, 1)))``: the same number as the test loss in
    ``metrics.json`` and Keras's cross-entropy.

    Examples
    --------
    >>> round(negative_log_likelihood([0], [[0.5, 0.5]]), 4)
    0.6931
    """
    y_true, probs = check_probs(y_true, probs)
    p_true = probs[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(p_true, EPSILON, 1.0))))
