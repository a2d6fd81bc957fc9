"""The model registry: every model is a function registered by name with its recipe.

``build_model("cnn")`` returns an uncompiled Keras model that maps a batch of
images, float32 (N, 28, 28, 1) in [0, 1], to softmax probabilities (N, 10).
Each registration also names the training recipe that suits the model (the
defaults of :class:`mnistlab.config.TrainConfig` for it), so the CLI, the
tuner and the benchmark never switch on model names themselves. The models
themselves are in :mod:`mnistlab.models.networks`.
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
            known = ", ".join(f"{k}={format_value(v)}" for k, v in defaults.items()) or "none"
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
    """All registered models, in registration order.

    Returns
    -------
    list of ModelSpec: ``name``, ``description``, ``recipe`` (the training
    settings :func:`mnistlab.make_config` starts from) and ``defaults`` (the
    model's own settings, as :func:`build_model` takes them).

    Examples
    --------
    >>> [spec.name for spec in list_models()][:3]
    ['fnn', 'cnn-fast', 'cnn']
    >>> list_models()[0].recipe["epochs"]
    15
    """
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
    settings = spec.check_params(params)
    try:
        return spec.build(**settings)
    except (ValueError, TypeError) as err:
        # A value the builder does not check itself, refused by Keras (e.g. width=0).
        shown = ", ".join(f"{k}={format_value(v)}" for k, v in settings.items())
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MnistlabError(
            f"model {name!r} cannot be built with {shown}: {reason}; change the setting (-p)"
        ) from err


def count_params(name: str, **params: Any) -> int:
    """Number of weights of a registered model with the given settings."""
    return int(build_model(name, **params).count_params())


def format_value(value: Any) -> str:
    """A setting as the CLI writes it: ``(512, 256)`` -> ``512,256``."""
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
            f"like the default {format_value(default)}"
        ) from None
