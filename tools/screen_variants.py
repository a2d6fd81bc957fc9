"""Screen variants of the cnn-best recipe on validation accuracy, many seeds at once.

A 3-seed check of one recipe costs 45 minutes of a 2-core machine, and at
99.6% a 5,000-image validation set holds about 20 errors, so one run per
variant cannot tell variants apart. This script trains each job (a variant
and a seed) the way ``mnistlab train`` does (the registry's builders, Adam,
the one-cycle schedule, label smoothing, ``augment_batch``'s geometry) on a
fixed, stratified 10,000-image validation split of the training set that
every job shares, so that the validation outputs of different jobs can also
be averaged. The test set is never read: what it selects is selected on
validation only.

It needs no TensorFlow: any Keras 3 backend runs it, and a GPU makes a job
take about a minute (``KERAS_BACKEND=jax``). The screen behind cnn-best's
recipe ran 4 + 3 seeds of 20 variants as parallel processes on one GPU;
BENCHMARKS.md has the table and the commands. One job per process::

    KERAS_BACKEND=jax python tools/screen_variants.py --out a.jsonl base:0 base:1 aug06:0
    python tools/screen_variants.py --summary a.jsonl b.jsonl

``--list`` prints the variants; ``--smoke`` trains 2 epochs on 10,000 images
(a check of the set-up, not a result).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

BASE: dict[str, Any] = dict(epochs=30, batch=128, lr=2e-3, ls=0.1, augment=1.0, dropout=0.4)
"""The cnn-best recipe before the screen; every variant changes some of it."""


def split(y: np.ndarray, n_val: int = 10_000, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (training, validation): stratified, the same for every job."""
    rng = np.random.default_rng(seed)
    val = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        val.append(rng.permutation(idx)[: round(n_val * len(idx) / len(y))])
    mask = np.zeros(len(y), bool)
    mask[np.concatenate(val)] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _conv_bn(x: Any, filters: int, k: int = 3, stride: int = 1, pad: str = "valid") -> Any:
    from keras import layers

    x = layers.Conv2D(filters, k, strides=stride, padding=pad, use_bias=False)(x)
    return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))


def cnn_best(dropout: float) -> Any:
    from mnistlab.models import build_model

    return build_model("cnn-best", width=32, dense=256, dropout=dropout)


def same_padding(dropout: float) -> Any:
    """cnn-best with 'same' padding: 28 -> 28 -> 14 -> 14 -> 7 px."""
    import keras
    from keras import layers

    x = inputs = keras.Input((28, 28, 1))
    for filters in (32, 64):
        x = _conv_bn(_conv_bn(x, filters, pad="same"), filters, pad="same")
        x = layers.MaxPooling2D()(x)
    x = layers.Dropout(dropout)(layers.Flatten()(x))
    x = layers.Dropout(dropout)(layers.Dense(256, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def strided(dropout: float) -> Any:
    """Strided 5x5 convolutions instead of pooling (C. Deotte's Kaggle MNIST net):
    32C3-32C3-32C5S2-64C3-64C3-64C5S2-128C4, BatchNorm, dropout."""
    import keras
    from keras import layers

    x = inputs = keras.Input((28, 28, 1))
    for filters in (32, 64):
        x = _conv_bn(_conv_bn(x, filters), filters)
        x = layers.Dropout(dropout)(_conv_bn(x, filters, 5, 2, "same"))
    x = layers.Dropout(dropout)(layers.Flatten()(_conv_bn(x, 128, 4)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


# name -> (builder, changes to BASE)
VARIANTS: dict[str, tuple[Callable[[float], Any], dict[str, Any]]] = {
    "base": (cnn_best, {}),
    "aug06": (cnn_best, {"augment": 0.6}),
    "aug14": (cnn_best, {"augment": 1.4}),
    "a04": (cnn_best, {"augment": 0.4}),
    "a02": (cnn_best, {"augment": 0.2}),
    "ls0": (cnn_best, {"ls": 0.0}),
    "ep45": (cnn_best, {"epochs": 45}),
    "lr4": (cnn_best, {"lr": 4e-3}),
    "b256": (cnn_best, {"batch": 256, "lr": 3e-3}),
    "drop25": (cnn_best, {"dropout": 0.25}),
    "a06d25": (cnn_best, {"augment": 0.6, "dropout": 0.25}),
    "a06d10": (cnn_best, {"augment": 0.6, "dropout": 0.1}),
    "a03d25": (cnn_best, {"augment": 0.3, "dropout": 0.25}),
    "a06d25-ls0": (cnn_best, {"augment": 0.6, "dropout": 0.25, "ls": 0.0}),
    "a06d25-ep20": (cnn_best, {"augment": 0.6, "dropout": 0.25, "epochs": 20}),
    "a03d25-ep20": (cnn_best, {"augment": 0.3, "dropout": 0.25, "epochs": 20}),
    "same": (same_padding, {}),
    "same-a06d25": (same_padding, {"augment": 0.6, "dropout": 0.25}),
    "deotte": (strided, {}),
    "deo-a06": (strided, {"augment": 0.6}),
    "deo-a06-d25": (strided, {"augment": 0.6, "dropout": 0.25}),
}


def transforms(u: np.ndarray, strength: float) -> np.ndarray:
    """Affine transforms (N, 8) from uniform draws ``u`` (N, 4) in [-1, 1]: those of
    ``mnistlab.train.augment_batch``, made by the same function."""
    import keras

    from mnistlab.train import augment_transforms

    t = augment_transforms(keras.ops.convert_to_tensor(u, "float32"), strength, 28.0, 28.0)
    return keras.ops.convert_to_numpy(t)


def apply_transforms(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bilinear warp with black borders, in chunks of 5,000 images."""
    import keras

    chunks = [
        keras.ops.convert_to_numpy(
            keras.ops.image.affine_transform(
                x[i : i + 5000], t[i : i + 5000], "bilinear", "constant", fill_value=0
            )
        )
        for i in range(0, len(x), 5000)
    ]
    return np.concatenate(chunks)


def augment(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random rotation, shift and zoom of every image, with NumPy's randoms."""
    if strength <= 0:
        return x
    return apply_transforms(x, transforms(rng.uniform(-1, 1, (len(x), 4)), strength))


def run_job(job: str, data: tuple[np.ndarray, ...], smoke: bool = False) -> dict[str, Any]:
    """Train one ``variant:seed``; its validation accuracy and softmax outputs."""
    import keras

    name, seed_text = job.split(":")
    builder, changes = VARIANTS[name]
    cfg = {**BASE, **changes, **({"epochs": 2} if smoke else {})}
    seed = int(seed_text)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed + 1000)
    x_tr, y_tr, x_val, y_val = data
    model = builder(cfg["dropout"])
    total = cfg["epochs"] * math.ceil(len(x_tr) / cfg["batch"])
    warmup = int(0.3 * total)  # one-cycle, as mnistlab.train.compile_model
    lr = keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=cfg["lr"], warmup_steps=warmup
    )
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.CategoricalCrossentropy(label_smoothing=cfg["ls"]),
        metrics=["accuracy"],
    )
    onehot = np.eye(10, dtype="float32")[y_tr]
    start = time.time()
    curve = []  # (epoch, validation accuracy): every 5th epoch and the last five
    for epoch in range(cfg["epochs"]):
        x_aug = augment(x_tr, rng, cfg["augment"])
        model.fit(x_aug, onehot, batch_size=cfg["batch"], epochs=epoch + 1,
                  initial_epoch=epoch, shuffle=True, verbose=0)  # fmt: skip
        if (epoch + 1) % 5 == 0 or epoch >= cfg["epochs"] - 5:
            probs = model.predict(x_val, batch_size=2000, verbose=0)
            curve.append((epoch + 1, float((probs.argmax(1) == y_val).mean())))
    return {
        "job": job,
        "variant": name,
        "seed": seed,
        "cfg": cfg,
        "params": int(model.count_params()),
        "val": curve[-1][1],
        "curve": curve,
        "seconds": round(time.time() - start, 1),
        "probs": base64.b64encode(probs.astype("float16").tobytes()).decode(),
    }


def summary(paths: list[str]) -> None:
    """Mean validation accuracy per variant, best first."""
    by_variant: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        for line in open(path):
            row = json.loads(line)
            if "val" in row:
                by_variant[row["variant"]].append(row["val"])
    order = sorted(by_variant, key=lambda v: -np.mean(by_variant[v]))
    print(f"{'variant':<14} seeds  mean val   runs")
    for v in order:
        accs = by_variant[v]
        runs = " ".join(f"{a:.2%}" for a in accs)
        print(f"{v:<14} {len(accs):>5}  {np.mean(accs):.3%}   {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("jobs", nargs="*", help="variant:seed, e.g. base:0")
    parser.add_argument("--out", help="JSON lines file to append one result per job to")
    parser.add_argument("--list", action="store_true", help="list the variants")
    parser.add_argument("--summary", nargs="+", metavar="FILE", help="summarise result files")
    parser.add_argument("--smoke", action="store_true", help="2 epochs on 10,000 images")
    args = parser.parse_args()
    if args.list:
        for name, (builder, changes) in VARIANTS.items():
            print(f"{name:<14} {builder.__name__:<13} {changes}")
        return
    if args.summary:
        summary(args.summary)
        return
    bad = [j for j in args.jobs if j.split(":")[0] not in VARIANTS or ":" not in j]
    if bad or not args.jobs or not args.out:
        parser.error(f"give --out and jobs as variant:seed (see --list); bad: {bad}")

    from mnistlab.data import load_mnist, to_float

    ds = load_mnist()
    x, y = to_float(ds.x_train), ds.y_train.astype("int64")
    tr, val = split(y)
    if args.smoke:
        tr, val = tr[:10_000], val[:2_000]
    data = (x[tr], y[tr], x[val], y[val])
    for job in args.jobs:
        result = run_job(job, data, args.smoke)
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
        print(job, f"{result['val']:.4f}", f"{result['seconds']}s", flush=True)


if __name__ == "__main__":
    main()
