"""Outlier exposure: a short fine-tune that teaches a trained model to be unsure of non-digits.

Hendrycks, Mazeika & Dietterich (2019), "Deep Anomaly Detection with Outlier
Exposure": keep the usual cross-entropy on digits and add, with weight
:data:`OE_WEIGHT`, the cross-entropy between the model's output on *training*
outliers and the uniform distribution. A model trained so spreads its probability
over all ten classes for things that are not digits, and the maximum softmax
probability of the fine-tuned model separates them far better::

    the run's model.keras (loaded, not changed) + its training split's digits
    + training outliers of every kind (mnistlab.trust.outliers, split "train")
    -> three epochs, Adam at a small learning rate, soft targets (one-hot / uniform)
    -> ood_model.keras in the run: used only for the "oe" score, never to classify

The classifier the run answers with stays the trained ``model.keras``; the
fine-tuned copy only scores how digit-like an image is. Outliers of the
validation and test splits are never shown to it. The training loop is Keras's
``fit`` on arrays: this module adds no training code to :mod:`mnistlab.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mnistlab.files import atomic_path
from mnistlab.runs import RunDir, load_run_model
from mnistlab.trust.outliers import KINDS, make_outliers

__all__ = ["OE_WEIGHT", "OOD_MODEL_FILE", "fine_tune_outlier_exposure", "load_ood_model"]

OE_WEIGHT = 0.5  # lambda of the paper
OOD_MODEL_FILE = "ood_model.keras"
# Chosen on validation outliers (cnn-fast run, BENCH-trust.md): 1 epoch at 1e-4 on 1,000
# outliers per kind caught 63% of them at the operating point, 3 epochs at 3e-4 on 2,000 92%.
LEARNING_RATE = 3e-4
EPOCHS = 3
DIGITS = 20_000  # at most this many training digits replayed beside the outliers


def fine_tune_outlier_exposure(
    run: RunDir,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    outliers_per_kind: int = 1000,
    seed: int = 0,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
    render: Callable[[np.ndarray], np.ndarray] | None = None,
    rendered: int = 2000,
) -> Any:
    """Fine-tune a copy of the run's model with outlier exposure; save ``ood_model.keras``.

    Parameters
    ----------
    run : a finished run (its ``model.keras`` is read, not changed).
    x_train, y_train : the run's training digits (uint8 (N, 28, 28), labels (N,)).
    outliers_per_kind : training outliers of each kind.
    seed : shuffling and subset seed.
    epochs, learning_rate : the fine-tune's length and Adam's step size.
    render : how ``predict`` sees an image (``mnistlab.predict.as_predict_sees``): when
        given, ``rendered`` digits and ``rendered`` outliers are added once more as predict
        sees them, so the score holds for images that come as files.

    Returns
    -------
    The fine-tuned Keras model.
    """
    import keras

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    # As many digits as outliers (x 1.25), so neither side of the loss is drowned out.
    n_digits = min(DIGITS, len(x_train), int(1.25 * outliers_per_kind * len(KINDS)))
    pick = rng.choice(len(x_train), size=n_digits, replace=False)
    digits = x_train[pick].astype(np.float32) / 255
    targets = np.eye(10, dtype=np.float32)[y_train[pick]]
    outliers = np.concatenate(
        [make_outliers(kind, "train", outliers_per_kind, seed=seed) for kind in KINDS]
    )
    if render is not None:
        some = rng.choice(len(digits), size=min(rendered, len(digits)), replace=False)
        digits = np.concatenate([digits, render(digits[some])])
        targets = np.concatenate([targets, targets[some]])
        some = rng.choice(len(outliers), size=min(rendered, len(outliers)), replace=False)
        outliers = np.concatenate([outliers, render(outliers[some])])
    x = np.concatenate([digits, outliers])[..., np.newaxis]
    y = np.concatenate([targets, np.full((len(outliers), 10), 0.1, np.float32)])
    weight = np.r_[np.ones(len(digits)), np.full(len(outliers), OE_WEIGHT)].astype(np.float32)
    order = rng.permutation(len(x))

    model = load_run_model(run)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
    )
    model.fit(
        x[order], y[order], sample_weight=weight[order], batch_size=128, epochs=epochs, verbose=0
    )
    with atomic_path(run.path / OOD_MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    return model


def load_ood_model(run: RunDir) -> Any | None:
    """The run's outlier-exposure model, or None when it has none."""
    from mnistlab.models import load_saved_model

    path = run.path / OOD_MODEL_FILE
    if not path.is_file():
        return None
    return load_saved_model(path, hint=f"run 'mnistlab trust {run.path}' again")
