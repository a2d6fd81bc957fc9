"""The one configuration object of a run.

A :class:`TrainConfig` holds every setting that decides what a run computes:
model and its own parameters, data, optimisation recipe, seed. It is frozen,
saved as ``config.json`` in the run directory, and is the single source of
truth: re-running a saved config reproduces the run.

Defaults come from the model's registered recipe (``mnistlab.models``), so
``make_config("cnn")`` and ``make_config("fnn")`` each get a recipe that suits
the model; anything passed explicitly overrides it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec

SCHEDULES = ("constant", "cosine", "onecycle")
KEEP = ("best", "last")
# NumPy and scikit-learn take seeds in 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run.

    Attributes
    ----------
    model : registered model name (see ``mnistlab models``).
    params : the model's own settings (widths, dropout, ...), merged over the
        model's defaults.
    dataset : ``"mnist"`` or ``"fashion-mnist"``.
    seed : seeds Python, NumPy, TensorFlow and the validation split.
    epochs : maximum number of epochs; early stopping may end sooner.
    batch_size : images per optimiser step.
    learning_rate : peak learning rate of the schedule.
    schedule : ``"constant"``, ``"cosine"`` (warm-up then cosine decay to 0 at
        ``epochs``) or ``"onecycle"`` (linear up for 30%, cosine down).
    warmup_epochs : linear warm-up length for ``"cosine"``.
    weight_decay : decoupled weight decay (AdamW); 0 means plain Adam.
    label_smoothing : smoothing of the one-hot targets in the loss.
    patience : early-stopping patience in epochs, on validation accuracy.
    keep : which weights the run keeps: ``"best"`` (the epoch with the highest
        validation accuracy, restored at the end) or ``"last"`` (the final
        epoch's: for a schedule that anneals to 0, the end of the schedule).
    val_size : images held out of the 60,000 training images (stratified); 0
        trains on all of them, with no validation set and so no early stopping
        (needs ``keep="last"``).
    augment : strength of random affine augmentation, 0 = off (rotation in
        units of a full turn times 0.05, shift/zoom fraction times 0.1).
    deterministic : turn on TensorFlow op determinism (slower, bit-identical).

    Examples
    --------
    >>> config = make_config("fnn", epochs=5)  # the model's recipe, then overrides
    >>> config.epochs, config.patience, config.to_dict()["params"]["hidden"]
    (5, 8, (660, 354))
    """

    model: str = "fnn"
    params: Mapping[str, Any] = field(default_factory=dict)
    dataset: str = "mnist"
    seed: int = 0
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 5
    keep: str = "best"
    val_size: int = 5000
    augment: float = 0.0
    deterministic: bool = False

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", self.epochs, "an integer >= 1")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        _check(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            "learning_rate",
            self.learning_rate,
            "a finite number > 0",
        )
        _check(
            isinstance(self.seed, numbers.Integral) and 0 <= self.seed <= MAX_SEED,
            "seed",
            self.seed,
            f"an integer 0..{MAX_SEED}",
        )
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, " | ".join(SCHEDULES))
        _check(self.patience >= 1, "patience", self.patience, "an integer >= 1")
        _check(self.keep in KEEP, "keep", self.keep, " | ".join(KEEP))
        _check(0 <= self.val_size < 60000, "val_size", self.val_size, "between 0 and 59999")
        if self.val_size == 0 and self.keep != "last":
            raise MnistlabError(
                "val_size=0 trains on all 60,000 training images and leaves no validation "
                "images to pick the best epoch by: also pass keep='last' (--keep last)"
            )
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "in [0, 1)")
        for name in ("weight_decay", "augment", "warmup_epochs"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, name, value, "a finite number >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as written to ``config.json``."""
        d = dataclasses.asdict(self)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise MnistlabError(f"unknown config keys {unknown}; known keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a ``config.json``."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise MnistlabError(f"cannot read run config {path}: {err}") from err


def _check(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise MnistlabError(f"invalid {name}={value!r}: expected {accepted}")


def make_config(
    model: str = "fnn", *, params: Mapping[str, Any] | None = None, **overrides: Any
) -> TrainConfig:
    """Build a :class:`TrainConfig` from a model's registered recipe.

    Parameters
    ----------
    model : registered model name.
    params : model settings to override (merged over the model's defaults).
    **overrides : any other :class:`TrainConfig` field; ``None`` values are
        ignored so CLI options left unset keep the recipe's value.

    Returns
    -------
    TrainConfig with every field concrete.

    Examples
    --------
    >>> make_config("fnn", epochs=3).epochs
    3
    """
    spec = get_model_spec(model)
    merged_params = spec.check_params(params or {})
    fields = {**spec.recipe, **{k: v for k, v in overrides.items() if v is not None}}
    valid = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "params"}
    unknown = sorted(set(fields) - valid)
    if unknown:
        raise MnistlabError(f"unknown training settings {unknown}; known: {sorted(valid)}")
    return TrainConfig(model=spec.name, params=merged_params, **fields)
