"""Training: one run from a config to a saved model in a run directory.

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

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig, make_config
from mnistlab.data import Dataset, load_dataset, to_float, train_val_split
from mnistlab.errors import MnistlabError
from mnistlab.models import NUM_CLASSES, build_model, load_saved_model
from mnistlab.runs import RunDir

MONITOR = "val_accuracy"  # early stopping and "best epoch" use this, on the validation split


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
    >>> run = train(make_config("fnn", epochs=2), runs_dir="runs")
    >>> run.state()["state"]
    'finished'
    >>> run = train(resume="runs/latest")  # after a crash or Ctrl-C
    """
    import tensorflow as tf

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
        run = RunDir.create(runs_dir, config, name=run_name)
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
        with _deferred_sigint(interrupt):
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


# %% The data pipeline ----------------------------------------------------------------


def make_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    *,
    training: bool,
    initial_epoch: int = 0,
) -> Any:
    """A ``tf.data`` pipeline of (float32 (B, 28, 28, 1), one-hot (B, 10)) batches.

    Validation (``training=False``): the images in order, one pass.

    Training: epochs ``initial_epoch .. config.epochs - 1`` back to back, each a
    full pass in the order :func:`epoch_order` gives for ``(config.seed, epoch)``,
    the last batch of an epoch possibly smaller (so ``fit`` needs
    ``steps_per_epoch``). With ``config.augment > 0`` each batch is randomly
    rotated, shifted and zoomed by :func:`augment_batch`, seeded by
    ``(config.seed, global step)``, on parallel threads so both cores stay busy.

    Parameters
    ----------
    x : uint8 images (N, 28, 28).
    y : labels (N,).
    config : batch size, seed, epochs, augmentation strength.
    training : training (shuffled, augmented, many epochs) or validation.
    initial_epoch : the first epoch to produce (0-based), when resuming.

    Returns
    -------
    tf.data.Dataset
    """
    import tensorflow as tf

    images = to_float(x)
    targets = np.eye(NUM_CLASSES, dtype="float32")[y]  # one-hot so the loss can smooth labels
    if not training:
        ds = tf.data.Dataset.from_tensor_slices((images, targets)).batch(config.batch_size)
        return _without_autotune(ds.prefetch(2))

    if not 0 <= initial_epoch < config.epochs:
        raise MnistlabError(
            f"invalid initial_epoch={initial_epoch}: expected 0 to {config.epochs - 1}"
        )
    n, batch = len(x), config.batch_size
    steps_per_epoch = math.ceil(n / batch)
    epochs = np.arange(initial_epoch, config.epochs, dtype=np.int64)
    orders = np.stack([epoch_order(config.seed, int(e), n) for e in epochs])  # (E, N) int32
    images_t, targets_t = tf.constant(images), tf.constant(targets)
    augment_seed = tf.constant(derive_seed(config.seed, "augment"), tf.int64)
    # Plain TensorFlow ops, no Python control flow: autograph is not needed (and it
    # would re-read this file's source, which may have changed since it was imported).
    plain = tf.autograph.experimental.do_not_convert

    @plain
    def one_epoch(epoch: Any, order: Any) -> Any:
        # (global step, indices of one batch), for every batch of this epoch.
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch).enumerate()
        return batches.map(plain(lambda i, idx: (epoch * steps_per_epoch + i, idx)))

    @plain
    def gather(step: Any, idx: Any) -> Any:
        return step, tf.gather(images_t, idx), tf.gather(targets_t, idx)

    @plain
    def augment(step: Any, xb: Any, yb: Any) -> Any:
        return augment_batch(xb, tf.stack([augment_seed, step]), config.augment), yb

    workers = os.cpu_count() or 2
    ds = tf.data.Dataset.from_tensor_slices((epochs, orders)).flat_map(one_epoch)
    ds = ds.map(gather, num_parallel_calls=workers)
    if config.augment > 0:
        # Parallel, and the output order stays deterministic (tf.data's default).
        ds = ds.map(augment, num_parallel_calls=workers)
    else:
        ds = ds.map(plain(lambda step, xb, yb: (xb, yb)))
    return _without_autotune(ds.prefetch(workers))


def _without_autotune(ds: Any) -> Any:
    """Turn off tf.data's autotuning (the pipeline sets its parallelism itself).

    With autotuning on, ``fit`` often returned seconds after its last epoch,
    with the CPU idle: deleting the iterator waited for the autotuner's thread,
    which sleeps for doubling periods (10 ms, 20 ms, ... up to 60 s) and was not
    woken. ``fit`` then returned at 1.27, 2.55, 10.23, 20.47 ... s after the
    iterator started (the sums of those periods) instead of when training ended.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits ``n`` training images.

    A pure function of ``(seed, epoch, n)``: a resumed run sees the same order.

    Examples
    --------
    >>> epoch_order(0, 3, 5).tolist() == epoch_order(0, 3, 5).tolist()
    True
    """
    return np.random.default_rng([seed % 2**64, epoch, 0x5EED]).permutation(n).astype(np.int32)


def derive_seed(seed: int, *key: int | str) -> int:
    """A 31-bit seed for one purpose (``key``), derived from the run's ``seed``.

    Distinct keys give independent streams; the same key always the same seed.
    """
    words = [seed % 2**64] + [
        int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "big") if isinstance(k, str) else k
        for k in key
    ]
    return int(np.random.SeedSequence(words).generate_state(1)[0]) & 0x7FFFFFFF


def augment_batch(images: Any, seed: Any, strength: float) -> Any:
    """Random rotation, shift and zoom of a batch; a pure function of ``seed``.

    At strength 1: up to +-18 degrees (0.05 of a turn), a shift of up to 10% of
    the side, a zoom of up to +-10%; digits must stay recognisable, so no flips.
    Empty borders are black (0), like MNIST's background.

    Parameters
    ----------
    images : float32 (B, H, W, C) tensor.
    seed : int64 (2,) tensor for TensorFlow's stateless random ops.
    strength : scales all three ranges.

    Returns
    -------
    float32 (B, H, W, C) tensor.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    u = tf.random.stateless_uniform([b, 4], seed=seed, minval=-1.0, maxval=1.0)
    return keras.ops.image.affine_transform(
        images,
        augment_transforms(u, strength, h, w),
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=0,
    )


def augment_transforms(u: Any, strength: float, height: Any, width: Any) -> Any:
    """The affine transforms of :func:`augment_batch`, from its uniform draws.

    Parameters
    ----------
    u : float32 (B, 4) in [-1, 1]: rotation, x shift, y shift, zoom.
    strength : scales all three ranges.
    height, width : image size in pixels.

    Returns
    -------
    float32 (B, 8) transforms for ``keras.ops.image.affine_transform`` (any
    Keras backend; ``tools/screen_variants.py`` uses it without TensorFlow).
    """
    ops = keras.ops
    angle = u[:, 0] * (0.05 * strength * 2 * math.pi)  # radians
    tx, ty = u[:, 1] * (0.1 * strength) * width, u[:, 2] * (0.1 * strength) * height  # pixels
    zoom = 1.0 + u[:, 3] * (0.1 * strength)  # > 1: the digit looks smaller
    # The transform maps each output pixel (x, y) to the input point it samples:
    # input = centre + zoom * R(angle) @ (output - centre - shift).
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = zoom * ops.cos(angle), zoom * ops.sin(angle)
    ox, oy = cx + tx, cy + ty
    zeros = ops.zeros_like(angle)
    return ops.stack(
        [cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy, zeros, zeros],
        axis=1,
    )


# %% The model's optimiser ---------------------------------------------------------------


def compile_model(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    """Attach optimiser, learning-rate schedule, loss and metric from ``config``.

    The schedule is a function of the optimiser's step count, which checkpoints
    save, so a resumed run continues on the same curve.
    """

    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        lr: Any = config.learning_rate
    else:
        # Linear warm-up from 0 to the peak, then cosine decay to 0 at the last epoch.
        warmup = (
            int(0.3 * total)
            if config.schedule == "onecycle"
            else int(config.warmup_epochs * steps_per_epoch)
        )
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=max(total - warmup, 1),
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if config.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


# %% Checkpoints -------------------------------------------------------------------------


@dataclass
class ResumePoint:
    """What ``checkpoints/resume.json`` records after a completed epoch.

    Attributes
    ----------
    epoch : completed epochs (0: none yet).
    checkpoint : file name of that epoch's model + optimiser checkpoint.
    best, best_epoch, wait : early-stopping state (best val_accuracy, its 1-based
        epoch, epochs since it improved); ``best_epoch``'s checkpoint file holds
        the best weights.
    stopped : early stopping ended training at ``epoch``.
    history : the rows of history.csv up to ``epoch``.
    train_seconds : training time up to ``epoch``, over all sessions.
    steps_per_epoch : optimiser steps per epoch (a consistency check).
    """

    epoch: int = 0
    checkpoint: str = ""
    best: float = float("-inf")
    best_epoch: int = 0
    wait: int = 0
    stopped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    steps_per_epoch: int = 0


class Checkpoints:
    """A run's ``checkpoints/`` directory: per-epoch model files and their commit record.

    ``commit`` writes ``epoch-NNNN.keras`` (atomically), then ``resume.json``
    naming it and the best epoch's file (atomically: the commit), then removes
    files no commit names any more and points ``last.keras`` at the new file.
    A kill at any point leaves a consistent commit: the new one or the previous.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.dir = run.checkpoints_dir

    @staticmethod
    def file_name(epoch: int) -> str:
        return f"epoch-{epoch:04d}.keras"

    def load(self, steps_per_epoch: int) -> ResumePoint | None:
        """The committed resume point, or None if no epoch was committed."""
        path = self.run.resume_path
        if not path.is_file():
            return None
        try:
            point = ResumePoint(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise MnistlabError(
                f"cannot read {path}: {err}; the run cannot be resumed, train a new one"
            ) from err
        if point.steps_per_epoch != steps_per_epoch:
            raise MnistlabError(
                f"{path} was written with {point.steps_per_epoch} steps per epoch, "
                f"not {steps_per_epoch}: the data or batch size changed; train a new run"
            )
        for epoch in {point.epoch, point.best_epoch} - {0}:
            if not (self.dir / self.file_name(epoch)).is_file():
                raise MnistlabError(
                    f"checkpoint {self.dir / self.file_name(epoch)} named by {path} is "
                    "missing; the run cannot be resumed, train a new one"
                )
        return point

    def committed_epochs(self) -> int:
        """Completed epochs saved by the last commit (0 if none)."""
        try:
            return int(json.loads(self.run.resume_path.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def load_model(self, point: ResumePoint) -> Any:
        """The compiled model of ``point``'s epoch, optimiser state included."""
        path = self.dir / point.checkpoint
        model = load_saved_model(path, compile=True, hint="start a new run instead of --resume")
        steps = int(model.optimizer.iterations.numpy())
        if steps != point.epoch * point.steps_per_epoch:
            raise MnistlabError(
                f"checkpoint {path} is at optimiser step {steps}, not "
                f"{point.epoch * point.steps_per_epoch} (epoch {point.epoch}); it does not "
                "belong to this run's commit record; train a new run"
            )
        return model

    def load_weights(self, epoch: int, like: Any) -> list[np.ndarray]:
        """The weights saved after ``epoch``, for a model built like ``like``."""
        model = keras.models.clone_model(like)
        model.load_weights(self.dir / self.file_name(epoch))
        return model.get_weights()

    def commit(self, model: Any, point: ResumePoint) -> None:
        """Save ``model`` as epoch ``point.epoch`` and commit ``point``."""
        name = self.file_name(point.epoch)
        with files.atomic_path(self.dir / name, suffix=".keras") as tmp:
            model.save(tmp)
        point.checkpoint = name
        files.write_json(self.run.resume_path, point.__dict__)  # the commit
        keep = {name, self.file_name(point.best_epoch)}
        self._remove_all_but(keep)
        files.link_or_copy(self.dir / name, self.run.checkpoint_path)

    def clear(self) -> None:
        """Start over: no commit, no checkpoint files (a run killed in epoch 1)."""
        self.run.resume_path.unlink(missing_ok=True)
        self.run.checkpoint_path.unlink(missing_ok=True)
        self._remove_all_but(set())

    def _remove_all_but(self, keep: set[str]) -> None:
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            # Old epochs, and temporaries a killed writer left (".epoch-0003.keras.x.tmp").
            stale = (path.name.startswith("epoch-") and path.name not in keep) or (
                path.name.startswith(".") and ".tmp" in path.name
            )
            if stale:
                path.unlink(missing_ok=True)


# %% Callbacks -----------------------------------------------------------------------------


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch start, make the epoch's randomness a function of ``(seed, epoch)``.

    Reseeds Python, NumPy and TensorFlow, and resets the state of every Keras
    seed generator in the model (dropout's), which is not saved in checkpoints.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        keras.utils.set_random_seed(derive_seed(self.seed, epoch, "global"))
        # Keras names these variables "seed_generator_state": shape (2,), [seed, counter].
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for i, state in enumerate(states):
            state.assign(np.array([derive_seed(self.seed, epoch, i), 0], dtype=state.dtype))


class TrainingDiverged(MnistlabError):
    """The training loss became NaN or infinite: resuming would only diverge again."""


class StopOnDivergence(keras.callbacks.Callback):
    """End training with :class:`TrainingDiverged` when an epoch's loss is not finite.

    Placed first among the callbacks, so that the diverged epoch is neither written to
    ``history.csv`` nor committed as a checkpoint.
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: the loss is {float(loss)}; "
                "train again with a lower learning rate (--lr)"
            )


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites ``history.csv`` atomically after every epoch (never half a file)."""

    COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

    def __init__(self, path: Path, rows: Sequence[dict[str, float]] = ()) -> None:
        super().__init__()
        self.path = path
        self.rows: list[dict[str, float]] = [dict(row) for row in rows]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        opt = self.model.optimizer
        row = {
            "epoch": epoch + 1,
            **{k: float(logs.get(k, float("nan"))) for k in self.COLUMNS[1:5]},
            "lr": float(
                opt.learning_rate.numpy()
                if hasattr(opt.learning_rate, "numpy")
                else opt.learning_rate
            ),
            "seconds": round(time.perf_counter() - self._t0, 3),
        }
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        files.write_text(self.path, buf.getvalue())


class EarlyStopper(keras.callbacks.Callback):
    """Early stopping on val_accuracy whose state is saved with every checkpoint.

    The rule of ``keras.callbacks.EarlyStopping(monitor="val_accuracy",
    mode="max", patience=patience, restore_best_weights=True)``: an epoch
    improves if its val_accuracy is strictly higher than the best so far;
    training stops once ``patience`` epochs in a row did not improve. The best
    weights are kept in memory (restored by :func:`train` at the end) and on
    disk as that epoch's checkpoint.
    """

    def __init__(self, patience: int, point: ResumePoint) -> None:
        super().__init__()
        self.patience = patience
        self.best, self.best_epoch, self.wait = point.best, point.best_epoch, point.wait
        self.stopped = point.stopped
        self.best_weights: list[np.ndarray] | None = None  # set by train() when resuming

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if MONITOR not in logs:
            return  # no validation set (val_size=0): nothing to stop on
        value = float(logs[MONITOR])
        if value > self.best:
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped = True
                self.model.stop_training = True


class CheckpointCommitter(keras.callbacks.Callback):
    """After every epoch: save the model and commit the resume point (see Checkpoints)."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        stopper: EarlyStopper,
        history: HistoryWriter,
        steps_per_epoch: int,
    ) -> None:
        super().__init__()
        self.checkpoints, self.stopper, self.history = checkpoints, stopper, history
        self.steps_per_epoch = steps_per_epoch
        self.before = 0.0  # training time of earlier sessions
        self.session_started: float | None = None

    @property
    def train_seconds(self) -> float:
        """Training time so far, earlier sessions included."""
        now = time.perf_counter()
        return self.before + (now - self.session_started if self.session_started else 0.0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        point = ResumePoint(
            epoch=epoch + 1,
            best=self.stopper.best,
            best_epoch=self.stopper.best_epoch,
            wait=self.stopper.wait,
            stopped=self.stopper.stopped,
            history=self.history.rows,
            train_seconds=round(self.train_seconds, 3),
            steps_per_epoch=self.steps_per_epoch,
        )
        self.checkpoints.commit(self.model, point)


class InterruptCheck(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the next batch or epoch boundary once ``requested``."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = threading.Event()

    def _check(self, *args: Any, **kwargs: Any) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_begin = on_epoch_end = _check


@contextlib.contextmanager
def _deferred_sigint(interrupt: InterruptCheck) -> Iterator[None]:
    """While training: Ctrl-C asks ``interrupt`` to stop at the next boundary.

    Only in the main thread, and only if SIGINT has Python's default handler (a
    worker process that ignores SIGINT keeps ignoring it). A second Ctrl-C
    raises KeyboardInterrupt at once.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if interrupt.requested.is_set():
            raise KeyboardInterrupt
        interrupt.requested.set()
        print(
            "\nmnistlab: Ctrl-C: stopping at the next batch (press again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
