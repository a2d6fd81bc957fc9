"""Calibration: how sure a classifier is against how often it is right.

Pure functions of ``(y_true, probs)`` (checked by
:func:`~.probabilities.check_probs`): the reliability diagram's bins, the
expected calibration error (ECE) and the temperature that minimises the
negative log-likelihood. :func:`mnistlab.evaluate.calibrate` fits that
temperature on a run's validation split and writes ``calibration.json``.

Calibration file
----------------
``mnistlab calibrate RUN`` writes ``calibration.json`` into the run directory
(:class:`mnistlab.runs.CalibrationRecord`); :func:`mnistlab.runs.load_calibration`
reads it. The model file is never changed: applying the temperature is up to
the reader. Format (plain JSON, floats unrounded)::

    {
      "method": "temperature",
      "temperature": 1.37,          # T > 0; T > 1 softens over-confident predictions
      "fitted_on": "validation",    # the run's own validation split, never the test set
      "n_fit": 5000,                # images the temperature was fitted on
      "val_size": 5000, "seed": 0,  # how the split was made (data.train_val_split)
      "ece_bins": 15,
      "validation": {"nll_before": .., "nll_after": .., "ece_before": .., "ece_after": ..},
      "test":       {"nll_before": .., "nll_after": .., "ece_before": .., "ece_after": ..}
    }

To apply it to the model's softmax output ``p`` (N, K)::

    calibrated = apply_temperature(p, calibration["temperature"])
    # = softmax(log(p) / T): the same as dividing the model's logits by T, since
    # log(p) differs from the logits only by a per-row constant.

Temperature scaling divides every logit by the same T, so the predicted class
(the argmax) and therefore the accuracy never change; only the confidence does.

Vector scaling (``"method": "vector"``, with ``"weights"`` and ``"bias"``, K each)
is the alternative :func:`choose_calibrator` compares it with on held-out halves of
the validation split; it is kept only when clearly better there.
:func:`~.probabilities.apply_calibration` applies either kind of record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.evaluate.probabilities import (
    EPSILON,
    apply_calibration,
    apply_temperature,
    apply_vector_scaling,
    check_probs,
    negative_log_likelihood,
)

# Equal-width confidence bins for the reliability diagram and the ECE (Guo et al. 2017).
N_BINS = 15

# fit_temperature searches T in this range (log-spaced); a fit at either end says
# the model's probabilities are degenerate rather than miscalibrated.
TEMPERATURE_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class Reliability:
    """Top-class confidence against accuracy in equal-width bins.

    Attributes
    ----------
    edges : float (B + 1,), bin edges 0, 1/B, ..., 1. Bin ``b`` holds the
        images whose confidence lies in ``(edges[b], edges[b + 1]]``.
    count : int (B,), images per bin.
    confidence : float (B,), mean top-class probability in the bin (NaN if empty).
    accuracy : float (B,), fraction of the bin's images predicted correctly (NaN if empty).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: ``sum_b n_b / N * |accuracy_b - confidence_b|``."""
        used = self.count > 0
        weights = self.count[used] / self.count.sum()
        return float(np.sum(weights * np.abs(self.accuracy[used] - self.confidence[used])))


def reliability(y_true: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Bin the images by top-class confidence; each bin's accuracy and mean confidence.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.
    n_bins : number of equal-width bins on [0, 1].

    Returns
    -------
    :class:`Reliability`; a perfectly calibrated model has accuracy equal to
    confidence in every bin.
    """
    y_true, probs = check_probs(y_true, probs)
    if not (isinstance(n_bins, int | np.integer) and n_bins >= 1):
        raise MnistlabError(f"invalid n_bins={n_bins!r}: expected an integer >= 1")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins (lo, hi]: ceil(c * B) - 1; a confidence of exactly 0
    # (impossible for a softmax) would go to bin 0.
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins -> NaN
        conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(index, weights=correct, minlength=n_bins) / count
    return Reliability(edges, count, conf, acc)


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS
) -> float:
    """Expected calibration error over ``n_bins`` equal-width confidence bins.

    ``ECE = sum over bins of (images in bin / N) * |accuracy(bin) - mean confidence(bin)|``,
    with the top-class probability as the confidence. 0 is perfect calibration.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.
    n_bins : number of bins (15, as in Guo et al. 2017, "On Calibration of
        Modern Neural Networks").

    Returns
    -------
    ECE in [0, 1].

    Examples
    --------
    >>> # Both images at confidence 0.9, one right: |0.5 - 0.9| = 0.4
    >>> round(expected_calibration_error([0, 1], [[0.9, 0.1], [0.9, 0.1]]), 6)
    0.4
    """
    return reliability(y_true, probs, n_bins).ece


def fit_temperature(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``probs``.

    Fit it on held-out data the model was not trained on (the validation
    split), never on the test set.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), the model's softmax outputs on those images.

    Returns
    -------
    T in [0.05, 20] (bounded search over log T).

    Examples
    --------
    >>> # Always 99% sure but right only 3 times in 4: T > 1 softens it.
    >>> fit_temperature([0, 0, 0, 1], [[0.99, 0.01]] * 4) > 1
    True
    """
    from scipy.optimize import minimize_scalar

    y_true, probs = check_probs(y_true, probs)
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(y_true, apply_temperature(probs, np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def fit_vector_scaling(y_true: np.ndarray, probs: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-class weights ``w`` and biases ``b`` minimising the NLL of ``softmax(w * log p + b)``.

    Vector scaling (Guo et al. 2017) on log-probabilities: 2K parameters instead of
    temperature scaling's one; it can also correct a bias towards some classes. Fitted
    with L-BFGS (scipy) from the identity (w = 1, b = 0), on held-out data only.

    Returns
    -------
    (weights, biases), K floats each.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    y_true, probs = check_probs(y_true, probs)
    n, k = probs.shape
    log_p = np.log(np.clip(probs, EPSILON, 1.0))
    rows = np.arange(n)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k:]
        log_q = log_softmax(w * log_p + b, axis=1)
        # d(-mean log q_y)/dz = (q - onehot) / n, z = w * log p + b
        diff = np.exp(log_q)
        diff[rows, y_true] -= 1.0
        diff /= n
        return float(-log_q[rows, y_true].mean()), np.concatenate(
            [(diff * log_p).sum(axis=0), diff.sum(axis=0)]
        )

    start = np.concatenate([np.ones(k), np.zeros(k)])
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B")
    return [float(v) for v in result.x[:k]], [float(v) for v in result.x[k:]]


def choose_calibrator(y_true: np.ndarray, probs: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Temperature or vector scaling, whichever calibrates held-out halves better.

    The validation images are split in two halves (stratified by nothing: a random
    permutation with ``seed``); each method is fitted on one half and scored (ECE) on
    the other, both ways. The winner is then refitted on all of them.

    Returns
    -------
    ``{"method": "temperature" | "vector", "temperature", "weights", "bias",
    "compared": {"temperature_ece", "vector_ece", "uncalibrated_ece"}}``; ``temperature``
    is always fitted (1.0 stands for none with vector scaling in old readers).
    """
    y_true, probs = check_probs(y_true, probs)
    order = np.random.default_rng(seed).permutation(len(y_true))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    scores: dict[str, list[float]] = {"temperature": [], "vector": []}
    for fit, held in (halves, halves[::-1]):
        t = fit_temperature(y_true[fit], probs[fit])
        scores["temperature"].append(
            expected_calibration_error(y_true[held], apply_temperature(probs[held], t))
        )
        w, b = fit_vector_scaling(y_true[fit], probs[fit])
        scores["vector"].append(
            expected_calibration_error(y_true[held], apply_vector_scaling(probs[held], w, b))
        )
    compared = {f"{m}_ece": float(np.mean(v)) for m, v in scores.items()}
    compared["uncalibrated_ece"] = expected_calibration_error(y_true, probs)
    # Vector scaling must earn its 2K parameters: it wins only when clearly better.
    method = (
        "vector" if compared["vector_ece"] < 0.8 * compared["temperature_ece"] else "temperature"
    )
    record: dict[str, Any] = {
        "method": method,
        "temperature": fit_temperature(y_true, probs),
        "compared": compared,
    }
    if method == "vector":
        record["weights"], record["bias"] = fit_vector_scaling(y_true, probs)
    return record


def risk_coverage(
    y_true: np.ndarray, probs: np.ndarray, points: int = 101
) -> dict[str, list[float]]:
    """Selective accuracy against coverage, answering the most confident images first.

    Coverage c answers the ``ceil(c * N)`` images of highest top-class probability and
    abstains on the rest; the selective accuracy is the accuracy on those answered
    (its complement is the selective risk, El-Yaniv & Wiener 2010).

    Parameters
    ----------
    y_true : int array (N,); probs : float array (N, K).
    points : coverages 1/points-spaced from 0 to 1 (the first one answered is 1 image).

    Returns
    -------
    ``{"coverage": [...], "selective_accuracy": [...], "threshold": [...]}``: the
    confidence an image needs to be answered at each coverage.

    Examples
    --------
    >>> rc = risk_coverage([0, 1], [[0.9, 0.1], [0.6, 0.4]], points=3)
    >>> rc["coverage"], rc["selective_accuracy"]
    ([0.0, 0.5, 1.0], [1.0, 1.0, 0.5])
    """
    y_true, probs = check_probs(y_true, probs)
    confidence = probs.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    correct = (probs.argmax(axis=1) == y_true)[order]
    cumulative = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    coverage = np.linspace(0, 1, points)
    answered = np.maximum(1, np.ceil(coverage * len(correct)).astype(int))
    return {
        "coverage": [float(c) for c in coverage],
        "selective_accuracy": [float(cumulative[k - 1]) for k in answered],
        "threshold": [float(confidence[order][k - 1]) for k in answered],
    }


def before_after(
    y_true: np.ndarray, probs: np.ndarray, temperature: float | dict[str, Any]
) -> dict[str, float]:
    """NLL and ECE of ``probs`` before and after calibration.

    ``temperature``: a temperature, or a calibration record (:func:`apply_calibration`).

    Returns
    -------
    ``{"nll_before", "nll_after", "ece_before", "ece_after"}`` (ECE over 15 bins).
    """
    if isinstance(temperature, dict):
        scaled = apply_calibration(probs, temperature)
    else:
        scaled = apply_temperature(probs, temperature)
    return {
        "nll_before": negative_log_likelihood(y_true, probs),
        "nll_after": negative_log_likelihood(y_true, scaled),
        "ece_before": expected_calibration_error(y_true, probs, N_BINS),
        "ece_after": expected_calibration_error(y_true, scaled, N_BINS),
    }
