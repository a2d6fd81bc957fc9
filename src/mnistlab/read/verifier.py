"""The segmentation verifier: is a candidate cut one whole digit, or not?

A run's digit classifier is as sure of half a digit, or of two touching digits, as
of one real digit (it never saw anything else), so on its own it cannot guide the
choice of cuts. The verifier is a small convnet with 11 outputs, the ten digits
and "not one digit", trained on the reader's own candidate crops::

    MNIST train-split digits (never the 5,000 held-out validation digits, never test)
    -> compose.compose_set in every layout, with each pixel's owner digit
    -> line_ink + segment.hypotheses, exactly as the reader cuts
    -> each hypothesis labelled by its ink's owners: the digit's class when it holds
       >= 80% of one digit's ink and that digit is >= 85% of its ink; "not one digit"
       (class 10) when it holds < 60% of any digit or a digit is < 70% of its ink
       (half digits, pairs, a digit with part of its neighbour, line leftovers);
       in between: left out
    -> crops (28x28 MNIST form) + its size in line heights and whether its edges are
       cuts -> a convnet, a few epochs (about a minute on 2 cores)
    -> RUN/read_verifier.keras (atomic write)

The reader adds ``verify_weight * log(1 - p(not one digit))`` to each candidate's
score. It is trained once per run, lazily: :meth:`NumberReader.from_run` trains
and caches it when the run has none (:func:`load_or_train`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnistlab.data import Dataset, load_dataset
from mnistlab.data.dataset import train_val_split
from mnistlab.files import atomic_path
from mnistlab.read.compose import LAYOUTS, NumberImage, compose_set
from mnistlab.read.ink import line_ink
from mnistlab.read.segment import INK_LEVEL, Hypothesis, hypotheses

__all__ = [
    "NOT_ONE_DIGIT",
    "VERIFIER_FILE",
    "Verifier",
    "features",
    "labelled_crops",
    "load_or_train",
    "load_verifier",
    "train_verifier",
]

log = logging.getLogger(__name__)

VERIFIER_FILE = "read_verifier.keras"
# The verifier's 11th class.
NOT_ONE_DIGIT = 10
# Per-candidate numbers beside the crop: width, height (line heights), cut left, cut right.
N_FEATURES = 4
# Labelling thresholds (shares of ink; see the module docstring).
WHOLE, PURE = 0.8, 0.85
PART, MIXED = 0.6, 0.7
# Negatives kept per positive crop (the rest are dropped at random: training time).
NEGATIVES_PER_DIGIT = 2
# Default training size: compositions (all layouts together) and epochs.
COMPOSITIONS = 1500
EPOCHS = 4
# Composition seed of the verifier's training images (validation uses 7, test 2024).
TRAIN_SEED = 11
# Marks per image at most (as the reader: more is not a line of digits).
MAX_MARKS = 60


def features(hyps: list[Hypothesis]) -> np.ndarray:
    """float32 (N, N_FEATURES): width and height in line heights, cut left, cut right."""
    return np.array(
        [[h.width, h.height, float(h.cut_left), float(h.cut_right)] for h in hyps], np.float32
    ).reshape(-1, N_FEATURES)


def labelled_crops(item: NumberImage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reader's candidate crops of a composed image with their labels.

    Parameters
    ----------
    item : a composition made with ``owners=True``.

    Returns
    -------
    (crops float32 (N, 28, 28), features float32 (N, 4), labels int (N,)), labels
    being the digit or :data:`NOT_ONE_DIGIT`; ambiguous candidates are left out.
    """
    if item.owners is None:
        raise ValueError("labelled_crops needs a composition made with owners=True")
    page = line_ink(item.image)
    owners = item.owners
    if owners.shape != page.ink.shape:  # the page was reduced to working size
        h, w = page.ink.shape
        small = Image.fromarray(owners.astype(np.int32)).resize((w, h), Image.Resampling.NEAREST)
        owners = np.asarray(small)
    ink = np.where(page.ink > INK_LEVEL, page.ink, 0)
    n = len(item.text)
    totals = np.bincount(owners.ravel(), weights=ink.ravel(), minlength=n + 1)[: n + 1]
    _, hyps, _ = hypotheses(page.ink, max_marks=MAX_MARKS)
    keep, labels = [], []
    for i, h in enumerate(hyps):
        if h.mask is None:
            continue
        x0, y0, x1, y1 = h.box
        sub = owners[y0:y1, x0:x1][h.mask]
        weight = ink[y0:y1, x0:x1][h.mask]
        held = np.bincount(sub, weights=weight, minlength=n + 1)[: n + 1]
        if held.sum() <= 0:
            keep.append(i)
            labels.append(NOT_ONE_DIGIT)
            continue
        k = int(np.argmax(held[1:])) + 1
        share, cover = held[k] / held.sum(), held[k] / max(totals[k], 1e-9)
        if cover >= WHOLE and share >= PURE:
            keep.append(i)
            labels.append(int(item.text[k - 1]))
        elif cover < PART or share < MIXED:
            keep.append(i)
            labels.append(NOT_ONE_DIGIT)
    chosen = [hyps[i] for i in keep]
    crops = np.stack([h.image for h in chosen]) if chosen else np.zeros((0, 28, 28), np.float32)
    return crops, features(chosen), np.array(labels, int)


def build_verifier() -> Any:
    """The verifier network: crop (28, 28, 1) and features (4,) -> 11 softmax."""
    import keras

    crop = keras.Input((28, 28, 1), name="crop")
    extra = keras.Input((N_FEATURES,), name="features")
    x = keras.layers.Conv2D(32, 3, activation="relu")(crop)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(96, activation="relu")(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(16, activation="relu")(extra)])
    x = keras.layers.Dropout(0.2)(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    out = keras.layers.Dense(NOT_ONE_DIGIT + 1, activation="softmax")(x)
    return keras.Model([crop, extra], out, name="read_verifier")


class Verifier:
    """A trained verifier: the probability that candidates are not one whole digit."""

    def __init__(self, model: Any) -> None:
        import tensorflow as tf

        self.model = model
        fn = tf.function(
            lambda a, b: model([a, b], training=False),
            input_signature=[
                tf.TensorSpec((None, 28, 28, 1), tf.float32),
                tf.TensorSpec((None, N_FEATURES), tf.float32),
            ],
            reduce_retracing=True,
        )
        self._forward: Callable[[np.ndarray, np.ndarray], Any] = fn

    def probabilities(self, crops: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """float32 (N, 11) for MNIST-form crops (N, 28, 28) and their features (N, 4)."""
        if len(crops) == 0:
            return np.zeros((0, NOT_ONE_DIGIT + 1), np.float32)
        x = np.asarray(crops, np.float32)[..., np.newaxis]
        return np.asarray(self._forward(x, np.asarray(feats, np.float32)), np.float32)


def training_crops(
    dataset: Dataset, compositions: int, seed: int = TRAIN_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled candidate crops from compositions of the train split's training part."""
    x_tr, y_tr, _, _ = train_val_split(dataset.x_train, dataset.y_train, val_size=5000, seed=0)
    per_layout = max(1, compositions // len(LAYOUTS))
    crops, feats, labels = [], [], []
    for layout in LAYOUTS:
        for item in compose_set(x_tr, y_tr, layout, per_layout, seed=seed, owners=True):
            c, f, lab = labelled_crops(item)
            crops.append(c)
            feats.append(f)
            labels.append(lab)
    crops_all, feats_all, labels_all = (np.concatenate(a) for a in (crops, feats, labels))
    # Most candidates are not one digit; keep NEGATIVES_PER_DIGIT of them per digit crop.
    negative = np.flatnonzero(labels_all == NOT_ONE_DIGIT)
    room = NEGATIVES_PER_DIGIT * (len(labels_all) - len(negative))
    if len(negative) > room:
        drop = np.random.default_rng(seed).choice(negative, len(negative) - room, replace=False)
        keep = np.setdiff1d(np.arange(len(labels_all)), drop)
        crops_all, feats_all, labels_all = crops_all[keep], feats_all[keep], labels_all[keep]
    return crops_all, feats_all, labels_all


def train_verifier(
    run_path: str | os.PathLike[str],
    *,
    compositions: int = COMPOSITIONS,
    epochs: int = EPOCHS,
    dataset: Dataset | None = None,
    seed: int = 0,
) -> Verifier:
    """Train the verifier on compositions of MNIST training digits; save it in the run.

    Parameters
    ----------
    run_path : the run directory; the verifier goes to ``run_path/read_verifier.keras``.
    compositions : composed number images (spread over the layouts) to cut into crops.
    epochs : passes over the crops.
    dataset : MNIST (loaded when not given).
    seed : weight initialisation and shuffling.
    """
    import keras

    if compositions < len(LAYOUTS) or epochs < 1:
        raise ValueError(f"compositions={compositions}, epochs={epochs}: expected >= 5 and >= 1")
    start = time.perf_counter()
    data = dataset if dataset is not None else load_dataset("mnist")
    crops, feats, labels = training_crops(data, compositions)
    log.info(
        "read verifier: %d crops (%d not one digit) from %d compositions in %.0f s",
        len(labels),
        int((labels == NOT_ONE_DIGIT).sum()),
        compositions,
        time.perf_counter() - start,
    )
    keras.utils.set_random_seed(seed)
    model = build_verifier()
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    order = np.random.default_rng(seed).permutation(len(labels))
    model.fit(
        {"crop": crops[order, ..., np.newaxis], "features": feats[order]},
        labels[order],
        batch_size=256,
        epochs=epochs,
        verbose=0,
    )
    with atomic_path(Path(run_path) / VERIFIER_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    log.info("read verifier: trained in %.0f s", time.perf_counter() - start)
    return Verifier(model)


def load_verifier(run_path: str | os.PathLike[str] | None) -> Verifier | None:
    """The run's verifier, or None when the run has none (or there is no run)."""
    if run_path is None:
        return None
    path = Path(run_path) / VERIFIER_FILE
    if not path.is_file():
        return None
    from mnistlab.models import load_saved_model

    return Verifier(load_saved_model(path, hint=f"delete {path} to train it again"))


def load_or_train(run_path: str | os.PathLike[str]) -> Verifier:
    """The run's verifier, trained and cached first when the run has none."""
    found = load_verifier(run_path)
    if found is not None:
        return found
    log.warning("training the read verifier of %s once (about a minute)...", run_path)
    return train_verifier(run_path)
