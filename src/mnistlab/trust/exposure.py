"""Outlier exposure: a short fine-tune that teaches a trained model to be unsure of non-digits.

Hendrycks, Mazeika & Dietterich (2019), "Deep Anomaly Detection with Outlier
Exposure", in two forms (``head``):

- ``"class"`` (the default): the model gets an eleventh softmax unit, "not a digit",
  initialised beside the ten trained ones, and learns it from *training* outliers
  while the digits keep their own classes;
- ``"uniform"`` (the paper's): the usual cross-entropy on digits plus, with weight
  :data:`OE_WEIGHT`, the cross-entropy between the output on training outliers and
  the uniform distribution over the ten digits.

Either way the score is the fine-tuned model's highest *digit* probability, low for
things that are not digits::

    the run's model.keras (loaded, not changed) + its training split's digits
    + training outliers of every kind (mnistlab.trust.outliers, split "train"),
      some of both drawn as files and brought back through predict's preprocessing
    -> six epochs, Adam at a small learning rate
    -> ood_model.keras in the run: used only for the "oe" score, never to classify

Chosen on validation outliers (the share caught while answering 99.5% of validation
digits, mean over the eight kinds, both drawn as predict sees them; default ``cnn``
run, BENCHMARKS.md): the eleventh class caught 81.5%, the uniform target 73.0%
(three epochs each; six epochs of the eleventh class 85.1%).

The classifier the run answers with stays the trained ``model.keras``; the
fine-tuned copy only scores how digit-like an image is. Outliers of the
validation and test splits are never shown to it. The training loop is Keras's
``fit`` on arrays: this module adds no training code to :mod:`mnistlab.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.files import atomic_path
from mnistlab.runs import RunDir, load_run_model
from mnistlab.trust.outliers import KINDS, make_outliers

__all__ = ["OE_WEIGHT", "OOD_MODEL_FILE", "fine_tune_outlier_exposure", "load_ood_model"]

OE_WEIGHT = 0.5  # lambda of the paper
OOD_MODEL_FILE = "ood_model.keras"
# Chosen on validation outliers (BENCHMARKS.md): on a cnn-fast run, 1 epoch at 1e-4 on
# 1,000 outliers per kind caught 63% of them at the operating point, 3 epochs at 3e-4 on
# 2,000 92% (arrays); on the default cnn (as predict sees them, eleventh class) 3 epochs
# caught 81.5%, 6 epochs 85.1%.
LEARNING_RATE = 3e-4
EPOCHS = 6
HEADS = ("class", "uniform")
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
    head: str = "class",
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
    head : ``"class"`` (an eleventh, "not a digit" class) or ``"uniform"`` (the
        paper's uniform target over the ten digits).

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
    if head not in HEADS:
        raise MnistlabError(f"invalid head={head!r}: expected one of {', '.join(HEADS)}")
    x = np.concatenate([digits, outliers])[..., np.newaxis]
    model = load_run_model(run)
    if head == "class":
        # An eleventh class, "not a digit", beside the ten digits.
        targets = np.c_[targets, np.zeros(len(targets), np.float32)]
        other = np.eye(11, dtype=np.float32)[np.full(len(outliers), 10)]
        y = np.concatenate([targets, other])
        weight = np.ones(len(x), np.float32)
        model = _with_other_class(model)
    else:
        y = np.concatenate([targets, np.full((len(outliers), 10), 0.1, np.float32)])
        weight = np.r_[np.ones(len(digits)), np.full(len(outliers), OE_WEIGHT)].astype(np.float32)
    order = rng.permutation(len(x))

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


def _with_other_class(model: Any) -> Any:
    """The model with an 11-way softmax: its ten digit units, and one for "not a digit"."""
    import keras

    last = model.layers[-1]
    weights, bias = last.get_weights()
    head = keras.layers.Dense(11, activation="softmax", name="digits_and_other")
    out = head(model.layers[-2].output)
    extended = keras.Model(model.inputs, out, name=f"{model.name}_ood")
    head.set_weights([np.c_[weights, np.zeros(len(weights))], np.r_[bias, bias.min()]])
    return extended


def load_ood_model(run: RunDir) -> Any | None:
    """The run's outlier-exposure model, or None when it has none."""
    from mnistlab.models import load_saved_model

    path = run.path / OOD_MODEL_FILE
    if not path.is_file():
        return None
    return load_saved_model(path, hint=f"run 'mnistlab trust {run.path}' again")
