"""A run's checkpoints: per-epoch model files and the commit record that names them.

``checkpoints/resume.json`` (a :class:`ResumePoint`) is written atomically after the
epoch's files, so it is the commit: a kill at any moment leaves either the new
commit or the previous one, never a half-written checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from mnistlab import files
from mnistlab.errors import MnistlabError
from mnistlab.models import load_saved_model
from mnistlab.runs import RunDir


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
