"""The Keras callbacks of a training run: seeds, divergence, history, early stopping,
checkpoint commits and a Ctrl-C that waits for the next batch boundary.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistlab import files
from mnistlab.errors import MnistlabError
from mnistlab.train.checkpoints import Checkpoints, ResumePoint
from mnistlab.train.seeds import derive_seed

MONITOR = "val_accuracy"  # early stopping and "best epoch" use this, on the validation split


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
def deferred_sigint(interrupt: InterruptCheck) -> Iterator[None]:
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
