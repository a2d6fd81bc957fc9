"""The training loop: one run from a config to a saved model in a run directory.

The loop is Keras ``fit``; this module only prepares what ``fit`` needs (data
pipeline, optimiser and schedule, callbacks) and records the run:

    load data -> stratified validation split (the test set is not touched)
    -> tf.data pipeline (per-epoch shuffle, optional augmentation, batch, prefetch)
    -> fit with early stopping on val_accuracy (best weights restored, or the
       last epoch's with ``keep="last"``)
    -> after every epoch: a checkpoint committed by checkpoints/resume.json
    -> model.keras, history.csv, run.json in the run directory

Surviving faults
----------------
A run can be stopped at any moment (SIGKILL, power cut, Ctrl-C, full disk) and
continued with ``train(resume=run)`` (``mnistlab train --resume RUN``) from its
last completed epoch, finishing exactly where an uninterrupted run would:

- *Model and optimiser*: ``checkpoints/epoch-NNNN.keras`` holds the weights and
  the optimiser's variables (Adam moments, step count). The learning-rate
  schedule is a function of the step count, so it continues where it was.
- *Early stopping*: best val_accuracy, its epoch and the wait counter are in
  ``checkpoints/resume.json``; the best weights are that epoch's checkpoint,
  kept until a better epoch replaces it.
- *Randomness*: everything random in epoch ``e`` is a pure function of
  ``(seed, e)``, not of what ran before: the shuffle order, the augmentation of
  each batch (stateless random ops seeded by ``(seed, global step)``), dropout
  (its seed state is reset at each epoch start) and the Python/NumPy/TensorFlow
  global seeds. Epoch ``e`` after a resume sees exactly what it would have seen.
- *Consistency*: the checkpoint files are written first, then ``resume.json``
  (atomically) names them: the commit. A kill before the commit leaves the
  previous epoch's commit, and its files, untouched.

With ``deterministic=True`` TensorFlow's op determinism is on, and a resumed run
ends with bit-identical weights to an uninterrupted one (on the same machine).

Ctrl-C is deferred to the next batch boundary, so it never cuts a checkpoint in
half; training then stops with :class:`TrainingInterrupted` (a
``KeyboardInterrupt``) whose message is the command that resumes. A second
Ctrl-C interrupts at once.
"""

from __future__ import annotations

import hashlib
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig, make_config
from mnistlab.data import Dataset, load_dataset, train_val_split
from mnistlab.errors import MnistlabError
from mnistlab.models import build_model
from mnistlab.runs import RunDir, RunKind
from mnistlab.train.callbacks import (
    MONITOR,
    CheckpointCommitter,
    EarlyStopper,
    EpochSeeds,
    HistoryWriter,
    InterruptCheck,
    StopOnDivergence,
    TrainingDiverged,
    deferred_sigint,
)
from mnistlab.train.checkpoints import Checkpoints, ResumePoint
from mnistlab.train.optimizer import compile_model
from mnistlab.train.pipeline import make_pipeline

# The kinds of run (run.json's "kind") that train() makes; an ensemble is made, not trained.
TRAINED_KINDS: tuple[RunKind, ...] = ("train", "cv-fold", "tune-trial")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; ``str(err)`` says what was kept and how to resume.

    Attributes
    ----------
    run : the run directory (state ``interrupted``).
    epochs_done : completed epochs saved in its checkpoint.
    """

    def __init__(self, run: RunDir, epochs_done: int, epochs: int) -> None:
        kept = (
            f"epochs 1-{epochs_done} of {epochs} are saved"
            if epochs_done
            else f"no epoch of {epochs} had finished"
        )
        super().__init__(
            f"training interrupted; {kept} in {run.path}; resume with: {run.resume_command()}"
        )
        self.run = run
        self.epochs_done = epochs_done


def train(
    config: TrainConfig | None = None,
    *,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    idx_dir: str | Path | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[Any] = (),
    run_name: str | None = None,
    resume: RunDir | str | Path | None = None,
    kind: RunKind = "train",
) -> RunDir:
    """Train a model as described by ``config`` and save it as a new run (or resume one).

    Parameters
    ----------
    config : the run's settings; default ``make_config("fnn")``. With ``resume``,
        leave it None (the run's ``config.json`` is used) or pass the same config.
    runs_dir : where run directories are created (``<runs_dir>/latest`` points
        to the newest); with ``resume``, where a run given by name is looked up.
    dataset : already-loaded data (must match ``config.dataset``); loaded if None.
        A resumed run must get the same training images it started with.
    idx_dir : directory with the official IDX files, passed to ``load_dataset``.
    verbose : Keras verbosity: ``"auto"`` shows a progress bar on a terminal
        and one line per epoch otherwise (logs, CI).
    callbacks : extra Keras callbacks (e.g. for pruning or benchmarking).
    run_name : name of the run directory instead of a timestamped one.
    resume : a run directory (``RunDir``, path, or name in ``runs_dir``) that did
        not finish: training continues from its last completed epoch.
    kind : what kind of run a new run directory records in ``run.json``:
        ``"train"``, or ``"cv-fold"`` / ``"tune-trial"`` for the runs that
        cross-validation and tuning train (ignored with ``resume``: the run
        keeps its kind).

    Returns
    -------
    RunDir of the finished run: ``model.keras`` holds the weights of the epoch
    with the best validation accuracy.

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C (SIGINT); the run is left ``interrupted`` and resumable.
    MnistlabError
        Bad settings, data that cannot be loaded, an unwritable run directory or a
        full disk (the run is left ``failed`` and resumable from its last epoch),
        or a ``resume`` of a run that finished, is training elsewhere, or gets
        other training data than it started with.

    Examples
    --------
    >>> run = train(make_config("fnn", epochs=2), runs_dir="runs")  # doctest: +SKIP
    >>> run.state()["state"]  # doctest: +SKIP
    'finished'
    >>> run = train(resume="runs/latest")  # after a crash or Ctrl-C  # doctest: +SKIP
    """
    import tensorflow as tf

    if kind not in TRAINED_KINDS:
        raise MnistlabError(
            f"invalid kind={kind!r}: a trained run is one of {', '.join(TRAINED_KINDS)}"
        )
    if resume is not None:
        run = resume if isinstance(resume, RunDir) else RunDir.open(resume, runs_dir)
        config = _config_for_resume(run, config, run_name)  # before the slow data load
    else:
        config = config or make_config("fnn")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    data = dataset or load_dataset(config.dataset, idx_dir=idx_dir)
    fingerprint = _fingerprint(data)
    x_tr, y_tr, x_val, y_val = train_val_split(
        data.x_train, data.y_train, val_size=config.val_size, seed=config.seed
    )
    steps_per_epoch = math.ceil(len(x_tr) / config.batch_size)

    model = None
    if resume is None:
        # Built before the run directory exists, so that settings the model refuses
        # (-p width=0, ...) leave nothing behind: no failed run, no new 'latest'.
        keras.utils.set_random_seed(config.seed)
        model = build_model(config.model, **config.params)
        run = RunDir.create(runs_dir, config, name=run_name, kind=kind)
        run.write_state(train_data=fingerprint)
    with run.training_lock():
        if resume is not None:
            _check_same_data(run, fingerprint)
        return _train_locked(
            run,
            config,
            data,
            (x_tr, y_tr, x_val, y_val),
            steps_per_epoch,
            verbose,
            callbacks,
            model,
        )


def _train_locked(
    run: RunDir,
    config: TrainConfig,
    data: Dataset,
    split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    steps_per_epoch: int,
    verbose: int | str,
    callbacks: Sequence[Any],
    new_model: Any = None,
) -> RunDir:
    """Train ``run`` (new or resumed) while holding its lock; record how it ended.

    ``new_model``: a new run's freshly built model (its seed set just before building).
    """
    import tensorflow as tf

    checkpoints = Checkpoints(run)
    try:
        model, rows, train_seconds = _fit(
            run, config, split, steps_per_epoch, checkpoints, verbose, callbacks, new_model
        )
    except KeyboardInterrupt:
        done = checkpoints.committed_epochs()
        _note_state(run, state="interrupted", epochs_run=done)
        raise TrainingInterrupted(run, done, config.epochs) from None
    except BaseException as err:
        done = checkpoints.committed_epochs()
        _note_state(run, state="failed", epochs_run=done, error=str(err)[:500])
        if isinstance(err, TrainingDiverged):
            raise MnistlabError(f"{err}; run {run.path} is marked failed") from err
        if isinstance(err, MnistlabError):
            raise MnistlabError(
                f"{err}; the run stopped after {done} of {config.epochs} epochs; "
                f"resume it with: {run.resume_command()}"
            ) from err
        raise

    scores = [row[MONITOR] for row in rows]
    validated = [score for score in scores if not math.isnan(score)]
    # None without a validation set (val_size=0): no epoch was the best, the last is kept.
    best_epoch = scores.index(max(validated)) + 1 if validated else None
    run.write_state(
        state="finished",
        finished=time.time(),
        train_seconds=round(train_seconds, 3),
        epochs_run=len(rows),
        best_epoch=best_epoch,
        best_val_accuracy=max(validated) if validated else None,
        kept_epoch=best_epoch if config.keep == "best" and best_epoch else len(rows),
        params_count=int(model.count_params()),
        data_source=data.source,
        error=None,  # a failure that was resumed from is over
        versions={
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
    )
    return run


def _fit(
    run: RunDir,
    config: TrainConfig,
    split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    steps_per_epoch: int,
    checkpoints: Checkpoints,
    verbose: int | str,
    callbacks: Sequence[Any],
    new_model: Any = None,
) -> tuple[Any, list[dict[str, float]], float]:
    """From the last commit (or the start) to ``model.keras``: (model, history rows, seconds)."""
    x_tr, y_tr, x_val, y_val = split
    point = checkpoints.load(steps_per_epoch)
    if point is None:
        # A fresh start (or a resume of a run killed in its first epoch): the same
        # initial weights as any run with this seed.
        checkpoints.clear()
        model = new_model
        if model is None:
            keras.utils.set_random_seed(config.seed)
            model = build_model(config.model, **config.params)
        compile_model(model, config, steps_per_epoch)
        point = ResumePoint(steps_per_epoch=steps_per_epoch)
    else:
        model = checkpoints.load_model(point)
        run.write_state(
            state="running",
            resumed=[*run.state().get("resumed", []), {"at": time.time(), "epoch": point.epoch}],
        )

    stopper = EarlyStopper(config.patience, point)
    if point.best_epoch:
        stopper.best_weights = checkpoints.load_weights(point.best_epoch, like=model)
    history = HistoryWriter(run.history_path, point.history)
    history.write()  # a killed run may have written a row it never committed: drop it
    committer = CheckpointCommitter(checkpoints, stopper, history, steps_per_epoch)
    committer.before = point.train_seconds
    interrupt = InterruptCheck()
    train_seconds = point.train_seconds  # earlier sessions, up to their last commit
    if point.epoch < config.epochs and not point.stopped:
        with deferred_sigint(interrupt):
            train_ds = make_pipeline(x_tr, y_tr, config, training=True, initial_epoch=point.epoch)
            # val_size=0: no validation set, so no val_* metrics and no early stopping.
            val_ds = make_pipeline(x_val, y_val, config, training=False) if len(y_val) else None
            committer.session_started = time.perf_counter()
            model.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=point.epoch,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=[
                    StopOnDivergence(),
                    EpochSeeds(config.seed),
                    history,
                    stopper,
                    committer,
                    interrupt,  # after the commit: Ctrl-C at an epoch's end keeps that epoch
                    keras.callbacks.TensorBoard(log_dir=str(run.logs_dir), write_graph=False),
                    *callbacks,
                ],
                shuffle=False,  # the pipeline shuffles, per epoch
                verbose=(1 if sys.stdout.isatty() else 2) if verbose == "auto" else verbose,
            )
            train_seconds = committer.train_seconds
    if config.keep == "best" and stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)
    with files.atomic_path(run.model_path, suffix=".keras") as tmp:
        model.save(tmp)
    return model, history.rows, train_seconds


def _config_for_resume(
    run: RunDir, config: TrainConfig | None, run_name: str | None
) -> TrainConfig:
    """The config to resume ``run`` with, after checking that it can be resumed."""
    if run.is_ensemble():
        raise MnistlabError(
            f"run {run.path} is an ensemble (made by 'mnistlab ensemble', not trained): there "
            "is nothing to resume; make it again with 'mnistlab ensemble' from its member runs"
        )
    if run.state().get("state") == "finished" and run.model_path.is_file():
        raise MnistlabError(
            f"run {run.path} already finished training; nothing to resume "
            f"(evaluate it with: mnistlab evaluate {run.path})"
        )
    saved = run.config()
    if not isinstance(saved, TrainConfig):  # an ensemble's config: refused above by its kind
        raise MnistlabError(f"run {run.path} has no training config to resume with")
    if config is not None and config != saved:
        raise MnistlabError(
            f"run {run.path} was started with another config; resume it with its own "
            "config.json (pass config=None / no training options with --resume)"
        )
    if run_name is not None:
        raise MnistlabError("run_name cannot be combined with resume: the run keeps its name")
    return saved


def _check_same_data(run: RunDir, fingerprint: dict[str, Any]) -> None:
    started_with = run.state().get("train_data")
    if started_with and started_with != fingerprint:
        raise MnistlabError(
            f"run {run.path} started with other training images ({started_with['images']} "
            f"images, sha256 {started_with['sha256'][:12]}...) than the ones given now "
            f"({fingerprint['images']}, {fingerprint['sha256'][:12]}...); resume it with "
            "the data it was trained on"
        )


def _fingerprint(data: Dataset) -> dict[str, Any]:
    """What a resumed run checks: the training images are the ones it started with."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train):
        digest.update(np.ascontiguousarray(array).data)  # ~50 MB for MNIST: ~0.1 s
    return {"dataset": data.name, "images": int(len(data.x_train)), "sha256": digest.hexdigest()}


def _note_state(run: RunDir, **fields: Any) -> None:
    # Best effort: when the disk is full, the error being raised matters more.
    try:
        run.write_state(**fields)
    except MnistlabError:
        pass
