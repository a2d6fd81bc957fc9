"""Training: one run from a config to a saved model in a run directory.

The loop is Keras ``fit``; this module only prepares what ``fit`` needs (data
pipeline, optimiser and schedule, callbacks) and records the run:

    load data -> stratified validation split (the test set is not touched)
    -> tf.data pipeline (shuffle, optional augmentation, batch, prefetch)
    -> fit with EarlyStopping on val_accuracy (best weights restored)
    -> model.keras, history.csv, run.json in the run directory
"""

from __future__ import annotations

import csv
import io
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
from mnistlab.data import Dataset, load_dataset, to_float, train_val_split
from mnistlab.models import NUM_CLASSES, build_model
from mnistlab.runs import RunDir


def train(
    config: TrainConfig | None = None,
    *,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    idx_dir: str | Path | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[Any] = (),
    run_name: str | None = None,
) -> RunDir:
    """Train a model as described by ``config`` and save it as a new run.

    Parameters
    ----------
    config : the run's settings; default ``make_config("fnn")``.
    runs_dir : where run directories are created (``<runs_dir>/latest`` points
        to the newest).
    dataset : already-loaded data (must match ``config.dataset``); loaded if None.
    idx_dir : directory with the official IDX files, passed to ``load_dataset``.
    verbose : Keras verbosity: ``"auto"`` shows a progress bar on a terminal
        and one line per epoch otherwise (logs, CI).
    callbacks : extra Keras callbacks (e.g. for pruning or benchmarking).
    run_name : name of the run directory instead of a timestamped one.

    Returns
    -------
    RunDir of the finished run: ``model.keras`` holds the weights of the epoch
    with the best validation accuracy.

    Examples
    --------
    >>> run = train(make_config("fnn", epochs=2), runs_dir="runs")
    >>> run.state()["state"]
    'finished'
    """
    import tensorflow as tf

    config = config or make_config("fnn")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    data = dataset or load_dataset(config.dataset, idx_dir=idx_dir)
    x_tr, y_tr, x_val, y_val = train_val_split(
        data.x_train, data.y_train, val_size=config.val_size, seed=config.seed
    )
    train_ds = make_pipeline(x_tr, y_tr, config, training=True)
    val_ds = make_pipeline(x_val, y_val, config, training=False)
    steps_per_epoch = int(np.ceil(len(x_tr) / config.batch_size))

    model = build_model(config.model, **config.params)
    compile_model(model, config, steps_per_epoch)

    run = RunDir.create(runs_dir, config, name=run_name)
    history = HistoryWriter(run.history_path)
    all_callbacks = [
        history,
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=config.patience,
            restore_best_weights=True,
            verbose=0,
        ),
        EpochCheckpoint(run.checkpoint_path),
        keras.callbacks.TensorBoard(log_dir=str(run.logs_dir), write_graph=False),
        *callbacks,
    ]
    started = time.perf_counter()
    try:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            callbacks=all_callbacks,
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=(1 if sys.stdout.isatty() else 2) if verbose == "auto" else verbose,
        )
    except BaseException:
        run.write_state(state="interrupted", epochs_run=len(history.rows))
        raise
    train_seconds = time.perf_counter() - started

    with files.atomic_path(run.model_path, suffix=".keras") as tmp:
        model.save(tmp)
    val_acc = [row["val_accuracy"] for row in history.rows]
    best = int(np.argmax(val_acc))
    run.write_state(
        state="finished",
        finished=time.time(),
        train_seconds=round(train_seconds, 3),
        epochs_run=len(history.rows),
        best_epoch=best + 1,
        best_val_accuracy=float(val_acc[best]),
        params_count=int(model.count_params()),
        data_source=data.source,
        versions={
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
    )
    return run


def make_pipeline(x: np.ndarray, y: np.ndarray, config: TrainConfig, *, training: bool) -> Any:
    """A ``tf.data`` pipeline of (float32 (B, 28, 28, 1), one-hot (B, 10)) batches.

    Training batches are reshuffled every epoch (seeded) and, when
    ``config.augment > 0``, randomly rotated, shifted and zoomed on parallel
    threads so both cores stay busy while the model trains.
    """
    import tensorflow as tf

    # One-hot targets so the loss can apply label smoothing.
    ds = tf.data.Dataset.from_tensor_slices((to_float(x), np.eye(NUM_CLASSES, dtype="float32")[y]))
    if training:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    if training and config.augment > 0:
        augmenter = make_augmenter(config.augment, config.seed)
        ds = ds.map(
            lambda a, b: (augmenter(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def make_augmenter(strength: float, seed: int) -> Any:
    """Small random rotations, shifts and zooms (Keras preprocessing layers).

    At strength 1: up to +-18 degrees (0.05 of a turn), 10% shift, 10% zoom.
    Digits must stay recognisable, so no flips.
    """
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomRotation(0.05 * strength, fill_mode="constant", seed=seed),
            layers.RandomTranslation(
                0.1 * strength, 0.1 * strength, fill_mode="constant", seed=seed + 1
            ),
            layers.RandomZoom(0.1 * strength, fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


def compile_model(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    """Attach optimiser, learning-rate schedule, loss and metric from ``config``."""

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


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites ``history.csv`` atomically after every epoch (never half a file)."""

    COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.rows: list[dict[str, float]] = []

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
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        files.write_text(self.path, buf.getvalue())


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the full model (weights and optimiser state) after every epoch, atomically."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with files.atomic_path(self.path, suffix=".keras") as tmp:
            self.model.save(tmp)
