"""Run directories: the hand-over between stages, and the one API that reads and writes them.

A run lives in ``<runs_dir>/<run-id>/``::

    config.json     every setting (mnistlab.config.TrainConfig; an ensemble's
                    mnistlab.config.EnsembleConfig: its members)
    run.json        kind (train | ensemble | cv-fold | tune-trial), state (running |
                    finished | interrupted | failed), timings, best epoch
                    (mnistlab.runs.records.RunRecord)
    history.csv     one row per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds
    model.keras     the trained model (best validation weights); only once finished
    checkpoints/    what ``mnistlab train --resume`` continues from:
      resume.json     the commit record: last completed epoch, early-stopping state,
                      history, and which checkpoint files belong to it
      epoch-NNNN.keras  model + optimiser state after epoch NNNN (the last one, and
                      the best one so far when that is another epoch)
      last.keras      the same file as the newest committed epoch-NNNN.keras
    logs/           TensorBoard event files
    metrics.json    test-set metrics (written by ``evaluate``; records.MetricsRecord)
    predictions.npz the test-set probabilities behind metrics.json (``evaluate``)
    calibration.json  the temperature fitted by ``calibrate`` (records.CalibrationRecord)
    abstention.json when predict says "not a digit" / "unsure" (``mnistlab.trust``;
                    records.AbstentionRecord); ood_detector.npz its feature statistics
    robustness.json accuracy under the MNIST-C corruptions (``robustness``;
                    records.RobustnessRecord), its figures in figures/
    figures/        PNG plots (written by ``report``)
    report.html     one self-contained page (written by ``report``)
    .lock           held (flock) by the process training the run; its content (the
                    holder's pid) is only for people

``<runs_dir>/latest`` is a symlink to the newest run. Stages read and write
these files through :class:`RunDir` (and :mod:`mnistlab.runs.loading` for the
model, calibration and predictions); they do not call each other's internals.
A stage that must treat a kind of run apart asks :attr:`RunDir.kind`, never
the run's names or strings (runs written before kinds: :mod:`~.migration`).

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

import numpy as np

from mnistlab import files
from mnistlab.config import EnsembleConfig, RunConfig, TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.runs.migration import infer_kind, migrate_config
from mnistlab.runs.records import (
    RUN_KINDS,
    AbstentionRecord,
    CalibrationRecord,
    MetricsRecord,
    RobustnessRecord,
    RunKind,
    RunRecord,
    check_record,
)

PREDICTIONS_FILE = "predictions.npz"
CALIBRATION_FILE = "calibration.json"
ROBUSTNESS_FILE = "robustness.json"
ABSTENTION_FILE = "abstention.json"
OOD_DETECTOR_FILE = "ood_detector.npz"

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
    With a run trained and evaluated in ``runs/``:

    >>> run = RunDir.open("latest", runs_dir="runs")  # doctest: +SKIP
    >>> run.kind, run.state()["state"], run.config().model  # doctest: +SKIP
    ('train', 'finished', 'fnn')
    >>> metrics = run.metrics()  # doctest: +SKIP
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

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def calibration_path(self) -> Path:
        return self.path / CALIBRATION_FILE

    @property
    def robustness_path(self) -> Path:
        return self.path / ROBUSTNESS_FILE

    @property
    def abstention_path(self) -> Path:
        return self.path / ABSTENTION_FILE

    @property
    def ood_detector_path(self) -> Path:
        return self.path / OOD_DETECTOR_FILE

    # -- creation and lookup ------------------------------------------------
    @classmethod
    def create(
        cls,
        runs_dir: str | Path,
        config: RunConfig,
        name: str | None = None,
        kind: RunKind = "train",
    ) -> RunDir:
        """Make a fresh run directory, write ``config.json`` and point ``latest`` at it.

        Parameters
        ----------
        runs_dir : where the run directory is made.
        config : a :class:`TrainConfig`, or an :class:`EnsembleConfig` for ``kind="ensemble"``.
        name : the directory's name (default ``<timestamp>-<model>-s<seed>``, for an
            ensemble ``<timestamp>-ensemble-<members>``).
        kind : what the run is (recorded in ``run.json``): ``"train"``, ``"ensemble"``,
            ``"cv-fold"`` or ``"tune-trial"``.
        """
        runs_dir = Path(runs_dir)
        if kind not in RUN_KINDS:
            raise MnistlabError(f"invalid kind={kind!r}: expected {' | '.join(RUN_KINDS)}")
        if (kind == "ensemble") != isinstance(config, EnsembleConfig):
            raise MnistlabError(
                f"a run of kind {kind!r} cannot have a config of type {type(config).__name__}: "
                "an ensemble's config is an EnsembleConfig, every other run's a TrainConfig"
            )
        if name is not None and not _RUN_NAME.fullmatch(name):
            raise MnistlabError(
                f"invalid run name {name!r}: use letters, digits, '.', '-' and '_' (no '/'), "
                "not starting with '.'; put the run elsewhere with --runs-dir"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if isinstance(config, EnsembleConfig):
            default = f"{stamp}-ensemble-{len(config.members)}"
        else:
            default = f"{stamp}-{config.model}-s{config.seed}"
        base = name or default
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
        run.write_state(kind=kind, state="running", started=time.time())
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
    @property
    def kind(self) -> RunKind:
        """What the run is: ``"train"``, ``"ensemble"``, ``"cv-fold"`` or ``"tune-trial"``.

        Recorded in ``run.json``; a run written before kinds were recorded (or whose
        run.json is lost) gets the kind :func:`~.migration.infer_kind` infers.
        """
        return self._kind_of(self._read_state())

    def _kind_of(self, state: dict[str, Any]) -> RunKind:
        recorded = state.get("kind")
        if recorded in RUN_KINDS:
            return recorded
        return infer_kind(state, self._read_config(), self.path)

    def config(self) -> RunConfig:
        """``config.json``: a :class:`TrainConfig` (an ensemble's: an :class:`EnsembleConfig`)."""
        if self.kind == "ensemble":
            raw = self._read_config()
            if raw is None:  # unreadable: load() says why
                return EnsembleConfig.load(self.config_path)
            try:
                return EnsembleConfig.from_dict(migrate_config(raw))
            except MnistlabError as err:
                raise MnistlabError(f"cannot read run config {self.config_path}: {err}") from err
        return TrainConfig.load(self.config_path)

    def train_config(self) -> TrainConfig:
        """The training config of a trained run; an ensemble (not trained) has none."""
        config = self.config()
        if isinstance(config, EnsembleConfig):
            raise MnistlabError(
                f"run {self.path} is an ensemble (made by 'mnistlab ensemble', not trained): "
                "it has no training config; its members have theirs"
            )
        return config

    def state(self) -> dict[str, Any]:
        """``run.json`` as a dict (with its ``kind``); ``{"state": "unknown"}`` if unreadable."""
        state = self._read_state()
        if not state:
            return {"state": "unknown"}
        return {"kind": self._kind_of(state), **state}

    def record(self) -> RunRecord:
        """``run.json`` as a typed :class:`~.records.RunRecord`."""
        return check_record(RunRecord, self.state(), f"{self.state_path} is not valid")

    def write_state(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` (atomically); a field set to None is removed.

        Raises
        ------
        MnistlabError
            A field of the wrong type for :class:`~.records.RunRecord` (nothing is written).
        """
        current = self.state() if self.state_path.exists() else {}
        merged = {**current, **fields}
        record = {k: v for k, v in merged.items() if v is not None}
        check_record(RunRecord, record, f"cannot write {self.state_path}")
        files.write_json(self.state_path, record)

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return state if isinstance(state, dict) else {}

    def _read_config(self) -> dict[str, Any] | None:
        try:
            config = json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return config if isinstance(config, dict) else None

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
        if self.kind == "ensemble":
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
        return self.kind == "cv-fold"

    def is_ensemble(self) -> bool:
        """Whether this run was made by ``mnistlab ensemble`` (it has no training to resume)."""
        return self.kind == "ensemble"

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
        """``metrics.json`` as a dict (written by ``mnistlab evaluate``)."""
        try:
            metrics = json.loads(self.metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MnistlabError(
                f"run {self.path} has no readable metrics.json; run 'mnistlab evaluate {self.path}'"
            ) from err
        if not isinstance(metrics, dict):
            raise MnistlabError(
                f"{self.metrics_path} is not a JSON object; run 'mnistlab evaluate {self.path}'"
            )
        return metrics

    def metrics_record(self) -> MetricsRecord:
        """``metrics.json`` as a typed :class:`~.records.MetricsRecord`."""
        return check_record(
            MetricsRecord,
            self.metrics(),
            f"{self.metrics_path} is not valid (run 'mnistlab evaluate {self.path}' again)",
        )

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Check ``metrics`` as a :class:`~.records.MetricsRecord`; write ``metrics.json``."""
        check_record(MetricsRecord, metrics, f"cannot write {self.metrics_path}")
        files.write_json(self.metrics_path, metrics)

    def write_model(self, model: Any) -> None:
        """Save a Keras model as ``model.keras`` (atomically: complete or not there)."""
        with files.atomic_path(self.model_path, suffix=".keras") as tmp:
            model.save(tmp)

    def write_predictions(
        self, y_true: np.ndarray, probs: np.ndarray, raw_probs: np.ndarray | None = None
    ) -> None:
        """Write ``predictions.npz``: ``probs`` float32 (N, K), ``y_true`` uint8 (N,), and
        ``raw_probs`` (the model's own, before calibration) when ``probs`` are calibrated."""
        arrays: dict[str, Any] = {
            "probs": np.asarray(probs, dtype=np.float32),
            "y_true": np.asarray(y_true, dtype=np.uint8),
        }
        if raw_probs is not None:
            arrays["raw_probs"] = np.asarray(raw_probs, np.float32)
        with files.atomic_path(self.predictions_path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)

    def write_calibration(self, calibration: dict[str, Any]) -> None:
        """Check ``calibration`` as a :class:`~.records.CalibrationRecord`; write it."""
        check_record(CalibrationRecord, calibration, f"cannot write {self.calibration_path}")
        files.write_json(self.calibration_path, calibration)

    def robustness_record(self) -> RobustnessRecord:
        """``robustness.json`` as a typed :class:`~.records.RobustnessRecord`.

        Raises
        ------
        MnistlabError
            Missing, unreadable or not a valid record: says to measure it again.
        """
        again = f"run 'mnistlab robustness {self.path}'"
        try:
            data = json.loads(self.robustness_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MnistlabError(
                f"run {self.path} has no readable {ROBUSTNESS_FILE}; {again}"
            ) from err
        return check_record(
            RobustnessRecord, data, f"{self.robustness_path} is not valid ({again})"
        )

    def write_robustness(self, robustness: dict[str, Any]) -> None:
        """Check ``robustness`` as a :class:`~.records.RobustnessRecord`; write it."""
        check_record(RobustnessRecord, robustness, f"cannot write {self.robustness_path}")
        files.write_json(self.robustness_path, robustness)

    def abstention_record(self) -> AbstentionRecord | None:
        """``abstention.json`` as a typed record; None when the run has none.

        Raises
        ------
        MnistlabError
            The file exists but is unreadable or not a valid record.
        """
        if not self.abstention_path.exists():
            return None
        again = f"run 'mnistlab trust {self.path}' again"
        try:
            data = json.loads(self.abstention_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MnistlabError(f"cannot read {self.abstention_path} ({err}); {again}") from err
        return check_record(
            AbstentionRecord, data, f"{self.abstention_path} is not valid ({again})"
        )

    def write_abstention(
        self, abstention: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
    ) -> None:
        """Write ``ood_detector.npz`` (when ``arrays``), then the checked ``abstention.json``."""
        check_record(AbstentionRecord, abstention, f"cannot write {self.abstention_path}")
        if arrays:
            with files.atomic_path(self.ood_detector_path, suffix=".npz") as tmp:
                saved: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
                np.savez_compressed(tmp, **saved)
        files.write_json(self.abstention_path, abstention)

    def ood_detector(self) -> dict[str, np.ndarray]:
        """The arrays of ``ood_detector.npz`` (empty when the run has none)."""
        if not self.ood_detector_path.exists():
            return {}
        try:
            with np.load(self.ood_detector_path) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError) as err:
            raise MnistlabError(
                f"cannot read {self.ood_detector_path} ({err}); "
                f"run 'mnistlab trust {self.path}' again"
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
