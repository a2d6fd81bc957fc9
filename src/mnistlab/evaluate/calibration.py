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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.evaluate.probabilities import (
    apply_temperature,
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


def before_after(y_true: np.ndarray, probs: np.ndarray, temperature: float) -> dict[str, float]:
    """NLL and ECE of ``probs`` before and after scaling by ``temperature``.

    Returns
    -------
    ``{"nll_before", "nll_after", "ece_before", "ece_after"}`` (ECE over 15 bins).
    """
    scaled = apply_temperature(probs, temperature)
    return {
        "nll_before": negative_log_likelihood(y_true, probs),
        "nll_after": negative_log_likelihood(y_true, scaled),
        "ece_before": expected_calibration_error(y_true, probs, N_BINS),
        "ece_after": expected_calibration_error(y_true, scaled, N_BINS),
    }
