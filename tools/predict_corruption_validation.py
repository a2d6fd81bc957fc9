"""Validation digits through the whole predict pipeline, perturbed: checks preprocessing.

Each validation digit (the held-out part of the training split, seed 0's 5,000; never
the test set) is perturbed, written as a 28x28 PNG and read back through
``mnistlab.predict``'s preprocessing, then classified by the run's model. Prints the
accuracy per perturbation and the mean, one JSON line.

``--set training`` (default): the ten training perturbation families
(:mod:`mnistlab.train.perturbations`), the set preprocessing settings are chosen on.
``--set mnist-c``: the 15 MNIST-C corruption functions of ``mnistlab robustness``,
applied to the *validation* digits with another seed than the benchmark's, as a check.
``--full-field-extent N`` overrides :data:`mnistlab.predict.preprocess.FULL_FIELD_EXTENT`
(99: every 28x28 image is cropped again, the behaviour before it existed).

    .venv/bin/python tools/predict_corruption_validation.py RUN [--limit 1000]
        [--set training|mnist-c] [--full-field-extent N]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

SEED = (2026, 26)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--limit", type=int, default=1000, help="validation digits")
    parser.add_argument("--set", choices=("training", "mnist-c"), default="training")
    parser.add_argument("--full-field-extent", type=int, default=None)
    args = parser.parse_args()

    import tensorflow as tf

    from mnistlab.config import PERTURBATION_FAMILIES
    from mnistlab.data import load_dataset, train_val_split
    from mnistlab.predict import load_predictor, preprocess
    from mnistlab.robustness.benchmark import _through_predict
    from mnistlab.robustness.corruptions import corrupt, corruption_names
    from mnistlab.train.perturbations import PERTURBATIONS

    if args.full_field_extent is not None:
        preprocess.FULL_FIELD_EXTENT = args.full_field_extent
    predictor = load_predictor(args.run)
    data = load_dataset("mnist")
    _, _, x_val, y_val = train_val_split(data.x_train, data.y_train, val_size=5000, seed=0)
    x, y = x_val[: args.limit], y_val[: args.limit]

    def accuracy(images: np.ndarray) -> float:
        correct, _ = _through_predict(predictor, images, y)
        return round(float(correct.mean()), 4)

    scores = {"clean": accuracy(x)}
    if args.set == "training":
        floats = (x.astype(np.float32) / 255)[..., None]
        for i, name in enumerate(PERTURBATION_FAMILIES):
            seed = tf.constant([SEED[0], SEED[1] + i], tf.int64)
            out = np.asarray(PERTURBATIONS[name](tf.constant(floats), seed))[..., 0]
            scores[name] = accuracy(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8))
        names = list(PERTURBATION_FAMILIES)
    else:
        names = list(corruption_names())
        for name in names:
            scores[name] = accuracy(corrupt(x, name, seed=1))
    scores["mean"] = round(float(np.mean([scores[n] for n in names])), 4)
    print(json.dumps(scores))


if __name__ == "__main__":
    main()
