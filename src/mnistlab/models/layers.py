"""This package's own Keras layers: a fused batch normalisation, a deskewing layer and a
per-image contrast stretch.

They are defined (and registered with Keras's serialisation) on first use, so that
importing the registry needs no Keras; :func:`mnistlab.models.saving.load_saved_model`
registers them before reading a file.
"""

from __future__ import annotations

import functools
from typing import Any


def deskew_images(images: Any) -> Any:
    """Shear each digit so that its main axis stands upright (the classic MNIST deskewing).

    The shear is ``alpha = cov(row, col) / var(row)`` of the pixel intensities:
    every row moves sideways by ``alpha * (row - mean row)`` pixels, sampled
    with linear interpolation, black beyond the edges; rows stay where they are,
    so the digit's centre of mass does not move. The interpolation is written as
    a product with a tent-shaped weight tensor (no gathers, no image-transform
    op), so a model that starts with it still exports to ONNX and TFLite.

    Parameters
    ----------
    images : float32 (B, H, W, 1) tensor, symbolic or not (``keras.ops``, any backend).

    Returns
    -------
    float32 (B, H, W, 1) tensor. A blank image comes back unchanged.
    """
    import keras

    ops = keras.ops
    h, w = images.shape[1], images.shape[2]
    img = images[..., 0]
    total = ops.maximum(ops.sum(img, axis=(1, 2)), 1e-6)
    rows = ops.reshape(ops.arange(h, dtype="float32"), (1, -1, 1))
    cols = ops.arange(w, dtype="float32")
    mean_r = ops.sum(img * rows, axis=(1, 2)) / total
    mean_c = ops.sum(img * cols, axis=(1, 2)) / total
    d_r = rows - ops.reshape(mean_r, (-1, 1, 1))  # (B, H, 1)
    d_c = cols - ops.reshape(mean_c, (-1, 1, 1))  # (B, 1, W)
    var_r = ops.sum(img * d_r * d_r, axis=(1, 2)) / total
    alpha = ops.sum(img * d_r * d_c, axis=(1, 2)) / total / ops.maximum(var_r, 1e-6)
    # Output pixel (row, x) samples the input row at x + alpha * (row - mean row).
    source = cols + ops.reshape(alpha, (-1, 1, 1)) * d_r  # (B, H, W)
    weights = ops.relu(1.0 - ops.abs(source[..., None] - cols))  # (B, H, W, W input columns)
    return ops.sum(weights * img[:, :, None, :], axis=-1)[..., None]


def stretch_images(images: Any) -> Any:
    """Stretch each image's gray levels to fill [0, 1]: ``(x - min) / (max - min)``.

    A gray background (a brightened or fogged photo, a gray scan) becomes black
    again and faint ink full white, so the network sees the contrast of the
    digit, not the paper's brightness. MNIST digits already span 0..1 and pass
    unchanged. ``tools/robustness_root_cause.py`` measured why: the old ``cnn``
    fell from 99.5% to 18% on validation digits with 0.5 gray added, and back to
    99.3% once stretched.

    Parameters
    ----------
    images : float32 (B, H, W, C) tensor, symbolic or not (``keras.ops``, any backend).

    Returns
    -------
    float32 (B, H, W, C) tensor in [0, 1]; a flat (blank) image becomes all 0.
    """
    import keras

    ops = keras.ops
    low = ops.min(images, axis=(1, 2, 3), keepdims=True)
    high = ops.max(images, axis=(1, 2, 3), keepdims=True)
    return (images - low) / ops.maximum(high - low, 1e-3)


@functools.cache
def custom_layers() -> dict[str, type]:
    """This package's own Keras layers, defined (and registered with Keras's
    serialisation) on first use, so that importing the registry needs no Keras."""
    import keras

    @keras.saving.register_keras_serializable(package="mnistlab")
    class FusedBatchNormalization(keras.layers.BatchNormalization):
        def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
            if not (
                training
                and self.trainable
                and mask is None
                and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4
                and self.axis in (-1, 3)
                and self.center
                and self.scale
                and not self.renorm
                and not self.synchronized
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
            ):
                return super().call(inputs, training=training, mask=mask)
            import tensorflow as tf

            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=self.gamma,
                offset=self.beta,
                mean=tf.zeros([0]),
                variance=tf.zeros([0]),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel returns the unbiased variance; Keras averages the biased one.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
            return y

    @keras.saving.register_keras_serializable(package="mnistlab")
    class Deskew(keras.layers.Layer):
        """:func:`deskew_images` as a layer without weights, in training and inference alike."""

        def call(self, inputs: Any) -> Any:
            return deskew_images(inputs)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

    @keras.saving.register_keras_serializable(package="mnistlab")
    class ContrastStretch(keras.layers.Layer):
        """:func:`stretch_images` as a layer without weights, in training and inference alike."""

        def call(self, inputs: Any) -> Any:
            return stretch_images(inputs)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

    return {
        "FusedBatchNormalization": FusedBatchNormalization,
        "Deskew": Deskew,
        "ContrastStretch": ContrastStretch,
    }


def fused_batchnorm_class() -> type:
    """``keras.layers.BatchNormalization`` whose training step uses TensorFlow's fused kernel.

    Keras 3 computes a training-mode batch normalisation from separate moment,
    subtract and scale operations. On the TensorFlow backend this subclass runs
    the same computation as one ``FusedBatchNormV3`` kernel (and its fused
    gradient): the same batch statistics, the same moving-average update with
    the layer's momentum, the same output. Measured on 2 cores, a ``cnn-best``
    training epoch (pipeline and validation included) took 26.2 s against
    35.7 s with the plain layer. Inference, other backends and settings the fused kernel does
    not cover (masks, other axes, renorm, non-float32 inputs) take the parent
    class's path, so saved models load and export like any BatchNormalization.
    """
    return custom_layers()["FusedBatchNormalization"]


def deskew_class() -> type:
    """The Keras layer that applies :func:`deskew_images` (``cnn-best-deskew``'s first layer)."""
    return custom_layers()["Deskew"]


def stretch_class() -> type:
    """The Keras layer that applies :func:`stretch_images` (``cnn``'s first layer)."""
    return custom_layers()["ContrastStretch"]
