"""Run directories: the hand-over between stages.

A run lives in ``<runs_dir>/<run-id>/``::

    config.json     every setting (mnistlab.config.TrainConfig)
    run.json        state (running | finished | interrupted | failed), timings, best epoch
    history.csv     one row per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds
    model.keras     the trained model (best validation weights); only once finished
    checkpoints/    what ``mnistlab train --resume`` continues from:
      resume.json     the commit record: last completed epoch, early-stopping state,
                      history, and which checkpoint files belong to it
      epoch-NNNN.keras  model + optimiser state after epoch NNNN (the last one, and
                      the best one so far when that is another epoch)
      last.keras      the same file as the newest committed epoch-NNNN.keras
    logs/           TensorBoard event files
    metrics.json    test-set metrics (written by ``evaluate``)
    figures/        PNG plots (written by ``report``)
    report.html     one self-contained page (written by ``report``)
    .lock           held (flock) by the process training the run; its content (the
                    holder's pid) is only for people

``<runs_dir>/latest`` is a symlink to the newest run. Stages read and write
these files; they do not call each other's internals.

Crash safety: every file above is written atomically (``mnistlab.files``: a
temporary name, fsync, rename), so a process killed at any moment leaves each
file either as it was or complete. Files that must agree with each other (a
checkpoint and its early-stopping state) are committed together by writing
``checkpoints/resume.json`` last. ``run.json`` says ``finished`` only after
``model.keras`` is complete; a run killed by SIGKILL keeps ``running`` with no
process holding ``.lock``, which :meth:`RunDir.require_finished` reports as
killed. The one exception is TensorBoard's ``logs/``: TensorFlow appends to
event files as training goes and cannot write them atomically. That is safe
because they are append-only records that nothing in mnistlab reads back; a
kill can cut the last event short, which TensorBoard skips, and a resumed run
appends a new event file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError

# How a cross-validation fold's data source begins (mnistlab.cv writes it, train records it).
CV_FOLD_SOURCE = "cross-validation fold"

# What --name may be: one directory name inside the runs directory.
_RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk; see the module docstring for its layout.

    :func:`mnistlab.train` returns one; :meth:`open` finds an existing one.

    Attributes
    ----------
    path : the directory; ``name`` is its last component, and ``config_path``,
        ``history_path``, ``model_path``, ``metrics_path``, ``figures_dir``,
        ``report_path`` are the files inside it.

    Examples
    --------
    >>> run = RunDir.open("latest", runs_dir="runs")
    >>> run.state()["state"], run.config().model
    ('finished', 'fnn')
    >>> metrics = run.metrics()  # after mnistlab.evaluate(run)
    """

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
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def checkpoint_path(self) -> Path:
        """The newest complete per-epoch checkpoint (model and optimiser state)."""
        return self.checkpoints_dir / "last.keras"

    @property
    def resume_path(self) -> Path:
        """The commit record of the last completed epoch (see the module docstring)."""
        return self.checkpoints_dir / "resume.json"

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

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
        if name is not None and not _RUN_NAME.fullmatch(name):
            raise MnistlabError(
                f"invalid run name {name!r}: use letters, digits, '.', '-' and '_' (no '/'), "
                "not starting with '.'; put the run elsewhere with --runs-dir"
            )
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
        candidates = list(dict.fromkeys([Path(ref), Path(runs_dir) / str(ref)]))
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
        """Merge ``fields`` into ``run.json`` (atomically); a field set to None is removed."""
        current = self.state() if self.state_path.exists() else {}
        merged = {**current, **fields}
        files.write_json(self.state_path, {k: v for k, v in merged.items() if v is not None})

    def require_finished(self) -> None:
        """Raise unless training finished and ``model.keras`` exists.

        Raises
        ------
        MnistlabError
            Saying whether the run is still training, was interrupted, failed or
            was killed (state left at ``running`` with no process training it),
            and the command that resumes it.
        """
        state = self.state().get("state")
        if state == "finished" and self.model_path.is_file():
            return
        if state == "running":
            why = (
                "it is still training in another process"
                if self.is_training()
                else "state: running, but no process is training it: it was killed"
            )
        elif state == "finished":
            why = "state: finished, but model.keras is missing"
        else:
            why = f"state: {state}"
        if self.is_ensemble():
            raise MnistlabError(
                f"ensemble run {self.path} is incomplete ({why}); make it again with "
                "'mnistlab ensemble' from its member runs (config.json lists them)"
            )
        raise MnistlabError(
            f"run {self.path} did not finish training ({why}); "
            f"resume it with: {self.resume_command()}"
        )

    def is_cv_fold(self) -> bool:
        """Whether ``mnistlab cv`` trained this run on one fold (its metrics are the fold's)."""
        return str(self.state().get("data_source", "")).startswith(CV_FOLD_SOURCE)

    def is_ensemble(self) -> bool:
        """Whether this run was made by ``mnistlab ensemble`` (it has no training to resume)."""
        try:
            return self.config().model == "ensemble"
        except MnistlabError:
            return False

    def resume_command(self) -> str:
        """The shell command that continues this run: ``mnistlab train --resume PATH``."""
        return f"mnistlab train --resume {shlex.quote(str(self.path))}"

    # -- the training lock ----------------------------------------------------
    @contextlib.contextmanager
    def training_lock(self) -> Iterator[None]:
        """Hold the run's lock while training it, so two processes never train one run.

        An advisory ``flock`` on ``.lock``: the kernel releases it when the
        holder exits, however it exits (SIGKILL included), so a killed run is
        never left locked.

        Raises
        ------
        MnistlabError
            If another process holds the lock (it is training this run now).
        """
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one process per run is then up to the user
            yield
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise MnistlabError(
                f"cannot lock run {self.path}: {files.describe_os_error(err)}"
            ) from err
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MnistlabError(
                    f"run {self.path} is being trained by another process right now; "
                    "wait for it to end (or stop it) before resuming"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # for people: who holds it
            yield
        finally:
            os.close(fd)  # releases the lock

    def is_training(self) -> bool:
        """True while some process holds the run's training lock."""
        try:
            import fcntl
        except ImportError:
            return False
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

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
