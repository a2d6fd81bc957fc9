"""Search spaces: what Optuna varies for each registered model.

A :class:`SearchSpace` pairs a ``suggest`` function (an ``optuna.Trial`` in, the
run's settings out) with the per-trial epoch budget. :data:`SEARCH_SPACES` holds
one per tunable model; a model registered with a ``space`` of its own uses that
(:func:`search_space`). The ranges contain each model's registered recipe, so a
search can always find it again.

>>> search_space("fnn").epochs
15
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec, list_models

if TYPE_CHECKING:  # optuna loads on first use: `mnistlab --help` stays quick
    import optuna


@dataclass(frozen=True)
class SearchSpace:
    """How to search one model.

    Attributes
    ----------
    suggest : given an ``optuna.Trial``, suggests values and returns the run's
        settings: ``{"params": {model settings}, **other TrainConfig fields}``.
    epochs : default per-trial epoch budget (``--epochs``): every trial runs its
        learning-rate schedule over this many epochs, so trials compare fairly
        epoch by epoch, which the pruner relies on.
    """

    suggest: Callable[[optuna.Trial], dict[str, Any]]
    epochs: int


def _optimizer(trial: optuna.Trial) -> dict[str, Any]:
    # Adam, or AdamW with a decoupled weight decay (Keras multiplies it by the learning rate).
    if trial.suggest_categorical("optimizer", ["adam", "adamw"]) == "adamw":
        return {"weight_decay": trial.suggest_float("weight_decay", 1e-4, 5e-2, log=True)}
    return {"weight_decay": 0.0}


def fnn_space(trial: optuna.Trial) -> dict[str, Any]:
    """Feed-forward net: widths, dropout, optimiser, learning rate, batch, smoothing, augmentation.

    The ranges contain the registered recipe (itself the best of an earlier
    20-trial search), so a new search can find it again. Light augmentation is
    what lets a two-layer net generalise past ~98.5% on the test set.
    """
    return {
        "params": {
            "hidden": (
                trial.suggest_int("hidden1", 256, 1536, log=True),
                trial.suggest_int("hidden2", 128, 768, log=True),
            ),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        },
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 2e-4, 4e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 0.6),
    }


def cnn_space(trial: optuna.Trial, model: str = "cnn") -> dict[str, Any]:
    """Convnets: width, dense head, dropout, optimiser, learning rate, batch, augmentation, ...

    ``model`` names the registered convnet: only the settings it has are searched
    (``dense`` where its builder takes one).
    """
    settings = get_model_spec(model).defaults
    params: dict[str, Any] = {
        "width": trial.suggest_int("width", 16, 48, step=8),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }
    if "dense" in settings:
        params["dense"] = trial.suggest_int("dense", 64, 512, log=True)
    return {
        "params": params,
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 1.0),
    }


def training_space(trial: optuna.Trial) -> dict[str, Any]:
    """A model without settings of its own: only the training recipe is searched."""
    return {
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 1.0),
    }


# Keyed by registered model name. (A model registered with its own ``space`` wins:
# see search_space().)
SEARCH_SPACES: dict[str, SearchSpace] = {
    "fnn": SearchSpace(fnn_space, epochs=15),
    "cnn-fast": SearchSpace(functools.partial(cnn_space, model="cnn-fast"), epochs=3),
    "cnn": SearchSpace(functools.partial(cnn_space, model="cnn"), epochs=6),
    "cnn-best": SearchSpace(functools.partial(cnn_space, model="cnn-best"), epochs=10),
    "cnn-best-deskew": SearchSpace(
        functools.partial(cnn_space, model="cnn-best-deskew"), epochs=10
    ),
    "keras-convnet": SearchSpace(training_space, epochs=5),
}


def search_space(model: str) -> SearchSpace:
    """The search space of a registered model.

    Parameters
    ----------
    model : registered model name.

    Returns
    -------
    The model's :class:`SearchSpace`: its own (a ``space`` attribute on its
    registry entry) if it declares one, else the one in :data:`SEARCH_SPACES`.

    Examples
    --------
    >>> search_space("fnn").epochs
    15
    """
    spec = get_model_spec(model)  # unknown names: the registry's own error
    own = getattr(spec, "space", None)  # a model registered with its own space
    if isinstance(own, SearchSpace):
        return own
    if callable(own):
        return SearchSpace(own, epochs=max(1, spec.recipe.get("epochs", 10) // 3))
    if spec.name not in SEARCH_SPACES:
        tunable = ", ".join(m.name for m in list_models() if m.name in SEARCH_SPACES)
        raise MnistlabError(
            f"model {spec.name!r} has no search space, so it cannot be tuned yet; "
            f"tunable models: {tunable} (add one to mnistlab.tune.SEARCH_SPACES)"
        )
    return SEARCH_SPACES[spec.name]
