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
take about a minute (``KERAS_BACKEND=jax``). Two screens chose cnn-best's
recipe: 20 variants of the earlier recipe (3-4 seeds each), then 12 variants of
the first screen's choice (``CUR``; 4-6 seeds each), each run as parallel
processes on one GPU. A third screen (``EP30``'s variants, 6-14 seeds each)
looked for ensemble members that err on other digits and found deskewed inputs
(``cnn-best-deskew``). BENCHMARKS.md has the tables and the commands. Besides
the plain validation accuracy, every job records that of a test-time
augmentation (the mean output over the image and its four one-pixel shifts).
One process runs its jobs one after the other::

    KERAS_BACKEND=jax python tools/screen_variants.py --out a.jsonl base:0 base:1 aug06:0
    python tools/screen_variants.py --summary a.jsonl b.jsonl

``--list`` prints the variants; ``--smoke`` trains 2 epochs on 10,000 images
(a check of the set-up, not a result). It imports the installed ``mnistlab``
(``make dev`` or ``pip install -e .``); ``tools/ensemble_screen.py`` imports its
shared split from here.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

BASE: dict[str, Any] = dict(epochs=30, batch=128, lr=2e-3, ls=0.1, augment=1.0, dropout=0.4)
"""The cnn-best recipe before the screen; every variant changes some of it."""

CUR: dict[str, Any] = dict(augment=0.3, dropout=0.25, epochs=20)
"""What the first screen chose (a03d25-ep20); the second screen's variants change it."""

EP30: dict[str, Any] = {**CUR, "epochs": 30}
"""What the second screen chose (``ep30``): cnn-best's recipe; the third screen changes it."""


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


def cnn_best(cfg: dict[str, Any]) -> Any:
    from mnistlab.models import build_model

    return build_model(
        "cnn-best", width=cfg.get("width", 32), dense=cfg.get("dense", 256), dropout=cfg["dropout"]
    )


def same_padding(cfg: dict[str, Any]) -> Any:
    """cnn-best with 'same' padding: 28 -> 28 -> 14 -> 14 -> 7 px."""
    import keras
    from keras import layers

    dropout = cfg["dropout"]
    x = inputs = keras.Input((28, 28, 1))
    for filters in (32, 64):
        x = _conv_bn(_conv_bn(x, filters, pad="same"), filters, pad="same")
        x = layers.MaxPooling2D()(x)
    x = layers.Dropout(dropout)(layers.Flatten()(x))
    x = layers.Dropout(dropout)(layers.Dense(256, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def strided(cfg: dict[str, Any]) -> Any:
    """Strided 5x5 convolutions instead of pooling (C. Deotte's Kaggle MNIST net):
    32C3-32C3-32C5S2-64C3-64C3-64C5S2-128C4, BatchNorm, dropout."""
    import keras
    from keras import layers

    dropout = cfg["dropout"]
    x = inputs = keras.Input((28, 28, 1))
    for filters in (32, 64):
        x = _conv_bn(_conv_bn(x, filters), filters)
        x = layers.Dropout(dropout)(_conv_bn(x, filters, 5, 2, "same"))
    x = layers.Dropout(dropout)(layers.Flatten()(_conv_bn(x, 128, 4)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


# name -> (builder, changes to BASE)
VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]] = {
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
    # Second screen, around the recipe the first one chose (CUR).
    "cur": (cnn_best, CUR),
    "el20": (cnn_best, {**CUR, "elastic": 20.0}),
    "el34": (cnn_best, {**CUR, "elastic": 34.0}),
    "el34-a0": (cnn_best, {**CUR, "elastic": 34.0, "augment": 0.0}),
    "el34-ep30": (cnn_best, {**CUR, "elastic": 34.0, "epochs": 30}),
    "ep30": (cnn_best, {**CUR, "epochs": 30}),
    "w40": (cnn_best, {**CUR, "width": 40}),
    "w40-el34": (cnn_best, {**CUR, "width": 40, "elastic": 34.0}),
    "d512": (cnn_best, {**CUR, "dense": 512}),
    "ann8": (cnn_best, {**CUR, "augment": 0.8, "anneal": True}),
    "ann8-el34": (cnn_best, {**CUR, "augment": 0.8, "anneal": True, "elastic": 34.0}),
    "a06d10-ep20": (cnn_best, {"augment": 0.6, "dropout": 0.1, "epochs": 20}),
    # Third screen, around cnn-best's recipe (EP30): weight decay, more augmentation
    # with less dropout, and deskewed inputs (a different view of every digit, which
    # may make different errors and so help an ensemble).
    "a06d10-ep30": (cnn_best, {"augment": 0.6, "dropout": 0.1, "epochs": 30}),
    "wd05": (cnn_best, {**EP30, "wd": 0.05}),
    "dsk": (cnn_best, {**EP30, "deskew": "after"}),
    "dska": (cnn_best, {**EP30, "deskew": "before"}),
    # Width normalisation (Ciresan et al. 2012): each digit's ink stretched or squeezed
    # sideways to the same width, another view of it for an ensemble.
    "wn16": (cnn_best, {**EP30, "widthnorm": 16}),
    "wn12": (cnn_best, {**EP30, "widthnorm": 12}),
    # Fourth screen: is more training data worth having (45,000 of the 50,000 training
    # images against all of them: what training on all 60,000 instead of 55,000 would
    # gain, roughly), and smaller batches.
    "n45": (cnn_best, {**EP30, "n_train": 45_000}),
    "b64": (cnn_best, {**EP30, "batch": 64, "lr": 1.4e-3}),
}


def transforms(u: np.ndarray, strength: float) -> np.ndarray:
    """Affine transforms (N, 8) from uniform draws ``u`` (N, 4) in [-1, 1]: those of
    ``mnistlab.train.augment_batch``, made by the same function."""
    import keras

    from mnistlab.train import augment_transforms

    t = augment_transforms(keras.ops.convert_to_tensor(u, "float32"), strength, 28.0, 28.0)
    return keras.ops.convert_to_numpy(t)


def in_chunks(fn: Callable[..., Any], *arrays: np.ndarray, size: int = 5000) -> np.ndarray:
    """``fn`` (keras.ops) applied to 5,000 images at a time, as one NumPy array."""
    import keras

    n = len(arrays[0])
    parts = [fn(*(a[i : i + size] for a in arrays)) for i in range(0, n, size)]
    return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts])


def apply_transforms(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bilinear warp with black borders, in chunks of 5,000 images."""
    import keras

    return in_chunks(
        lambda xs, ts: keras.ops.image.affine_transform(
            xs, ts, "bilinear", "constant", fill_value=0
        ),
        x,
        t,
    )


def elastic_warp(images: Any, noise: Any, alpha: float, sigma: float = 4.0) -> Any:
    """Elastic distortion (Simard et al. 2003): a smooth random displacement field.

    Each pixel samples the input ``alpha * (G_sigma * noise)`` pixels away, where
    ``G_sigma * noise`` is the uniform noise smoothed by a Gaussian of ``sigma``
    pixels (zero beyond the border, as ``scipy.ndimage.gaussian_filter`` with
    ``mode="constant"``); bilinear, black outside the image. With sigma 4 the
    displacement's standard deviation is about ``alpha / 25`` pixels.

    Parameters
    ----------
    images : float32 (B, H, W, 1) tensor.
    noise : float32 (B, H, W, 2) uniform draws in [-1, 1] (y and x displacement).
    alpha : scale of the displacement; 0 returns ``images``.
    sigma : smoothness, in pixels.

    Returns
    -------
    float32 (B, H, W, 1) tensor (keras.ops: any Keras backend).
    """
    import keras

    if alpha <= 0:
        return images
    ops = keras.ops
    radius = int(3 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype("float32")
    along_y = np.tile(taps[:, None, None, None], (1, 1, 2, 1))
    along_x = np.tile(taps[None, :, None, None], (1, 1, 2, 1))
    field = ops.depthwise_conv(noise, along_y, padding="same")
    field = alpha * ops.depthwise_conv(field, along_x, padding="same")
    # Bilinear sampling by hand (gathers from the flattened batch), written so that it
    # also runs inside a tf.data pipeline, whose batch size is not static.
    shape = ops.shape(images)
    h, w = images.shape[1], images.shape[2]
    flat = ops.reshape(images, (-1,))
    first = ops.reshape(ops.arange(shape[0], dtype="int32") * (h * w), (-1, 1, 1))
    y = ops.reshape(ops.arange(h, dtype="float32"), (1, -1, 1)) + field[..., 0]
    x = ops.reshape(ops.arange(w, dtype="float32"), (1, 1, -1)) + field[..., 1]
    y0, x0 = ops.floor(y), ops.floor(x)
    out = ops.zeros_like(y)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yi, xi = y0 + dy, x0 + dx
        weight = (1 - ops.abs(y - yi)) * (1 - ops.abs(x - xi))
        inside = (yi >= 0) & (yi <= h - 1) & (xi >= 0) & (xi <= w - 1)
        yc = ops.cast(ops.clip(yi, 0, h - 1), "int32")
        xc = ops.cast(ops.clip(xi, 0, w - 1), "int32")
        pixel = ops.take(flat, first + yc * w + xc)
        out = out + ops.where(inside, weight * pixel, 0.0)
    return out[..., None]


def augment(
    x: np.ndarray, rng: np.random.Generator, strength: float, elastic: float = 0.0
) -> np.ndarray:
    """Random rotation, shift and zoom of every image, then an elastic distortion
    (:func:`elastic_warp`), with NumPy's randoms."""
    if strength > 0:
        x = apply_transforms(x, transforms(rng.uniform(-1, 1, (len(x), 4)), strength))
    if elastic > 0:
        noise = rng.uniform(-1, 1, (*x.shape[:3], 2)).astype("float32")
        x = in_chunks(lambda xs, ns: elastic_warp(xs, ns, elastic), x, noise)
    return x


def width_normalize(images: Any, width: float) -> Any:
    """Each digit resampled sideways about its ink's centre so that the ink (pixels
    above 0.1) spans ``width`` columns; rows stay put, linear interpolation (an
    area filter where it squeezes), black beyond the edges, blank images unchanged."""
    import keras

    ops = keras.ops
    w = images.shape[2]
    img = images[..., 0]
    cols = ops.arange(w, dtype="float32")
    inked = ops.max(ops.cast(img > 0.1, "float32"), axis=1) > 0  # (B, W)
    first = ops.min(ops.where(inked, cols, float(w)), axis=1)
    last = ops.max(ops.where(inked, cols, -1.0), axis=1)
    blank = last < first
    scale = ops.where(blank, 1.0, ops.clip(width / ops.maximum(last - first + 1, 1.0), 0.25, 4.0))
    centre = ops.where(blank, (w - 1) / 2, (first + last) / 2)
    source = ops.reshape(centre, (-1, 1)) + (cols - (w - 1) / 2) / ops.reshape(scale, (-1, 1))
    step = ops.reshape(ops.minimum(scale, 1.0), (-1, 1, 1))  # < 1: squeezing, so average
    weights = step * ops.relu(1.0 - step * ops.abs(source[..., None] - cols))  # (B, W, W)
    return ops.einsum("bxk,bhk->bhx", weights, img)[..., None]


def shifted(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Images moved by (dx, dy) pixels, black where they move in from."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.roll(padded, (dy, dx), axis=(1, 2))[:, 1:-1, 1:-1]


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
    if cfg.get("n_train"):  # a random subset of the training images, one per seed
        keep = np.random.default_rng(seed + 2000).permutation(len(x_tr))[: cfg["n_train"]]
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    model = builder(cfg)
    total = cfg["epochs"] * math.ceil(len(x_tr) / cfg["batch"])
    warmup = int(0.3 * total)  # one-cycle, as mnistlab.train.compile_model
    lr = keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=cfg["lr"], warmup_steps=warmup
    )
    if cfg.get("wd"):
        optimizer = keras.optimizers.AdamW(lr, weight_decay=cfg["wd"])
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    else:
        optimizer = keras.optimizers.Adam(lr)
    model.compile(
        optimizer,
        keras.losses.CategoricalCrossentropy(label_smoothing=cfg["ls"]),
        metrics=["accuracy"],
    )
    onehot = np.eye(10, dtype="float32")[y_tr]
    if cfg.get("widthnorm"):
        x_val = in_chunks(lambda xs: width_normalize(xs, cfg["widthnorm"]), x_val)
    if cfg.get("deskew"):
        # cnn-best-deskew's first layer. The third screen ran an equivalent
        # keras.ops.image.affine_transform shear (within 4e-6 on 3,000 training images).
        from mnistlab.models import deskew_images as deskew

        x_val = in_chunks(deskew, x_val)
        if cfg["deskew"] == "before":  # deskew, then augment
            x_tr = in_chunks(deskew, x_tr)
    start = time.time()
    curve = []  # (epoch, validation accuracy): every 5th epoch and the last five
    for epoch in range(cfg["epochs"]):
        strength = cfg["augment"] * ((1 - epoch / cfg["epochs"]) if cfg.get("anneal") else 1)
        x_aug = augment(x_tr, rng, strength, cfg.get("elastic", 0.0))
        if cfg.get("deskew") == "after":  # augment, then deskew (as a layer in the model would)
            x_aug = in_chunks(deskew, x_aug)
        if cfg.get("widthnorm"):  # after the augmentation, as a layer in the model would
            x_aug = in_chunks(lambda xs: width_normalize(xs, cfg["widthnorm"]), x_aug)
        model.fit(x_aug, onehot, batch_size=cfg["batch"], epochs=epoch + 1,
                  initial_epoch=epoch, shuffle=True, verbose=0)  # fmt: skip
        if (epoch + 1) % 5 == 0 or epoch >= cfg["epochs"] - 5:
            probs = model.predict(x_val, batch_size=2000, verbose=0)
            curve.append((epoch + 1, float((probs.argmax(1) == y_val).mean())))
    # Test-time augmentation, on validation: the mean of the outputs for the image
    # and for it moved by one pixel left, right, up and down.
    moves = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    tta = (probs + sum(model.predict(shifted(x_val, dx, dy), 2000, 0) for dx, dy in moves)) / 5
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
        "val_tta": float((tta.argmax(1) == y_val).mean()),
        "probs_tta": base64.b64encode(tta.astype("float16").tobytes()).decode(),
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
        print(
            job,
            f"{result['val']:.4f}",
            f"tta {result['val_tta']:.4f}",
            f"{result['seconds']}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
