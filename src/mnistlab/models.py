"""The model registry: every model is one function, registered by name.

``build_model("cnn")`` returns an uncompiled Keras model that maps a batch of
images, float32 (N, 28, 28, 1) in [0, 1], to softmax probabilities (N, 10).
Each registration also names the training recipe that suits the model (the
defaults of :class:`mnistlab.config.TrainConfig` for it), so the CLI, the
tuner and the benchmark never switch on model names themselves.

Adding a model is adding one decorated function here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError

if TYPE_CHECKING:  # keras is imported lazily so `mnistlab models` stays fast
    import keras

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, its settings and its training recipe."""

    name: str
    build: Callable[..., keras.Model]
    description: str
    recipe: Mapping[str, Any]

    @property
    def defaults(self) -> dict[str, Any]:
        """The model's own settings and their defaults (from the builder's signature)."""
        sig = inspect.signature(self.build)
        return {n: p.default for n, p in sig.parameters.items()}

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``params`` over the defaults, coercing strings like the CLI's ``512,256``."""
        defaults = self.defaults
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            known = ", ".join(f"{k}={_fmt(v)}" for k, v in defaults.items()) or "none"
            raise MnistlabError(
                f"model {self.name!r} has no setting {', '.join(unknown)}; its settings: {known}"
            )
        merged = dict(defaults)
        for key, value in params.items():
            merged[key] = _coerce(self.name, key, value, defaults[key])
        return merged


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, description: str, **recipe: Any) -> Callable:
    """Decorator: register a builder under ``name`` with its training recipe."""

    def deco(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, fn, description, recipe)
        return fn

    return deco


def list_models() -> list[ModelSpec]:
    """All registered models, in registration order."""
    return list(_REGISTRY.values())


def get_model_spec(name: str) -> ModelSpec:
    """Look up a model by name; unknown names list the accepted ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MnistlabError(
            f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}"
        ) from None


def build_model(name: str, **params: Any) -> keras.Model:
    """Build a registered model.

    Parameters
    ----------
    name : registered model name (``mnistlab.list_models()``).
    **params : the model's own settings; missing ones take the defaults.

    Returns
    -------
    keras.Model mapping float32 (N, 28, 28, 1) in [0, 1] to softmax (N, 10).

    Examples
    --------
    >>> model = build_model("fnn", hidden=(256, 128))
    >>> model.output_shape
    (None, 10)
    """
    spec = get_model_spec(name)
    return spec.build(**spec.check_params(params))


def count_params(name: str, **params: Any) -> int:
    """Number of weights of a registered model with the given settings."""
    return int(build_model(name, **params).count_params())


# -- the models ----------------------------------------------------------------


@register(
    "fnn",
    "the seed's feed-forward net: Flatten, Dense-ReLU x2, Dropout, softmax",
    epochs=40,
    batch_size=128,
    learning_rate=1e-3,
    schedule="cosine",
    patience=8,
)
def fnn(hidden: tuple[int, ...] = (512, 256), dropout: float = 0.3) -> keras.Model:
    """Flatten -> Dense(ReLU) -> Dense(ReLU) -> Dropout -> Dense(10, softmax).

    The seed used 128-64 with dropout 0.2 (97.9%); wider layers with a cosine
    learning-rate decay do better at almost no cost on CPU.
    """
    import keras
    from keras import layers

    if len(hidden) != 2 or min(hidden) < 1:
        raise MnistlabError(f"fnn needs two positive hidden widths, got hidden={_fmt(hidden)}")
    _check_rate("fnn", dropout)
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(hidden[0], activation="relu"),
            layers.Dense(hidden[1], activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="fnn",
    )


def _conv_bn(x: Any, filters: int, kernel: int = 3) -> Any:
    # Conv without bias (BatchNorm's beta replaces it), then BN and ReLU. BN momentum
    # 0.9, not Keras's 0.99: short runs take only a few hundred steps, and with 0.99
    # the moving statistics still lag the weights then, wrecking inference accuracy.
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x)


@register(
    "cnn-fast",
    "small BatchNorm convnet trained with a one-cycle schedule: 99% in seconds",
    epochs=3,
    batch_size=256,
    learning_rate=5e-3,
    schedule="onecycle",
    patience=3,
    label_smoothing=0.1,
)
def cnn_fast(width: int = 24, dropout: float = 0.0) -> keras.Model:
    """Conv(w)-BN-ReLU, pool, Conv(2w)-BN-ReLU, pool, Conv(4w)-BN-ReLU, GAP, Dense(10).

    Shapes: 28x28xw -> 14x14 -> 14x14x2w -> 7x7 -> 7x7x4w -> 4w -> 10.
    Small and shallow so one epoch is a few seconds on two cores.
    """
    import keras
    from keras import layers

    _check_rate("cnn-fast", dropout)
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn(inputs, width)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 2 * width)
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 4 * width)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn_fast")


@register(
    "cnn",
    "VGG-style BatchNorm convnet, light augmentation: >= 99.5% in about two minutes",
    epochs=12,
    batch_size=128,
    learning_rate=3e-3,
    schedule="onecycle",
    patience=12,
    label_smoothing=0.1,
    augment=0.5,
)
def cnn(width: int = 32, dropout: float = 0.25) -> keras.Model:
    """Two 3x3 convs per stage at 28, 14 and 7 px (w, 2w, 4w filters), GAP, Dense(10)."""
    import keras
    from keras import layers

    _check_rate("cnn", dropout)
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        x = _conv_bn(x, filters)
        x = _conv_bn(x, filters)
        if stage < 2:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn")


@register(
    "keras-convnet",
    "reference: the Keras 'Simple MNIST convnet' example, as published",
    epochs=15, batch_size=128, learning_rate=1e-3, schedule="constant", patience=15,
    val_size=6000,
)
def keras_convnet() -> keras.Model:
    """Conv32-MaxPool-Conv64-MaxPool-Flatten-Dropout(0.5)-Dense(10), no BatchNorm.

    The keras-io example trains it with Adam (lr 1e-3), batch 128, 15 epochs and
    validation_split=0.1 (6,000 images) without early stopping; the recipe above
    reproduces that (patience = epochs). It is the benchmark's yardstick.
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="keras_convnet",
    )


# -- settings helpers --------------------------------------------------------------


def _check_rate(model: str, dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise MnistlabError(f"{model}: dropout must be in [0, 1), got {dropout}")


def _fmt(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def _coerce(model: str, key: str, value: Any, default: Any) -> Any:
    """Turn CLI strings into the type of the default (``"512,256"`` -> ``(512, 256)``)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(type(default[0])(v) for v in items)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return value
    except (TypeError, ValueError):
        raise MnistlabError(
            f"model {model!r}: cannot read {key}={value!r} as {type(default).__name__} "
            f"like the default {_fmt(default)}"
        ) from None
