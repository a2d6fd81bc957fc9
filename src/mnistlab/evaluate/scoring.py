"""The stages that score a run: evaluate (metrics.json) and calibrate (calibration.json).

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
writes ``calibration.json`` (format: :mod:`mnistlab.evaluate.calibration`); the
model file is left as it is.

Runs are read and written through :mod:`mnistlab.runs`; what is particular to
an ensemble or a cross-validation fold is decided by the run's recorded kind.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.config import EnsembleConfig
from mnistlab.data import Dataset, load_dataset, to_float, train_val_split
from mnistlab.ensemble import with_member_outputs
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.analysis import member_overlap
from mnistlab.evaluate.calibration import (
    N_BINS,
    before_after,
    choose_calibrator,
    expected_calibration_error,
    risk_coverage,
)
from mnistlab.evaluate.metrics import metrics_from_probs
from mnistlab.evaluate.probabilities import apply_calibration
from mnistlab.runs import RunDir, load_calibration, load_predictions, load_run_model


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
    uncalibrated: bool = False,
) -> dict[str, Any]:
    """Score a finished run on its dataset's test set; write metrics.json.

    The probabilities scored are calibrated by the run's ``calibration.json`` when it
    has one (``mnistlab train`` fits it), unless ``uncalibrated``; ``metrics.json``
    then also records ``calibrated`` and the model's own ``ece_uncalibrated``.

    Parameters
    ----------
    run : a :class:`RunDir`, a run directory path, a run name inside
        ``runs_dir``, or ``"latest"``.
    dataset : already-loaded data (must be the run's ``config.dataset``);
        loaded from the cache if None.
    runs_dir : where run names are looked up.
    batch_size : images per prediction batch (memory only; results are the same).
    uncalibrated : score the model's own probabilities even when the run is calibrated.

    Returns
    -------
    The metrics dict written to ``metrics.json``: everything
    :func:`~.metrics.metrics_from_probs` returns, plus ``model``, ``dataset``,
    ``run`` (path), ``eval_seconds``, ``train_seconds`` (from ``run.json``, None
    if absent) and ``params_count``; for an ensemble also ``members`` (each
    member's errors and how they overlap). ``predictions.npz`` (``probs``
    float32 (N, 10), ``y_true`` uint8 (N,)) is written beside it.

    Examples
    --------
    >>> metrics = evaluate("latest")  # doctest: +SKIP
    >>> print(format_metrics(metrics))  # doctest: +SKIP
    """
    if batch_size < 1:
        raise MnistlabError(f"invalid batch_size={batch_size!r}: expected an integer >= 1")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    config = run.config()
    if dataset is None and run.kind == "cv-fold":
        # Its metrics.json holds its held-out fold's scores, which cv's summary is made of.
        raise MnistlabError(
            f"run {run.name} is a cross-validation fold, scored on its held-out fold; "
            "evaluating it on the test set would replace that score: leave it to 'mnistlab cv'"
        )
    dataset = run_dataset(run, dataset)

    model = load_run_model(run)
    # An ensemble's model also yields its members' probabilities, in the same pass.
    predictor = with_member_outputs(model) if run.kind == "ensemble" else model

    started = time.perf_counter()
    # float32 (N, 28, 28, 1) in [0, 1] -> softmax probabilities (N, 10)
    outputs = predictor.predict(to_float(dataset.x_test), batch_size=batch_size, verbose=0)
    eval_seconds = time.perf_counter() - started
    outputs = outputs if isinstance(outputs, list) else [outputs]
    raw_probs = np.asarray(outputs[-1], dtype=np.float32)
    calibration = None if uncalibrated else load_calibration(run)
    probs = apply_calibration(raw_probs, calibration).astype(np.float32)

    metrics = metrics_from_probs(dataset.y_test, probs, dataset.class_names)
    metrics["calibrated"] = calibration is not None
    # Selective accuracy against coverage, most confident first (the report's curve).
    metrics["risk_coverage"] = risk_coverage(dataset.y_test, probs, points=51)
    if calibration is not None:
        metrics["ece_uncalibrated"] = expected_calibration_error(dataset.y_test, raw_probs)
    state = run.record()
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "run": str(run.path),
        **metrics,
        "eval_seconds": round(eval_seconds, 3),
        "train_seconds": state.train_seconds,
        "params_count": int(state.params_count or model.count_params()),
    }
    if len(outputs) > 1:
        member_runs: list[str | None] = []
        if isinstance(config, EnsembleConfig):
            member_runs = list(config.members)
        if len(member_runs) != len(outputs) - 1:  # not written by mnistlab.ensemble
            member_runs = [None] * (len(outputs) - 1)
        metrics["members"] = {
            "runs": member_runs,
            **member_overlap(dataset.y_test, outputs[:-1], probs),
        }

    # Predictions first, metrics.json last: metrics.json marks a complete evaluation.
    run.write_predictions(
        dataset.y_test, probs, raw_probs=raw_probs if calibration is not None else None
    )
    if calibration is not None:  # what the calibration (fitted on validation) did on test
        test = before_after(dataset.y_test.astype(np.int64), raw_probs, calibration)
        run.write_calibration({**calibration, "test": test})
    run.write_metrics(metrics)
    return metrics


def calibrate(
    run: RunDir | str | Path,
    *,
    dataset: Dataset | None = None,
    runs_dir: str | Path = "runs",
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Fit a calibrator on the run's validation split; write calibration.json.

    Temperature scaling, or vector scaling when it calibrates held-out halves of the
    validation split clearly better (:func:`~.calibration.choose_calibrator`).

    The validation split is recreated exactly as training made it
    (:func:`mnistlab.data.train_val_split` with the run's ``val_size`` and
    ``seed``): images the weights were not fitted on, and not the test set.
    When the run was evaluated, the calibrator is then applied to the saved test
    predictions (the model's own) to report ECE and negative log-likelihood before
    and after; they play no part in the fit. ``model.keras`` is not changed.

    Parameters
    ----------
    run : a :class:`RunDir`, path, run name inside ``runs_dir``, or ``"latest"``.
    dataset : the run's dataset if already loaded; loaded from the cache if None.
    runs_dir : where run names are looked up.
    batch_size : images per prediction batch.

    Returns
    -------
    The dict written to ``calibration.json`` (format in :mod:`~.calibration`).

    Examples
    --------
    >>> record = calibrate("latest")  # doctest: +SKIP
    >>> record["temperature"], record["test"]["ece_after"]  # doctest: +SKIP
    """
    if batch_size < 1:
        raise MnistlabError(f"invalid batch_size={batch_size!r}: expected an integer >= 1")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    dataset = run_dataset(run, dataset)
    y_test, p_test = (
        load_predictions(run, uncalibrated=True)
        if run.predictions_path.is_file()
        else (dataset.y_test, None)
    )
    # A run trained on other images than the dataset's (a cross-validation fold)
    # has no validation split that train_val_split could recreate.
    if run.kind == "cv-fold" or (
        len(y_test) != len(dataset.y_test) or not np.array_equal(y_test, dataset.y_test)
    ):
        raise MnistlabError(
            f"run {run.name} was not evaluated on the {dataset.name} test set (a "
            "cross-validation fold?), so its validation split cannot be recreated; "
            "calibrate a run made by 'mnistlab train'"
        )

    seed, val_size = _validation_split_of(run)
    if val_size == 0:
        raise MnistlabError(
            f"run {run.name} trained on all training images (val_size 0), so no held-out "
            "validation split is left to fit a temperature on; calibrate a run trained "
            "with a validation split (the default --val-size 5000)"
        )
    # The same split train() made: same images, same seed.
    _, _, x_val, y_val = train_val_split(
        dataset.x_train, dataset.y_train, val_size=val_size, seed=seed
    )
    model = load_run_model(run)
    p_val = np.asarray(model.predict(to_float(x_val), batch_size=batch_size, verbose=0))
    record: dict[str, Any] = {
        **choose_calibrator(y_val, p_val, seed=seed),
        "fitted_on": "validation",
        "n_fit": int(len(y_val)),
        "val_size": val_size,
        "seed": seed,
        "ece_bins": N_BINS,
        "run": str(run.path),
    }
    record["validation"] = before_after(y_val, p_val, record)
    if p_test is not None:
        record["test"] = before_after(y_test.astype(np.int64), p_test, record)
    run.write_calibration(record)
    return record


def _validation_split_of(run: RunDir) -> tuple[int, int]:
    """(seed, val_size) of the images the run held out of training.

    An ensemble's are its members' when they all share them; a member's validation
    split is another member's training data unless they share seed and val_size, so
    a temperature fitted there would be fitted on trained-on images.
    """
    config = run.config()
    if not isinstance(config, EnsembleConfig):
        return config.seed, config.val_size
    splits = set()
    for member in config.members:
        try:
            c = RunDir(Path(member)).train_config()
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
    (split,) = splits
    return split
