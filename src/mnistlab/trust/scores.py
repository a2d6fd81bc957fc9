"""Out-of-distribution scores: how little an image looks like the digits a model knows.

Every score is "higher = less like a digit", computed from what a classifier ending in
``Dense(10, softmax)`` gives for a batch of MNIST-form images
(:class:`ModelOutputs`: the penultimate features, the logits, the calibrated
probabilities)::

    msp          -max softmax probability (Hendrycks & Gimpel 2017), calibrated
    energy       -logsumexp(logits) (Liu et al. 2020)
    mahalanobis  min over classes of the Mahalanobis distance of the penultimate
                 features to the class mean, with one shared covariance fitted on
                 training digits (Lee et al. 2018)
    knn          distance to the k-th nearest training digit in L2-normalised
                 feature space (Sun et al. 2022), scikit-learn's NearestNeighbors
    oe           -max softmax probability of the run's outlier-exposure model
                 (:mod:`mnistlab.trust.exposure`)

:class:`FeatureStats` holds what the feature-space scores fit on training digits
(class means, the shared precision matrix, a bank of normalised features); it is
saved with a run as ``ood_detector.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError

__all__ = [
    "METHODS",
    "FeatureStats",
    "ModelOutputs",
    "feature_model",
    "model_outputs",
    "ood_score",
]

METHODS = ("msp", "energy", "mahalanobis", "knn", "oe")
KNN_K = 10  # the k-th neighbour (Sun et al. use k = 50 of 50,000; ours is a 5,000 bank)


@dataclass(frozen=True)
class ModelOutputs:
    """A batch's penultimate features (N, D), logits (N, K) and probabilities (N, K), and
    the outlier-exposure model's probabilities (N, K) when there is one."""

    features: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    oe_probs: np.ndarray | None = None


def feature_model(model: Any) -> Any:
    """A Keras model giving ``[penultimate features, softmax]`` of ``model``.

    Raises
    ------
    MnistlabError
        The model does not end in a Dense softmax layer (an ensemble, for one).
    """
    import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.get_config().get("activation") != "softmax":
        raise MnistlabError(
            f"model {model.name} does not end in a Dense softmax layer, so it has no "
            "penultimate features; use the 'msp' score for it"
        )
    return keras.Model(model.inputs, [last.input, model.outputs[0]])


def model_outputs(
    features_and_probs: Any, images: np.ndarray, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, logits, probs) of float (N, 28, 28) images through a :func:`feature_model`."""
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    feats, probs = features_and_probs.predict(x, batch_size=batch_size, verbose=0)
    weights, bias = features_and_probs.layers[-1].get_weights()
    logits = feats @ weights + bias
    return feats.astype(np.float32), logits.astype(np.float32), probs.astype(np.float32)


@dataclass(frozen=True)
class FeatureStats:
    """What the feature-space scores fit on training digits.

    Attributes
    ----------
    means : float (K, D), class means of the penultimate features.
    precision : float (D, D), inverse of the shared (tied) covariance.
    bank : float (M, D), L2-normalised features of M training digits (kNN).
    """

    means: np.ndarray
    precision: np.ndarray
    bank: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, bank_size: int = 5000) -> FeatureStats:
        """Class means and shared covariance (scikit-learn's Ledoit-Wolf shrinkage)."""
        from sklearn.covariance import LedoitWolf

        labels = np.asarray(labels)
        k = int(labels.max()) + 1
        means = np.stack([features[labels == c].mean(axis=0) for c in range(k)])
        centred = features - means[labels]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        bank = _normalise(features[:bank_size])
        return cls(means.astype(np.float32), precision.astype(np.float32), bank)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"means": self.means, "precision": self.precision, "bank": self.bank}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureStats:
        try:
            return cls(arrays["means"], arrays["precision"], arrays["bank"])
        except KeyError as err:
            raise MnistlabError(
                f"ood_detector.npz lacks {err}; fit the run's trust again"
            ) from None

    def mahalanobis(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean, (N,)."""
        diff = features[:, None, :] - self.means[None, :, :]  # (N, K, D)
        dist = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return np.asarray(dist.min(axis=1), np.float64)

    def knn(self, features: np.ndarray, k: int = KNN_K) -> np.ndarray:
        """Distance to the k-th nearest bank feature (both L2-normalised), (N,)."""
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k).fit(self.bank)
        dist, _ = nn.kneighbors(_normalise(features))
        return np.asarray(dist[:, -1], np.float64)


def _normalise(features: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norm, 1e-12)).astype(np.float32)


def ood_score(method: str, outputs: ModelOutputs, stats: FeatureStats | None = None) -> np.ndarray:
    """The ``method`` score of each image (higher = less like a digit), float64 (N,).

    Raises
    ------
    MnistlabError
        An unknown method, or a feature-space method without ``stats``.
    """
    if method == "msp":
        return -outputs.probs.max(axis=1).astype(np.float64)
    if method == "energy":
        from scipy.special import logsumexp

        return -np.asarray(logsumexp(outputs.logits.astype(np.float64), axis=1))
    if method in ("mahalanobis", "knn"):
        if stats is None:
            raise MnistlabError(f"the {method} score needs the run's feature statistics")
        return (
            stats.mahalanobis(outputs.features)
            if method == "mahalanobis"
            else stats.knn(outputs.features)
        )
    if method == "oe":
        if outputs.oe_probs is None:
            raise MnistlabError("the oe score needs the run's outlier-exposure model")
        # An eleven-way model's last unit is "not a digit": the digits' best is the score.
        return -outputs.oe_probs[:, :10].max(axis=1).astype(np.float64)
    raise MnistlabError(f"unknown OOD score {method!r}; choose from {', '.join(METHODS)}")
