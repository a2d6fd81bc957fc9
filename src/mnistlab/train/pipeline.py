"""The input pipeline: shuffled, augmented ``tf.data`` batches, the same after a resume.

Augmentation (random rotation, shift and zoom) and the training-time
perturbations (:mod:`mnistlab.train.perturbations`: backgrounds, noise, blur,
strokes, ...) are part of the pipeline, seeded by ``(seed, global step)``, so they
run on parallel threads and repeat exactly.
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from mnistlab.config import TrainConfig
from mnistlab.data import to_float
from mnistlab.errors import MnistlabError
from mnistlab.models import NUM_CLASSES
from mnistlab.train.perturbations import perturb_batch
from mnistlab.train.seeds import derive_seed, epoch_order


def make_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    *,
    training: bool,
    initial_epoch: int = 0,
) -> Any:
    """A ``tf.data`` pipeline of (float32 (B, 28, 28, 1), one-hot (B, 10)) batches.

    Validation (``training=False``): the images in order, one pass.

    Training: epochs ``initial_epoch .. config.epochs - 1`` back to back, each a
    full pass in the order :func:`epoch_order` gives for ``(config.seed, epoch)``,
    the last batch of an epoch possibly smaller (so ``fit`` needs
    ``steps_per_epoch``). With ``config.augment > 0`` each batch is randomly
    rotated, shifted and zoomed by :func:`augment_batch`, seeded by
    ``(config.seed, global step)``, on parallel threads so both cores stay busy.
    With ``config.perturb > 0`` that share of each batch then gets one of
    ``config.perturbations`` (:func:`perturb_batch`), seeded the same way.

    Parameters
    ----------
    x : uint8 images (N, 28, 28).
    y : labels (N,).
    config : batch size, seed, epochs, augmentation strength.
    training : training (shuffled, augmented, many epochs) or validation.
    initial_epoch : the first epoch to produce (0-based), when resuming.

    Returns
    -------
    tf.data.Dataset
    """
    import tensorflow as tf

    images = to_float(x)
    targets = np.eye(NUM_CLASSES, dtype="float32")[y]  # one-hot so the loss can smooth labels
    if not training:
        ds = tf.data.Dataset.from_tensor_slices((images, targets)).batch(config.batch_size)
        return _without_autotune(ds.prefetch(2))

    if not 0 <= initial_epoch < config.epochs:
        raise MnistlabError(
            f"invalid initial_epoch={initial_epoch}: expected 0 to {config.epochs - 1}"
        )
    n, batch = len(x), config.batch_size
    steps_per_epoch = math.ceil(n / batch)
    epochs = np.arange(initial_epoch, config.epochs, dtype=np.int64)
    orders = np.stack([epoch_order(config.seed, int(e), n) for e in epochs])  # (E, N) int32
    images_t, targets_t = tf.constant(images), tf.constant(targets)
    augment_seed = tf.constant(derive_seed(config.seed, "augment"), tf.int64)
    perturb_seed = tf.constant(derive_seed(config.seed, "perturb"), tf.int64)
    # Plain TensorFlow ops, no Python control flow: autograph is not needed (and it
    # would re-read this file's source, which may have changed since it was imported).
    plain = tf.autograph.experimental.do_not_convert

    @plain
    def one_epoch(epoch: Any, order: Any) -> Any:
        # (global step, indices of one batch), for every batch of this epoch.
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch).enumerate()
        return batches.map(plain(lambda i, idx: (epoch * steps_per_epoch + i, idx)))

    @plain
    def gather(step: Any, idx: Any) -> Any:
        return step, tf.gather(images_t, idx), tf.gather(targets_t, idx)

    @plain
    def augment(step: Any, xb: Any, yb: Any) -> Any:
        if config.augment > 0:
            xb = augment_batch(xb, tf.stack([augment_seed, step]), config.augment)
        if config.perturb > 0:
            seed = tf.stack([perturb_seed, step])
            xb = perturb_batch(xb, seed, config.perturb, config.perturbations)
        return xb, yb

    workers = os.cpu_count() or 2
    ds = tf.data.Dataset.from_tensor_slices((epochs, orders)).flat_map(one_epoch)
    ds = ds.map(gather, num_parallel_calls=workers)
    if config.augment > 0 or config.perturb > 0:
        # Parallel, and the output order stays deterministic (tf.data's default).
        ds = ds.map(augment, num_parallel_calls=workers)
    else:
        ds = ds.map(plain(lambda step, xb, yb: (xb, yb)))
    return _without_autotune(ds.prefetch(workers))


def _without_autotune(ds: Any) -> Any:
    """Turn off tf.data's autotuning (the pipeline sets its parallelism itself).

    With autotuning on, ``fit`` often returned seconds after its last epoch,
    with the CPU idle: deleting the iterator waited for the autotuner's thread,
    which sleeps for doubling periods (10 ms, 20 ms, ... up to 60 s) and was not
    woken. ``fit`` then returned at 1.27, 2.55, 10.23, 20.47 ... s after the
    iterator started (the sums of those periods) instead of when training ended.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def augment_batch(images: Any, seed: Any, strength: float) -> Any:
    """Random rotation, shift and zoom of a batch; a pure function of ``seed``.

    At strength 1: up to +-18 degrees (0.05 of a turn), a shift of up to 10% of
    the side, a zoom of up to +-10%; digits must stay recognisable, so no flips.
    Empty borders are black (0), like MNIST's background.

    Parameters
    ----------
    images : float32 (B, H, W, C) tensor.
    seed : int64 (2,) tensor for TensorFlow's stateless random ops.
    strength : scales all three ranges.

    Returns
    -------
    float32 (B, H, W, C) tensor.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    u = tf.random.stateless_uniform([b, 4], seed=seed, minval=-1.0, maxval=1.0)
    return keras.ops.image.affine_transform(
        images,
        augment_transforms(u, strength, h, w),
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=0,
    )


def augment_transforms(u: Any, strength: float, height: Any, width: Any) -> Any:
    """The affine transforms of :func:`augment_batch`, from its uniform draws.

    Parameters
    ----------
    u : float32 (B, 4) in [-1, 1]: rotation, x shift, y shift, zoom.
    strength : scales all three ranges.
    height, width : image size in pixels.

    Returns
    -------
    float32 (B, 8) transforms for ``keras.ops.image.affine_transform`` (any
    Keras backend; ``tools/screen_variants.py`` uses it without TensorFlow).
    """
    ops = keras.ops
    angle = u[:, 0] * (0.05 * strength * 2 * math.pi)  # radians
    tx, ty = u[:, 1] * (0.1 * strength) * width, u[:, 2] * (0.1 * strength) * height  # pixels
    zoom = 1.0 + u[:, 3] * (0.1 * strength)  # > 1: the digit looks smaller
    # The transform maps each output pixel (x, y) to the input point it samples:
    # input = centre + zoom * R(angle) @ (output - centre - shift).
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = zoom * ops.cos(angle), zoom * ops.sin(angle)
    ox, oy = cx + tx, cy + ty
    zeros = ops.zeros_like(angle)
    return ops.stack(
        [cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy, zeros, zeros],
        axis=1,
    )
