"""Run directories: the hand-over between stages.

A run lives in ``<runs_dir>/<run-id>/``::

    config.json     every setting (mnistlab.config.TrainConfig)
    run.json        state (running | finished | interrupted), timings, best epoch
    history.csv     one row per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds
    model.keras     the trained model (best validation weights)
    checkpoints/    last.keras, written after every epoch
    logs/           TensorBoard event files
    metrics.json    test-set metrics (written by ``evaluate``)
    figures/        PNG plots (written by ``report``)
    report.html     one self-contained page (written by ``report``)

``<runs_dir>/latest`` is a symlink to the newest run. Stages read and write
these files; they do not call each other's internals.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk; see the module docstring for its layout."""

    path: Path

    # -- layout -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def state_path(self) -> Path:
        return self.path / "run.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.csv"

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoints" / "last.keras"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    # -- creation and lookup ------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, config: TrainConfig, name: str | None = None) -> RunDir:
        """Make a fresh run directory, write ``config.json`` and point ``latest`` at it."""
        runs_dir = Path(runs_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = name or f"{stamp}-{config.model}-s{config.seed}"
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            # Two runs started in the same second get -2, -3, ... rather than sharing a dir.
            for i in range(1, 1000):
                path = runs_dir / (base if i == 1 else f"{base}-{i}")
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    continue
            else:
                raise MnistlabError(f"too many runs named {base} in {runs_dir}")
        except OSError as err:
            raise MnistlabError(
                f"cannot create a run in {runs_dir}: {err.strerror or err}; "
                "pass --runs-dir with a writable directory"
            ) from err
        run = cls(path)
        files.write_json(run.config_path, config.to_dict())
        run.write_state(state="running", started=time.time())
        _point_latest(runs_dir, path)
        return run

    @classmethod
    def open(cls, ref: str | Path, runs_dir: str | Path = "runs") -> RunDir:
        """Find an existing run by path, by name inside ``runs_dir``, or ``latest``."""
        candidates = [Path(ref), Path(runs_dir) / str(ref)]
        for cand in candidates:
            if (cand / "config.json").is_file():
                return cls(cand.resolve())
        raise MnistlabError(
            f"no run directory at {ref!s} (looked for config.json in "
            f"{' and '.join(str(c) for c in candidates)}); train one with 'mnistlab train'"
        )

    # -- contents -----------------------------------------------------------
    def config(self) -> TrainConfig:
        return TrainConfig.load(self.config_path)

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {"state": "unknown"}

    def write_state(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` (atomically)."""
        current = self.state() if self.state_path.exists() else {}
        files.write_json(self.state_path, {**current, **fields})

    def require_finished(self) -> None:
        """Raise unless training finished and ``model.keras`` exists."""
        state = self.state().get("state")
        if state != "finished" or not self.model_path.is_file():
            raise MnistlabError(
                f"run {self.path} did not finish training (state: {state}); "
                "resume it or train a new run"
            )

    def metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MnistlabError(
                f"run {self.path} has no readable metrics.json; run 'mnistlab evaluate {self.path}'"
            ) from err


def _point_latest(runs_dir: Path, target: Path) -> None:
    # Replace the symlink atomically: make a temporary link, then rename over 'latest'.
    link = runs_dir / "latest"
    tmp = runs_dir / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target.name)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)  # no symlinks (some filesystems): 'latest' is a convenience
