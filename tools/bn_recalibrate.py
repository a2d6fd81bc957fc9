"""Validation-only check: recompute a run's BatchNorm statistics on clean images.

A model trained on augmented digits keeps BatchNorm moving averages of the
augmented (resampled, slightly blurred) images, and applies them to clean test
images. This script asks whether that mismatch costs accuracy: for each run it
recomputes every BatchNorm layer's mean and variance, layer by layer, over the
run's own *training* split without augmentation, and reports the run's
validation errors before and after. It never reads the test set and never
writes to the run.

    .venv/bin/python tools/bn_recalibrate.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 2500  # images per forward pass when collecting statistics


def recalibrate(model, images: np.ndarray) -> None:
    """Set each BatchNorm layer's moving mean/variance to the statistics of ``images``.

    Layers are done in order, each with the earlier ones already recalibrated,
    in inference mode: the statistics are those the layer sees at test time.
    """
    import keras

    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        upstream = keras.Model(model.inputs[0], layer.input)
        total = squares = 0.0
        count = 0
        for start in range(0, len(images), CHUNK):
            a = np.asarray(upstream(images[start : start + CHUNK], training=False), np.float64)
            a = a.reshape(-1, a.shape[-1])
            total, squares, count = total + a.sum(0), squares + (a * a).sum(0), count + len(a)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign((squares / count - mean * mean).astype(np.float32))


def errors(model, images: np.ndarray, labels: np.ndarray) -> int:
    probs = model.predict(images, batch_size=1000, verbose=0)
    return int((probs.argmax(1) != labels).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories")
    args = parser.parse_args(argv)

    from mnistlab.data import load_dataset, to_float, train_val_split
    from mnistlab.runs import RunDir, load_run_model

    before_total = after_total = 0
    datasets: dict[str, Any] = {}  # loaded once per dataset, not once per run
    for path in args.runs:
        run = RunDir.open(path)
        config = run.train_config()
        if config.dataset not in datasets:
            datasets[config.dataset] = load_dataset(config.dataset)
        data = datasets[config.dataset]
        x_tr, _, x_val, y_val = train_val_split(
            data.x_train, data.y_train, val_size=config.val_size, seed=config.seed
        )
        model = load_run_model(run)
        before = errors(model, to_float(x_val), y_val)
        recalibrate(model, to_float(x_tr))
        after = errors(model, to_float(x_val), y_val)
        before_total, after_total = before_total + before, after_total + after
        print(f"{run.name}: validation errors {before} -> {after} of {len(y_val)}", flush=True)
    print(f"all runs: {before_total} -> {after_total}")


if __name__ == "__main__":
    main()
