"""Why does a model collapse on brightened or fogged digits? A validation-only measurement.

For each run, on its own validation digits (the held-out part of the training
split; the test set is never read), this script lifts the background by a
constant gray level ``b`` (``clip(x + b)``, MNIST-C's brightness is ``b = 0.5``)
or lowers the contrast (``c * x``), and reports the accuracy on arrays as fed
to the model, and again after a per-image min-max stretch (``(x - min) / (max -
min)``); with the class the model answers most often at ``b = 0.5``, and the
sums of the first convolution's kernels (the shift of each first-layer
pre-activation per unit of gray added: a network without input normalisation
sees a background lift as ``b * sum(kernel)`` in every feature map).

    .venv/bin/python tools/robustness_root_cause.py RUN_DIR [RUN_DIR ...] [--limit N]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
CONTRASTS = (1.0, 0.5, 0.25)


def stretch(x: np.ndarray) -> np.ndarray:
    """Per-image min-max stretch of float images (N, 28, 28) to [0, 1]."""
    low = x.min(axis=(1, 2), keepdims=True)
    high = x.max(axis=(1, 2), keepdims=True)
    return (x - low) / np.maximum(high - low, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--limit", type=int, default=2000, help="validation digits per run")
    args = parser.parse_args()

    from mnistlab.data import load_dataset, train_val_split
    from mnistlab.models import load_saved_model
    from mnistlab.runs import RunDir

    for path in args.runs:
        run = RunDir.open(path)
        config = run.config()
        data = load_dataset(config.dataset)
        _, _, x_val, y_val = train_val_split(
            data.x_train, data.y_train, val_size=config.val_size, seed=config.seed
        )
        x = x_val[: args.limit].astype(np.float32) / 255
        y = y_val[: args.limit]
        model = load_saved_model(run.model_path)

        def predict(images: np.ndarray, model=model) -> np.ndarray:
            return np.asarray(model.predict(images[..., None], batch_size=500, verbose=0)).argmax(1)

        print(
            f"\n{run.path.name} ({config.model}, label_smoothing {config.label_smoothing}, "
            f"augment {config.augment}, perturb {getattr(config, 'perturb', 0)}), "
            f"{len(y)} validation digits"
        )
        convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
        if convs:
            sums = np.asarray(convs[0].kernel).sum(axis=(0, 1, 2))  # (filters,)
            bias = np.asarray(convs[0].bias)
            print(
                f"first conv: {len(sums)} kernels, sum mean {sums.mean():+.2f}, "
                f"|sum| mean {np.abs(sums).mean():.2f}, positive {np.mean(sums > 0):.0%}; "
                f"bias mean {bias.mean():+.3f}"
            )
        print(f"{'change':<22}{'as is':>8}{'stretched':>11}   most frequent answer")
        for b in LEVELS:
            lifted = np.clip(x + b, 0, 1)
            answers = predict(lifted)
            top, count = Counter(answers.tolist()).most_common(1)[0]
            print(
                f"{f'background +{b:.1f}':<22}{np.mean(answers == y):>8.4f}"
                f"{np.mean(predict(stretch(lifted)) == y):>11.4f}"
                f"   {top} ({count / len(y):.0%})"
            )
        for c in CONTRASTS:
            dim = c * x
            print(
                f"{f'contrast x{c:.2f}':<22}{np.mean(predict(dim) == y):>8.4f}"
                f"{np.mean(predict(stretch(dim)) == y):>11.4f}"
            )
        # A gray background with the ink kept at full contrast above it (not saturated).
        for b in (0.25, 0.5):
            under = b + (1 - b) * x
            print(
                f"{f'gray {b:.2f} under ink':<22}{np.mean(predict(under) == y):>8.4f}"
                f"{np.mean(predict(stretch(under)) == y):>11.4f}"
            )


if __name__ == "__main__":
    main()
