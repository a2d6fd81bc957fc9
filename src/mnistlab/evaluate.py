"""Evaluation: a finished run, scored once on the test set.

The test set is touched here and nowhere before (training holds out its own
validation split), so this is the number to report::

    open the run (must be finished) -> load its dataset and model.keras
    -> predict the 10,000 test images once -> metrics with scikit-learn
    -> predictions.npz and metrics.json in the run directory

``predictions.npz`` keeps the test-set probabilities so that later stages
(compare, ensemble, calibration) reuse them instead of predicting again.
``metrics.json`` is written last: if it exists, the predictions beside it are
complete and belong to it.

:func:`calibrate` fits temperature scaling on the run's validation split and
writes ``calibration.json`` (format: :mod:`mnistlab.analysis`); the model file
is left as it is.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from mnistlab import files
from mnistlab.analysis import (
    CALIBRATION_FILE,
    EPSILON,
    N_BINS,
    analysis_metrics,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    member_overlap,
    negative_log_likelihood,
)
from mnistlab.config import TrainConfig
from mnistlab.data import Dataset, load_dataset, to_float, train_val_split
from mnistlab.errors import MnistlabError
from mnistlab.models import load_saved_model
from mnistlab.runs import RunDir

PREDICTIONS_FILE = "predictions.npz"

# The layer of an ensemble's model (mnistlab.ensemble) that averages its members' outputs.
ENSEMBLE_AVERAGE_LAYER = "mean_probability"

# EPSILON (from analysis, shared with calibration): probabilities are clipped to
# [EPSILON, 1] before the log, as Keras's cross-entropy does, so one confident
# mistake costs -log(1e-7) ~ 16.1, not inf.


# -- metrics from probabilities (pure, no I/O) -------------------------------------------


def metrics_from_probs(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Classification metrics of predicted probabilities against true labels.

    The predicted class of an image is the argmax of its probabilities.

    Parameters
    ----------
    y_true : int array (N,), true labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities (rows sum to 1).
    class_names : K names, in label order (``CLASS_NAMES["mnist"]`` is ``"0" .. "9"``).

    Returns
    -------
    dict with plain-JSON values:
    ``n_test``, ``n_errors``, ``test_accuracy``, ``test_loss`` (mean
    cross-entropy, probabilities clipped to ``[1e-7, 1]``), ``confusion_matrix``
    (K x K counts, rows = true class, columns = predicted class),
    ``class_names``, ``per_class`` (one ``{"label", "precision", "recall",
    "f1", "support"}`` per class), ``macro_avg`` and ``weighted_avg``
    (``{"precision", "recall", "f1"}``; weighted by support). A class that is
    never predicted has precision 0 (not NaN). From
    :func:`mnistlab.analysis.analysis_metrics`: ``roc_auc`` and
    ``average_precision`` (one-vs-rest; ``{"per_class", "micro", "macro"}``,
    None for a class with no image) and ``ece`` (expected calibration error,
    ``ece_bins`` = 15 equal-width bins).

    Examples
    --------
    >>> m = metrics_from_probs(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]), ["a", "b"])
    >>> m["test_accuracy"], m["confusion_matrix"]
    (0.5, [[1, 0], [1, 0]])
    """
    y_true, probs = _check_inputs(y_true, probs, class_names)
    n, k = probs.shape
    labels = np.arange(k)
    y_pred = probs.argmax(axis=1)

    # Cross-entropy in float64: float32 logs of 10,000 values lose digits in the mean.
    p_true = probs[np.arange(n), y_true].astype(np.float64)
    loss = float(-np.mean(np.log(np.clip(p_true, EPSILON, 1.0))))

    cm = confusion_matrix(y_true, y_pred, labels=labels)
    # zero_division=0: a class never predicted gets precision 0 rather than NaN,
    # which JSON cannot hold and tables cannot sort.
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    averages = {}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0
        )
        averages[f"{avg}_avg"] = {"precision": float(p), "recall": float(r), "f1": float(f)}

    n_correct = int(np.trace(cm))
    return {
        "n_test": int(n),
        "n_errors": int(n - n_correct),
        "test_accuracy": n_correct / n,
        "test_loss": loss,
        "confusion_matrix": cm.astype(int).tolist(),
        "class_names": [str(c) for c in class_names],
        "per_class": [
            {
                "label": str(class_names[i]),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(k)
        ],
        **averages,
        **analysis_metrics(y_true, probs),
    }


def _check_inputs(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    k = len(class_names)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise MnistlabError(
            f"probs must have shape (N, {k}) for {k} class names, got {probs.shape}"
        )
    if y_true.shape != (probs.shape[0],):
        raise MnistlabError(
            f"y_true must have shape ({probs.shape[0]},) to match probs, got {y_true.shape}"
        )
    if len(y_true) == 0:
        raise MnistlabError("y_true and probs are empty; evaluate at least one image")
    if not np.issubdtype(y_true.dtype, np.integer) or y_true.min() < 0 or y_true.max() >= k:
        raise MnistlabError(f"y_true must hold integer labels in 0..{k - 1}")
    if not np.all(np.isfinite(probs)):
        # What a diverged training run produces; its "accuracy" would be meaningless.
        raise MnistlabError(
            "probs contain NaN or infinity (did training diverge?); "
            "retrain with a lower learning rate"
        )
    return y_true.astype(np.int64), probs


# -- the stage ----------------------------------------------------------------------------


def run_dataset(run: RunDir, dataset: Dataset | None = None) -> Dataset:
    """The dataset a run was trained on: ``dataset`` if it matches, else loaded.

    Raises MnistlabError when ``dataset`` is another dataset than the run's.
    """
    name = run.config().dataset
    if dataset is None:
        return load_dataset(name)
    if dataset.name != name:
        raise MnistlabError(
            f"run {run.name} was trained on {name!r} but the dataset passed is "
            f"{dataset.name!r}; pass the matching dataset or none"
        )
    return dataset


def evaluate(
    run: RunDir | str | Path,
    *,
    dataset: Dataset | None = None,
    runs_dir: str | Path = "runs",
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Score a finished run on its dataset's test set; write metrics.json.

    Parameters
    ----------
    run : a :class:`RunDir`, a run directory path, a run name inside
        ``runs_dir``, or ``"latest"``.
    dataset : already-loaded data (must be the run's ``config.dataset``);
        loaded from the cache if None.
    runs_dir : where run names are looked up.
    batch_size : images per prediction batch (memory only; results are the same).

    Returns
    -------
    The metrics dict written to ``metrics.json``: everything
    :func:`metrics_from_probs` returns, plus ``model``, ``dataset``, ``run``
    (path), ``eval_seconds``, ``train_seconds`` (from ``run.json``, None if
    absent) and ``params_count``. ``predictions.npz`` (``probs`` float32
    (N, 10), ``y_true`` uint8 (N,)) is written beside it.

    Examples
    --------
    >>> metrics = evaluate("latest")
    >>> print(format_metrics(metrics))
    """
    if batch_size < 1:
        raise MnistlabError(f"invalid batch_size={batch_size!r}: expected an integer >= 1")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    config = run.config()
    if dataset is None and run.is_cv_fold():
        # Its metrics.json holds its held-out fold's scores, which cv's summary is made of.
        raise MnistlabError(
            f"run {run.name} is a cross-validation fold, scored on its held-out fold; "
            "evaluating it on the test set would replace that score: leave it to 'mnistlab cv'"
        )
    dataset = run_dataset(run, dataset)

    model = load_saved_model(run.model_path, hint="retrain the run")
    # An ensemble's model also yields its members' probabilities, in the same pass.
    predictor = _with_member_outputs(model)

    started = time.perf_counter()
    # float32 (N, 28, 28, 1) in [0, 1] -> softmax probabilities (N, 10)
    outputs = predictor.predict(to_float(dataset.x_test), batch_size=batch_size, verbose=0)
    eval_seconds = time.perf_counter() - started
    outputs = outputs if isinstance(outputs, list) else [outputs]
    probs = np.asarray(outputs[-1], dtype=np.float32)

    metrics = metrics_from_probs(dataset.y_test, probs, dataset.class_names)
    state = run.state()
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "run": str(run.path),
        **metrics,
        "eval_seconds": round(eval_seconds, 3),
        "train_seconds": state.get("train_seconds"),
        "params_count": int(state.get("params_count") or model.count_params()),
    }
    if len(outputs) > 1:
        member_runs = config.params.get("members") or []
        if len(member_runs) != len(outputs) - 1:  # not written by mnistlab.ensemble
            member_runs = [None] * (len(outputs) - 1)
        metrics["members"] = {
            "runs": list(member_runs),
            **member_overlap(dataset.y_test, outputs[:-1], probs),
        }

    # Predictions first, metrics.json last: metrics.json marks a complete evaluation.
    with files.atomic_path(predictions_path(run), suffix=".npz") as tmp:
        np.savez_compressed(tmp, probs=probs, y_true=np.asarray(dataset.y_test, dtype=np.uint8))
    files.write_json(run.metrics_path, metrics)
    return metrics


def _with_member_outputs(model: Any) -> Any:
    """For an ensemble (:mod:`mnistlab.ensemble`): a model that outputs each
    member's probabilities and then the ensemble's; any other model as it is."""
    import keras

    try:
        average = model.get_layer(ENSEMBLE_AVERAGE_LAYER)
    except ValueError:
        return model
    members = average.input
    if not isinstance(members, list) or average.output is not model.outputs[0]:
        return model
    return keras.Model(model.inputs, [*members, model.outputs[0]])


def predictions_path(run: RunDir) -> Path:
    """Where :func:`evaluate` keeps a run's test-set probabilities."""
    return run.path / PREDICTIONS_FILE


def load_predictions(
    run: RunDir | str | Path, *, runs_dir: str | Path = "runs"
) -> tuple[np.ndarray, np.ndarray]:
    """The test-set labels and probabilities saved by :func:`evaluate`.

    Parameters
    ----------
    run : a :class:`RunDir`, path, run name or ``"latest"``.
    runs_dir : where run names are looked up.

    Returns
    -------
    (y_true uint8 (N,), probs float32 (N, 10)).
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    path = predictions_path(run)
    try:
        with np.load(path) as npz:
            return npz["y_true"], npz["probs"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise MnistlabError(
            f"run {run.path} has no readable {PREDICTIONS_FILE}; "
            f"run 'mnistlab evaluate {run.path}' first"
        ) from err


# -- calibration -------------------------------------------------------------------------------


def calibrate(
    run: RunDir | str | Path,
    *,
    dataset: Dataset | None = None,
    runs_dir: str | Path = "runs",
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Fit temperature scaling on the run's validation split; write calibration.json.

    The validation split is recreated exactly as training made it
    (:func:`mnistlab.data.train_val_split` with the run's ``val_size`` and
    ``seed``): images the weights were not fitted on, and not the test set.
    The fitted temperature is then applied to the saved test predictions to
    report ECE and negative log-likelihood before and after. ``model.keras``
    is not changed.

    Parameters
    ----------
    run : a :class:`RunDir`, path, run name inside ``runs_dir``, or ``"latest"``;
        it must be evaluated (``predictions.npz``).
    dataset : the run's dataset if already loaded; loaded from the cache if None.
    runs_dir : where run names are looked up.
    batch_size : images per prediction batch.

    Returns
    -------
    The dict written to ``calibration.json`` (format in :mod:`mnistlab.analysis`).

    Examples
    --------
    >>> record = calibrate("latest")
    >>> record["temperature"], record["test"]["ece_after"]
    """
    if batch_size < 1:
        raise MnistlabError(f"invalid batch_size={batch_size!r}: expected an integer >= 1")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    config = run.config()
    y_test, p_test = load_predictions(run)
    dataset = run_dataset(run, dataset)
    # A run trained on other images than the dataset's (a cross-validation fold)
    # has no validation split that train_val_split could recreate.
    if len(y_test) != len(dataset.y_test) or not np.array_equal(y_test, dataset.y_test):
        raise MnistlabError(
            f"run {run.name} was not evaluated on the {dataset.name} test set (a "
            "cross-validation fold?), so its validation split cannot be recreated; "
            "calibrate a run made by 'mnistlab train'"
        )

    if config.val_size == 0:
        raise MnistlabError(
            f"run {run.name} trained on all training images (val_size 0), so no held-out "
            "validation split is left to fit a temperature on; calibrate a run trained "
            "with a validation split (the default --val-size 5000)"
        )
    if run.is_ensemble():
        _check_members_share_their_split(run)
    # The same split train() made: same images, same seed.
    _, _, x_val, y_val = train_val_split(
        dataset.x_train, dataset.y_train, val_size=config.val_size, seed=config.seed
    )
    model = load_saved_model(run.model_path, hint="retrain the run")
    p_val = np.asarray(model.predict(to_float(x_val), batch_size=batch_size, verbose=0))
    temperature = fit_temperature(y_val, p_val)

    def before_after(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        scaled = apply_temperature(p, temperature)
        return {
            "nll_before": negative_log_likelihood(y, p),
            "nll_after": negative_log_likelihood(y, scaled),
            "ece_before": expected_calibration_error(y, p, N_BINS),
            "ece_after": expected_calibration_error(y, scaled, N_BINS),
        }

    record = {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "validation",
        "n_fit": int(len(y_val)),
        "val_size": config.val_size,
        "seed": config.seed,
        "ece_bins": N_BINS,
        "validation": before_after(y_val, p_val),
        "test": before_after(y_test.astype(np.int64), p_test),
        "run": str(run.path),
    }
    files.write_json(run.path / CALIBRATION_FILE, record)
    return record


def _check_members_share_their_split(run: RunDir) -> None:
    """Refuse an ensemble whose members held out different validation images.

    A member's validation split is another member's training data unless they share
    seed and val_size; a temperature fitted there would be fitted on trained-on images.
    """
    splits = set()
    for member in run.config().params.get("members") or []:
        try:
            c = TrainConfig.load(Path(member) / "config.json")
        except MnistlabError:
            raise MnistlabError(
                f"cannot read the config of ensemble member {member}, so the validation "
                f"images of ensemble {run.name} are unknown; calibrate its members instead"
            ) from None
        splits.add((c.seed, c.val_size))
    if len(splits) > 1:
        shown = ", ".join(f"seed {seed} / val_size {size}" for seed, size in sorted(splits))
        raise MnistlabError(
            f"the members of ensemble {run.name} held out different validation images "
            f"({shown}): each one's validation split is partly another's training data, so "
            "no split is left to fit a temperature on; calibrate the members one by one"
        )


def format_calibration(record: dict[str, Any]) -> str:
    """Human-readable summary of a :func:`calibrate` result.

    Parameters
    ----------
    record : as returned by :func:`calibrate` (the content of ``calibration.json``).

    Returns
    -------
    Multi-line text (no trailing newline): the temperature, then ECE and NLL
    before and after scaling on the validation and test images.
    """
    lines = [
        f"run          {record.get('run', '')}",
        f"temperature  {record['temperature']:.4f}  (fitted on {record['n_fit']:,} "
        "validation images; > 1: the model was over-confident, < 1: under-confident)",
        "",
        f"{'':<16}{'before':>9}{'after':>9}",
    ]
    for split in ("validation", "test"):
        for key, title in (("ece", "ECE"), ("nll", "NLL")):
            before, after = record[split][key + "_before"], record[split][key + "_after"]
            lines.append(f"{split + ' ' + title:<16}{before:>9.4f}{after:>9.4f}")
    lines.append("")
    lines.append(
        f"ECE: expected calibration error, {record['ece_bins']} equal-width confidence bins; "
        "NLL: mean negative log-likelihood (nats)"
    )
    lines.append("accuracy is unchanged: scaling by a temperature keeps every prediction's argmax")
    return "\n".join(lines)


# -- text tables for the CLI ------------------------------------------------------------------


def format_metrics(metrics: dict[str, Any]) -> str:
    """Human-readable summary of a metrics dict: headline, per-class table, confusion matrix.

    Parameters
    ----------
    metrics : as returned by :func:`evaluate` or :func:`metrics_from_probs`.

    Returns
    -------
    Multi-line text (no trailing newline).

    Examples
    --------
    >>> m = metrics_from_probs(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    >>> print(format_metrics(m).splitlines()[0])
    test accuracy  1.0000  (0 errors in 2 images)
    """
    names = [str(c) for c in metrics["class_names"]]
    lines = []
    if "model" in metrics:
        lines.append(f"run            {metrics['run']}")
        lines.append(f"model          {metrics['model']} on {metrics['dataset']}")
    lines.append(
        f"test accuracy  {metrics['test_accuracy']:.4f}  "
        f"({metrics['n_errors']:,} errors in {metrics['n_test']:,} images)"
    )
    lines.append(f"test loss      {metrics['test_loss']:.4f}  (mean cross-entropy)")
    # Absent from metrics.json files written before these were added.
    for key, title in (("roc_auc", "ROC-AUC"), ("average_precision", "avg precision")):
        if isinstance(metrics.get(key), dict):
            lines.append(
                f"{title:<14} {_num(metrics[key]['macro'])}  macro, "
                f"{_num(metrics[key]['micro'])}  micro  (one-vs-rest)"
            )
    if metrics.get("ece") is not None:
        lines.append(
            f"ECE            {metrics['ece']:.4f}  "
            f"({metrics.get('ece_bins', N_BINS)} equal-width confidence bins)"
        )
    if isinstance(metrics.get("members"), dict):
        lines += format_members(metrics["members"], metrics["n_errors"])
    lines.append("")

    # Per-class table, scikit-learn's classification_report layout.
    width = max(12, *(len(n) for n in names))  # 12 = len("weighted avg")
    header = f"{'class':<{width}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"
    lines += [header, "-" * len(header)]
    for row in metrics["per_class"]:
        lines.append(
            f"{row['label']:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  "
            f"{row['f1']:>6.4f}  {row['support']:>7,}"
        )
    lines.append("-" * len(header))
    for key, title in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        avg = metrics[key]
        lines.append(
            f"{title:<{width}}  {avg['precision']:>9.4f}  {avg['recall']:>6.4f}  "
            f"{avg['f1']:>6.4f}  {metrics['n_test']:>7,}"
        )
    lines.append("")
    lines += _format_confusion(metrics["confusion_matrix"], names)
    return "\n".join(lines)


def format_members(members: dict[str, Any], ensemble_errors: int) -> list[str]:
    """Two lines on an ensemble's members (``metrics["members"]``, from
    :func:`mnistlab.analysis.member_overlap`): their errors, and how they overlap."""
    errors = ", ".join(f"{e:,}" for e in members["n_errors"])
    return [
        f"members        {members['n_members']} runs with {errors} errors "
        f"(mean {members['mean_member_errors']:.1f}); the ensemble {ensemble_errors:,}",
        f"               images wrong in every member {members['wrong_in_all']:,}, "
        f"in a majority {members['wrong_in_majority']:,}, in at least one "
        f"{members['wrong_in_any']:,}; "
        f"averaging fixed {members['fixed']:,} and missed {members['missed']:,}",
    ]


def _num(value: float | None) -> str:
    # Six decimals: a good convnet's ROC-AUC is 0.99998, which four would round to 1.
    return "    —   " if value is None else f"{value:.6f}"


def _format_confusion(cm: list[list[int]], names: list[str]) -> list[str]:
    # Columns are labelled by index: long names ("Ankle boot") would make the
    # matrix too wide for a terminal. Rows show the index and the name.
    k = len(names)
    cell = max(4, len(f"{max(max(r) for r in cm):,}"))
    show_names = any(name != str(i) for i, name in enumerate(names))
    row_label = [f"{i} {names[i]}" if show_names else str(i) for i in range(k)]
    lw = max(len("true"), *(len(s) for s in row_label))
    lines = ["confusion matrix (rows: true class, columns: predicted class)"]
    lines.append(f"{'true':<{lw}} " + "".join(f"{j:>{cell + 1}}" for j in range(k)))
    for i in range(k):
        lines.append(f"{row_label[i]:<{lw}} " + "".join(f"{v:>{cell + 1},}" for v in cm[i]))
    return lines
