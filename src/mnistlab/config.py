"""The configuration records of a run: what it computes, validated when built.

A :class:`TrainConfig` holds every setting that decides what a trained run
computes: model and its own parameters, data, optimisation recipe, seed. It is
frozen, saved as ``config.json`` in the run directory, and is the single source
of truth: re-running a saved config reproduces the run.

An :class:`EnsembleConfig` is what ``config.json`` of an ensemble holds (its
member runs and their dataset): an ensemble is made, not trained, so it has no
training settings.

Both are pydantic models in strict mode: a value of the wrong type (``"5"`` or
``1.5`` or ``True`` for an integer) or out of range is refused when the record
is built, with one line naming the field and what it accepts. Saved records
round-trip exactly: ``to_dict`` -> JSON -> ``load`` -> ``to_dict`` gives the
same dict (a model's tuple settings come back as tuples).

Defaults come from the model's registered recipe (``mnistlab.models``), so
``make_config("cnn")`` and ``make_config("fnn")`` each get a recipe that suits
the model; anything passed explicitly overrides it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec

SCHEDULES = ("constant", "cosine", "onecycle")
KEEP = ("best", "last")
# The training-time perturbations (mnistlab.train.perturbations), in its order.
PerturbationName = Literal[
    "background",
    "gamma",
    "gaussian_noise",
    "salt_pepper",
    "blur",
    "elastic",
    "occlude",
    "strokes",
    "outline",
    "invert_band",
]
PERTURBATION_FAMILIES: tuple[PerturbationName, ...] = get_args(PerturbationName)
# NumPy and scikit-learn take seeds in 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1

# What each field accepts, for the one-line message of a refused value.
_ACCEPTED = {
    "model": "a registered model name (see 'mnistlab models')",
    "params": "a mapping of the model's own settings",
    "dataset": "a dataset name, e.g. 'mnist' or 'fashion-mnist'",
    "seed": f"an integer 0..{MAX_SEED}",
    "epochs": "an integer >= 1",
    "batch_size": "an integer >= 1",
    "learning_rate": "a finite number > 0",
    "schedule": " | ".join(SCHEDULES),
    "warmup_epochs": "a finite number >= 0",
    "weight_decay": "a finite number >= 0",
    "label_smoothing": "in [0, 1)",
    "patience": "an integer >= 1",
    "keep": " | ".join(KEEP),
    "val_size": "between 0 and 59999",
    "augment": "a finite number >= 0",
    "perturb": "a number in [0, 1]",
    "perturbations": "one or more of " + ", ".join(PERTURBATION_FAMILIES),
    "deterministic": "true or false",
    "members": "two or more run directories",
    "member_models": "one model name per member",
}

_Record = TypeVar("_Record", bound="_ConfigRecord")


class _ConfigRecord(BaseModel):
    """What both records share: strict validation, MnistlabError, dict and file forms."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise MnistlabError(_describe(err, type(self))) from None

    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars(cls, data: Any) -> Any:
        # NumPy integers and floats are numbers, not wrong types (bool stays refused).
        if isinstance(data, dict):
            return {k: _plain(v) for k, v in data.items()}
        return data

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as written to ``config.json``."""
        return self.model_dump()

    @classmethod
    def from_dict(cls: type[_Record], d: Mapping[str, Any]) -> _Record:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = set(cls.model_fields)
        unknown = sorted(set(d) - names)
        if unknown:
            raise MnistlabError(f"unknown config keys {unknown}; known keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def load(cls: type[_Record], path: str | Path) -> _Record:
        """Read a ``config.json``."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MnistlabError(f"cannot read run config {path}: {err}") from err
        if not isinstance(d, dict):
            raise MnistlabError(f"cannot read run config {path}: not a JSON object")
        try:
            return cls.from_dict(d)
        except MnistlabError as err:
            raise MnistlabError(f"cannot read run config {path}: {err}") from err


class TrainConfig(_ConfigRecord):
    """Every setting of a training run.

    Attributes
    ----------
    model : registered model name (see ``mnistlab models``).
    params : the model's own settings (widths, dropout, ...), merged over the
        model's defaults by :func:`make_config`.
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
    perturb : share of the training digits (each batch, on the fly, after the
        affine augmentation) that get one training-time perturbation, 0 = off.
    perturbations : the perturbations to choose from, uniformly, for a perturbed
        digit (``mnistlab.train.perturbations``): background, gamma,
        gaussian_noise, salt_pepper, blur, elastic, occlude, strokes, outline,
        invert_band; all of them by default.
    deterministic : turn on TensorFlow op determinism (slower, bit-identical).

    Raises
    ------
    MnistlabError
        One line per refused field: ``invalid epochs='5': expected an integer >= 1``.

    Examples
    --------
    >>> config = make_config("fnn", epochs=5)  # the model's recipe, then overrides
    >>> config.epochs, config.patience, config.to_dict()["params"]["hidden"]
    (5, 8, (660, 354))
    """

    model: str = "fnn"
    params: dict[str, Any] = Field(default_factory=dict)
    dataset: str = "mnist"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    schedule: Literal["constant", "cosine", "onecycle"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    patience: int = Field(5, ge=1)
    keep: Literal["best", "last"] = "best"
    val_size: int = Field(5000, ge=0, lt=60000)
    augment: float = Field(0.0, ge=0, allow_inf_nan=False)
    perturb: float = Field(0.0, ge=0, le=1)
    perturbations: tuple[PerturbationName, ...] = Field(PERTURBATION_FAMILIES, min_length=1)
    deterministic: bool = False

    @field_validator("model")
    @classmethod
    def _registered(cls, model: str) -> str:
        try:
            return get_model_spec(model).name
        except MnistlabError as err:
            raise ValueError(str(err)) from None

    @field_validator("perturbations", mode="before")
    @classmethod
    def _names_from_json(cls, names: Any) -> Any:
        # config.json (and the CLI's "a,b") give a list or a string: the record holds a tuple.
        if isinstance(names, str):
            return tuple(name.strip() for name in names.split(",") if name.strip())
        if isinstance(names, list):
            return tuple(names)
        return names

    @field_validator("perturbations")
    @classmethod
    def _each_once(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError(f"invalid perturbations={list(names)!r}: a name is given twice")
        return names

    @field_validator("params")
    @classmethod
    def _model_settings(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The model's own coercion (JSON lists back to tuples, CLI strings to numbers),
        # for the settings given; build_model fills in the rest from its defaults.
        model = info.data.get("model")
        if model is None:  # the model itself was refused; that error says enough
            return params
        try:
            merged = get_model_spec(model).check_params(params)
        except MnistlabError as err:
            raise ValueError(str(err)) from None
        return {key: merged[key] for key in params}

    @model_validator(mode="after")
    def _validation_images_for_best(self) -> TrainConfig:
        if self.val_size == 0 and self.keep != "last":
            raise ValueError(
                "val_size=0 trains on all 60,000 training images and leaves no validation "
                "images to pick the best epoch by: also pass keep='last' (--keep last)"
            )
        return self

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied, validated like a new config."""
        return TrainConfig(**{**self.to_dict(), **changes})


class EnsembleConfig(_ConfigRecord):
    """What an ensemble run is made of (``mnistlab ensemble``): its members.

    An ensemble averages the probabilities of finished runs; it is made, not
    trained, so it has no training settings.

    Attributes
    ----------
    dataset : the dataset every member was trained on.
    members : the member run directories, in the order their outputs are averaged.
    member_models : each member's model name, in the same order.

    Examples
    --------
    >>> config = EnsembleConfig(dataset="mnist", members=["runs/a", "runs/b"],
    ...                         member_models=["cnn", "cnn"])
    >>> config.model, config.to_dict()["members"]
    ('ensemble', ['runs/a', 'runs/b'])
    """

    dataset: str
    members: list[str] = Field(min_length=2)
    member_models: list[str]

    @model_validator(mode="after")
    def _one_model_per_member(self) -> EnsembleConfig:
        if len(self.member_models) != len(self.members):
            raise ValueError(
                f"invalid member_models: {len(self.member_models)} names for "
                f"{len(self.members)} members; expected one model name per member"
            )
        return self

    @property
    def model(self) -> str:
        """What to call the model in output (metrics.json's ``model``): ``"ensemble"``."""
        return "ensemble"


# What config.json of a run holds, by the run's kind.
RunConfig = TrainConfig | EnsembleConfig


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _describe(err: ValidationError, record: type[BaseModel]) -> str:
    """One line for a refused record: each field, the value given and what it accepts."""
    parts = []
    for e in err.errors():
        name = str(e["loc"][0]) if e["loc"] else ""
        if e["type"] == "extra_forbidden":
            known = sorted(record.model_fields)
            parts.append(f"unknown setting {name!r}; known: {known}")
        elif e["type"] == "missing":
            parts.append(f"missing {name}: expected {_ACCEPTED.get(name, 'a value')}")
        elif e["type"] == "value_error":  # our own validators: their message is complete
            parts.append(str(e["ctx"]["error"]))
        else:
            accepted = _ACCEPTED.get(name, e["msg"])
            parts.append(f"invalid {name}={e['input']!r}: expected {accepted}")
    return "; ".join(dict.fromkeys(parts))


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

    Raises
    ------
    MnistlabError
        An unknown model, setting or model setting, or a value of the wrong type
        or out of range (one line naming the field and what it accepts).

    Examples
    --------
    >>> make_config("fnn", epochs=3).epochs
    3
    """
    spec = get_model_spec(model)
    merged_params = spec.check_params(params or {})
    fields = {**spec.recipe, **{k: v for k, v in overrides.items() if v is not None}}
    valid = set(TrainConfig.model_fields) - {"model", "params"}
    unknown = sorted(set(fields) - valid)
    if unknown:
        raise MnistlabError(f"unknown training settings {unknown}; known: {sorted(valid)}")
    return TrainConfig(model=spec.name, params=merged_params, **fields)
