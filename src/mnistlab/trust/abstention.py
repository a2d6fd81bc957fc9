"""Deciding, per image, to answer with a digit or to abstain, and why.

:class:`Abstainer` applies a run's ``abstention.json`` (chosen on validation data by
:mod:`mnistlab.trust.fitting`) to MNIST-form images and their calibrated
probabilities, in this order::

    ink over max_ink of the field                 -> "not a digit"
    several separate blobs side by side           -> "not a single digit"
    OOD score above ood_threshold                 -> "not a digit"
    calibrated top probability < min_confidence   -> "unsure"
    otherwise                                     -> None: answer with the digit
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.runs import AbstentionRecord, RunDir
from mnistlab.trust.checks import ink_fraction, several_side_by_side
from mnistlab.trust.exposure import load_ood_model
from mnistlab.trust.scores import FeatureStats, ModelOutputs, feature_model, ood_score

__all__ = ["REASONS", "Abstainer", "explain"]

NOT_A_DIGIT = "not a digit"
UNSURE = "unsure"
NOT_A_SINGLE_DIGIT = "not a single digit"
REASONS = (NOT_A_DIGIT, UNSURE, NOT_A_SINGLE_DIGIT)

_EXPLANATIONS = {
    NOT_A_DIGIT: "this does not look like a handwritten digit",
    UNSURE: "the model is not sure which digit this is",
    NOT_A_SINGLE_DIGIT: (
        "this looks like several digits side by side; read numbers with 'mnistlab read' "
        "(POST /v1/read)"
    ),
}


def explain(reason: str | None) -> str | None:
    """One sentence for a user about an abstention ``reason`` (None for an answer)."""
    return None if reason is None else _EXPLANATIONS.get(reason, reason)


class Abstainer:
    """A run's abstention rule, ready to apply to batches.

    Parameters
    ----------
    record : the run's :class:`~mnistlab.runs.AbstentionRecord`.
    model : the run's Keras model (for the penultimate features and logits); for the
        ``oe`` score, the outlier-exposure model.
    stats : the feature statistics (``ood_detector.npz``) for mahalanobis / knn.
    min_confidence : overrides the record's operating point (0 = never "unsure").
    """

    def __init__(
        self,
        record: AbstentionRecord,
        model: Any,
        stats: FeatureStats | None = None,
        *,
        min_confidence: float | None = None,
    ) -> None:
        if min_confidence is not None and not 0 <= min_confidence <= 1:
            raise MnistlabError(
                f"invalid min_confidence={min_confidence!r}: expected a number from 0 to 1"
            )
        self.record = record
        self.stats = stats
        self.min_confidence = (
            record.min_confidence if min_confidence is None else float(min_confidence)
        )
        self._forward = None
        if record.score == "oe":
            self._forward = _probs_forward(model)
        elif record.score != "msp":
            self._forward = _fast_forward(model)

    @classmethod
    def from_run(
        cls, run: RunDir, model: Any, *, min_confidence: float | None = None
    ) -> Abstainer | None:
        """The run's abstainer, or None when it has no ``abstention.json``."""
        record = run.abstention_record()
        if record is None:
            return None
        stats = None
        if record.score in ("mahalanobis", "knn"):
            stats = FeatureStats.from_arrays(run.ood_detector())
        if record.score == "oe":
            model = load_ood_model(run)
            if model is None:
                raise MnistlabError(
                    f"run {run.path} abstains with the outlier-exposure score but has no "
                    f"ood_model.keras; run 'mnistlab trust {run.path}' again"
                )
        return cls(record, model, stats, min_confidence=min_confidence)

    def scores(self, images: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """The OOD score of each image (higher = less like a digit), float64 (N,)."""
        if self._forward is None:
            outputs = ModelOutputs(np.zeros((len(probs), 0)), np.zeros_like(probs), probs)
        elif self.record.score == "oe":
            oe_probs, _ = self._forward(images)
            outputs = ModelOutputs(np.zeros((len(probs), 0)), np.zeros_like(probs), probs, oe_probs)
        else:
            feats, logits = self._forward(images)
            outputs = ModelOutputs(feats, logits, probs)
        return ood_score(self.record.score, outputs, self.stats)

    def decide(
        self, images: np.ndarray, probs: np.ndarray, min_confidence: float | None = None
    ) -> list[str | None]:
        """The reason to abstain on each image, or None to answer.

        Parameters
        ----------
        images : float (N, 28, 28) MNIST-form images.
        probs : float (N, 10) their calibrated probabilities.
        min_confidence : this call's operating point (default the abstainer's).
        """
        floor = self.min_confidence if min_confidence is None else float(min_confidence)
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        if len(images) == 0:
            return []
        scores = self.scores(images, probs)
        ink = ink_fraction(images)
        reasons: list[str | None] = []
        for i in range(len(images)):
            if ink[i] > self.record.max_ink:
                reasons.append(NOT_A_DIGIT)
            elif self.record.split_blobs and several_side_by_side(images[i]):
                reasons.append(NOT_A_SINGLE_DIGIT)
            elif scores[i] > self.record.ood_threshold:
                reasons.append(NOT_A_DIGIT)
            elif float(np.max(probs[i])) < floor:
                reasons.append(UNSURE)
            else:
                reasons.append(None)
        return reasons


def _probs_forward(model: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The (outlier-exposure) model's softmax of a batch in one traced call."""
    import tensorflow as tf

    fn = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
        reduce_retracing=True,
    )

    def forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = fn(np.asarray(images, np.float32)[..., np.newaxis]).numpy()
        return probs, probs

    return forward


def _fast_forward(model: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Features and logits of a batch in one traced call (~1 ms for one image)."""
    import tensorflow as tf

    both = feature_model(model)
    weights, bias = (np.asarray(w) for w in both.layers[-1].get_weights())
    fn = tf.function(
        lambda x: both(x, training=False)[0],
        input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
        reduce_retracing=True,
    )

    def forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats = fn(np.asarray(images, np.float32)[..., np.newaxis]).numpy()
        return feats, feats @ weights + bias

    return forward
