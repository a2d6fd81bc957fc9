"""Time the training step of convnet variants: where an epoch's seconds go.

``mnistlab bench`` measures whole recipes; this script answers the question
that shapes a fast model: which layer costs what on this machine. It times
``train_on_batch`` (forward, backward, Adam update; no input pipeline, no
validation) for a network and for variants with one part changed, and prints
milliseconds per step and the implied seconds per epoch of 55,000 images.

The first table is the ``cnn-fast`` family (batch 256), the second the
``cnn-best`` family (batch 128, with and without BatchNorm). Run it on an idle
machine, from the repository root::

    .venv/bin/python tools/profile_steps.py
"""

from __future__ import annotations

import time

import numpy as np

IMAGES_PER_EPOCH = 55_000


def step_seconds(model, batch: int, steps: int = 40) -> float:
    """Mean seconds of one training step on random data (after 5 warm-up steps)."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, batch), 10)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    for _ in range(5):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def convnet(stages, dense: int = 128, batchnorm: str = "", separable: bool = False):
    """3x3 'valid' convolutions per stage, 2x2 max-pooling after each, Dense, softmax.

    ``batchnorm``: "" (none), "keras" (Keras's BatchNormalization) or "fused"
    (``mnistlab.models.fused_batchnorm_class``, which cnn-best uses).
    """
    import keras
    from keras import layers

    from mnistlab.models import fused_batchnorm_class

    norm = {"keras": layers.BatchNormalization, "fused": fused_batchnorm_class()}.get(batchnorm)

    x = inputs = keras.Input((28, 28, 1))
    for i, stage in enumerate(stages):
        for filters in stage:
            conv = layers.SeparableConv2D if separable and i > 0 else layers.Conv2D
            x = conv(filters, 3, use_bias=not batchnorm)(x)
            if norm is not None:
                x = norm(momentum=0.9)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    if dense:
        x = layers.Dense(dense, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


VARIANTS = {
    256: {
        "Keras example's convs 32-64 + Dense 128": dict(stages=((32,), (64,))),
        "  without the second conv": dict(stages=((32,), ())),
        "  second conv 32 filters": dict(stages=((32,), (32,))),
        "  first conv 16 filters (cnn-fast)": dict(stages=((16,), (64,))),
        "  both narrower, 24-48": dict(stages=((24,), (48,))),
        "  separable second conv": dict(stages=((32,), (64,)), separable=True),
        "  without Dense 128": dict(stages=((32,), (64,)), dense=0),
    },
    128: {
        "cnn-best net without BatchNorm": dict(stages=((32, 32), (64, 64)), dense=256),
        "  with Keras's BatchNorm": dict(stages=((32, 32), (64, 64)), dense=256, batchnorm="keras"),
        "  with fused BatchNorm (cnn-best)": dict(
            stages=((32, 32), (64, 64)), dense=256, batchnorm="fused"
        ),
        "  width 40": dict(stages=((40, 40), (80, 80)), dense=256),
        "  width 48": dict(stages=((48, 48), (96, 96)), dense=256),
    },
}


def main() -> None:
    import keras

    keras.utils.set_random_seed(0)
    for batch, variants in VARIANTS.items():
        print(f"\nbatch {batch}: ms per step, s per epoch of {IMAGES_PER_EPOCH:,} images")
        for name, kwargs in variants.items():
            seconds = step_seconds(convnet(**kwargs), batch)
            epoch = seconds * IMAGES_PER_EPOCH / batch
            print(f"  {name:42s} {seconds * 1000:6.1f} ms  {epoch:5.2f} s", flush=True)


if __name__ == "__main__":
    main()
