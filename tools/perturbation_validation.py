"""Validation-only score of runs under the training-time perturbations: how settings are chosen.

For each run, on its own validation digits (the held-out part of the training
split; the test set and the 15 reporting corruptions of ``mnistlab robustness``
are never used), this prints the clean accuracy and the accuracy with every
digit perturbed by each family of :mod:`mnistlab.train.perturbations` (a fixed
seed, so every run sees the same images), and their mean.

    .venv/bin/python tools/perturbation_validation.py RUN_DIR [RUN_DIR ...] [--limit N]
"""

from __future__ import annotations

import argparse

import numpy as np

SEED = (2026, 26)  # the perturbations' seed: the same images for every run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--limit", type=int, default=5000, help="validation digits per run")
    args = parser.parse_args()

    import tensorflow as tf

    from mnistlab.config import PERTURBATION_FAMILIES
    from mnistlab.data import load_dataset, train_val_split
    from mnistlab.models import load_saved_model
    from mnistlab.runs import RunDir
    from mnistlab.train.perturbations import PERTURBATIONS

    rows = []
    for path in args.runs:
        run = RunDir.open(path)
        config = run.config()
        data = load_dataset(config.dataset)
        # Every run is scored on the validation digits of seed 0's 5,000-image split, so
        # runs of different seeds or val_size compare on the same digits.
        _, _, x_val, y_val = train_val_split(data.x_train, data.y_train, val_size=5000, seed=0)
        x = (x_val[: args.limit].astype(np.float32) / 255)[..., None]
        y = y_val[: args.limit]
        model = load_saved_model(run.model_path)

        def accuracy(images: np.ndarray, model=model, y=y) -> float:
            probs = model.predict(images, batch_size=500, verbose=0)
            return float(np.mean(np.asarray(probs).argmax(1) == y))

        scores = {"clean": accuracy(x)}
        for i, name in enumerate(PERTURBATION_FAMILIES):
            seed = tf.constant([SEED[0], SEED[1] + i], tf.int64)
            scores[name] = accuracy(np.asarray(PERTURBATIONS[name](tf.constant(x), seed)))
        scores["mean"] = float(np.mean([scores[n] for n in PERTURBATION_FAMILIES]))
        rows.append((run.path.name, scores))

    names = ["clean", *PERTURBATION_FAMILIES, "mean"]
    print("run".ljust(28) + "".join(n[:9].rjust(10) for n in names))
    for label, scores in rows:
        print(label[:27].ljust(28) + "".join(f"{scores[n]:10.4f}" for n in names))


if __name__ == "__main__":
    main()
