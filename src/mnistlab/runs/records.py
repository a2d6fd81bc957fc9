"""Typed records of a run directory's JSON files: run.json, metrics.json, calibration.json,
robustness.json.

Each file stays plain JSON a person can read; these pydantic models say what
each key is and check a record before it is written (and when a reader asks
for the typed view). Keys a record does not name are kept as they are, so a
file written by a later version still opens.

``run.json`` (:class:`RunRecord`) says what kind of run the directory holds
(:data:`RUN_KINDS`) and where it is in its life::

    kind         train | ensemble | cv-fold | tune-trial
    state        running | finished | interrupted | failed
    started, finished             Unix times
    train_seconds, epochs_run, best_epoch, best_val_accuracy, kept_epoch, params_count
    data_source  where the training images came from (for people)
    train_data   {"dataset", "images", "sha256"}: what a resumed run checks
    resumed      [{"at", "epoch"}, ...]; error (why it failed); versions
    members, member_best_val_accuracy   (ensembles)

``metrics.json`` (:class:`MetricsRecord`): written by ``mnistlab evaluate``
(:func:`mnistlab.evaluate.evaluate`). ``calibration.json``
(:class:`CalibrationRecord`): written by ``mnistlab calibrate``; its format is
in :mod:`mnistlab.evaluate.calibration`. ``robustness.json``
(:class:`RobustnessRecord`): written by ``mnistlab robustness``
(:mod:`mnistlab.robustness`). ``abstention.json`` (:class:`AbstentionRecord`):
written by ``mnistlab train`` / ``mnistlab trust`` (:mod:`mnistlab.trust`).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mnistlab.errors import MnistlabError

RunKind = Literal["train", "ensemble", "cv-fold", "tune-trial"]
# train: mnistlab train; ensemble: mnistlab ensemble (made, not trained); cv-fold: one
# fold of mnistlab cv (its metrics are its held-out fold's); tune-trial: one trial of
# mnistlab tune (trained on the training images only).
RUN_KINDS: tuple[str, ...] = get_args(RunKind)

RunState = Literal["running", "finished", "interrupted", "failed"]


class _Record(BaseModel):
    # Lax types (JSON has no tuples, ints where floats are meant); unknown keys kept.
    model_config = ConfigDict(extra="allow", frozen=True)


_R = TypeVar("_R", bound=_Record)


class TrainData(_Record):
    """Which training images a run started with (checked when it is resumed)."""

    dataset: str
    images: int
    sha256: str


class Resumed(_Record):
    """One resumption of a run: when, and after which committed epoch."""

    at: float
    epoch: int


class RunRecord(_Record):
    """``run.json``: what kind of run this is, its state and timings, its best epoch."""

    kind: RunKind = "train"
    state: RunState | Literal["unknown"] = "unknown"
    started: float | None = None
    finished: float | None = None
    train_seconds: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    kept_epoch: int | None = None
    params_count: int | None = None
    data_source: str | None = None
    train_data: TrainData | None = None
    resumed: list[Resumed] | None = None
    error: str | None = None
    versions: dict[str, str] | None = None
    members: list[str] | None = None
    member_best_val_accuracy: list[float | None] | None = None


class PerClass(_Record):
    """One row of ``metrics.json``'s ``per_class``."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


class Average(_Record):
    """``macro_avg`` or ``weighted_avg`` of ``metrics.json``."""

    precision: float
    recall: float
    f1: float


class Ranking(_Record):
    """``roc_auc`` or ``average_precision``: one-vs-rest, per class, micro and macro."""

    per_class: list[float | None]
    micro: float
    macro: float | None


class MetricsRecord(_Record):
    """``metrics.json``: a run's test-set scores (``mnistlab evaluate``).

    ``roc_auc``, ``average_precision`` and ``ece`` are absent from files written
    before they were added; ``members`` is there for an ensemble only.
    """

    n_test: int
    n_errors: int
    test_accuracy: float
    test_loss: float
    confusion_matrix: list[list[int]]
    class_names: list[str]
    per_class: list[PerClass]
    macro_avg: Average
    weighted_avg: Average
    roc_auc: Ranking | None = None
    average_precision: Ranking | None = None
    ece: float | None = None
    ece_bins: int | None = None
    model: str | None = None
    dataset: str | None = None
    run: str | None = None
    eval_seconds: float | None = None
    train_seconds: float | None = None
    params_count: int | None = None
    members: dict[str, Any] | None = None


class BeforeAfter(_Record):
    """Negative log-likelihood and ECE before and after temperature scaling."""

    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float


class CalibrationRecord(_Record):
    """``calibration.json``: the temperature fitted on the run's validation split.

    Only ``temperature`` is needed to apply it; the rest says how it was fitted.
    """

    temperature: float = Field(gt=0, allow_inf_nan=False)
    method: Literal["temperature", "vector"] = "temperature"
    # vector scaling (method "vector"): softmax(weights * log p + bias), per class
    weights: list[float] | None = None
    bias: list[float] | None = None
    compared: dict[str, float] | None = None
    fitted_on: str | None = None
    n_fit: int | None = None
    val_size: int | None = None
    seed: int | None = None
    ece_bins: int | None = None
    validation: BeforeAfter | None = None
    test: BeforeAfter | None = None
    run: str | None = None


class AbstentionRates(_Record):
    """What share of a set of images each decision takes (fractions of the set)."""

    n: int
    kept: float
    not_a_digit: float
    unsure: float
    not_a_single_digit: float


class AbstentionRecord(_Record):
    """``abstention.json``: when a prediction says "not a digit" or "unsure" instead.

    Chosen on the run's validation split (never the test set) for ``target_keep``,
    the share of real validation digits that must keep their answer
    (:mod:`mnistlab.trust`). ``score`` names the out-of-distribution score (higher =
    less like a digit); an image scoring above ``ood_threshold`` is "not a digit";
    one whose calibrated top probability is below ``min_confidence`` is "unsure".
    ``max_ink`` (share of the 28x28 field inked) and ``split_blobs`` are the input
    checks. The arrays a feature-space score needs are in ``ood_detector.npz``.
    """

    score: Literal["msp", "energy", "mahalanobis", "knn", "oe"]
    ood_threshold: float = Field(allow_inf_nan=False)
    min_confidence: float = Field(ge=0, le=1)
    target_keep: float = Field(gt=0, le=1)
    max_ink: float = Field(gt=0, le=1)
    split_blobs: bool = True
    ood_share: float | None = None
    fitted_on: str = "validation"
    n_fit: int | None = None
    val_size: int | None = None
    seed: int | None = None
    validation: AbstentionRates | None = None
    run: str | None = None


class Accuracy(_Record):
    """Accuracy on one set of images: as arrays fed to the model, and through ``predict``.

    ``predict`` is None when the predict pipeline was not measured; ``predict_failed``
    counts the images it refused (no ink found), which count as wrong.
    """

    arrays: float = Field(ge=0, le=1)
    predict: float | None = Field(default=None, ge=0, le=1)
    predict_failed: int | None = None
    seconds: float | None = None


class CorruptionAccuracy(Accuracy):
    """:class:`Accuracy` under one corruption, named as in MNIST-C (``"fog"``)."""

    name: str


class RobustnessRecord(_Record):
    """``robustness.json``: accuracy on the test images under each MNIST-C corruption.

    ``corruptions`` lists each corruption's accuracy in MNIST-C's order (a list, so
    the order survives key-sorted JSON); ``mean`` is their mean; ``figures`` maps a
    figure's name to its path relative to the run directory.
    """

    n: int = Field(ge=1)
    seed: int = Field(ge=0)
    clean: Accuracy
    corruptions: list[CorruptionAccuracy]
    mean: Accuracy
    figures: dict[str, str] = {}
    model: str | None = None
    dataset: str | None = None
    run: str | None = None
    seconds: float | None = None


def describe_error(err: ValidationError) -> str:
    """The first problem of a refused record, in one line: ``key=value: what is wrong``."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the record"
    return f"{where}={first.get('input')!r}: {first['msg'][:1].lower()}{first['msg'][1:]}"


def check_record(record: type[_R], data: Any, what: str) -> _R:
    """Validate ``data`` as ``record``; a one-line MnistlabError starting with ``what``."""
    try:
        return record.model_validate(data)
    except ValidationError as err:
        raise MnistlabError(f"{what}: {describe_error(err)}") from None
