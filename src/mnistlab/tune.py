"""Hyperparameter search: an Optuna study over a registered model's settings.

    search space (per model) -> TPE sampler suggests a configuration
    -> train() on the training split, pruned early by per-epoch val_accuracy
    -> objective = best validation accuracy (the test set is never touched)
    -> <runs_dir>/tune/<study>/: best_params.json, trials.csv, figures/, report.html
    -> optionally: retrain the best configuration as a normal run, test it once

The study lives in a database that Optuna manages through SQLAlchemy. The default
is an SQLite file, ``<runs_dir>/tune/optuna.db``: nothing to start, and running the
same command again continues the study. Any other SQLAlchemy URL works the same
way; with a server such as PostgreSQL, workers on several machines join one study
(each runs ``mnistlab tune --storage postgresql://... --study NAME``). On one
machine ``workers=K`` starts K processes on the same storage; together they run
exactly ``trials`` new trials.

Each trial is an ordinary run directory, ``<runs_dir>/tune/<study>/trial-<n>``, so
its history and model can be inspected like any other run.

>>> result = tune("fnn", trials=20, workers=2)
>>> result.best_value, result.best_params
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import math
import multiprocessing
import os
import re
import shutil
import socket
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistlab import files
from mnistlab.config import make_config
from mnistlab.data import Dataset, load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec, list_models

if TYPE_CHECKING:  # optuna and keras load on first use: `mnistlab --help` stays quick
    import optuna

OBJECTIVE = "val_accuracy"  # reported per epoch; a trial scores the epoch whose weights it keeps
STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # also a directory name


# -- search spaces ------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """How to search one model.

    Attributes
    ----------
    suggest : given an ``optuna.Trial``, suggests values and returns the run's
        settings: ``{"params": {model settings}, **other TrainConfig fields}``.
    epochs : default per-trial epoch budget (``--epochs``): every trial runs its
        learning-rate schedule over this many epochs, so trials compare fairly
        epoch by epoch, which the pruner relies on.
    """

    suggest: Callable[[optuna.Trial], dict[str, Any]]
    epochs: int


def _optimizer(trial: optuna.Trial) -> dict[str, Any]:
    # Adam, or AdamW with a decoupled weight decay (Keras multiplies it by the learning rate).
    if trial.suggest_categorical("optimizer", ["adam", "adamw"]) == "adamw":
        return {"weight_decay": trial.suggest_float("weight_decay", 1e-4, 5e-2, log=True)}
    return {"weight_decay": 0.0}


def fnn_space(trial: optuna.Trial) -> dict[str, Any]:
    """Feed-forward net: widths, dropout, optimiser, learning rate, batch, smoothing, augmentation.

    The ranges contain the registered recipe (itself the best of an earlier
    20-trial search), so a new search can find it again. Light augmentation is
    what lets a two-layer net generalise past ~98.5% on the test set.
    """
    return {
        "params": {
            "hidden": (
                trial.suggest_int("hidden1", 256, 1536, log=True),
                trial.suggest_int("hidden2", 128, 768, log=True),
            ),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        },
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 2e-4, 4e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 0.6),
    }


def cnn_space(trial: optuna.Trial, model: str = "cnn") -> dict[str, Any]:
    """Convnets: width, dense head, dropout, optimiser, learning rate, batch, augmentation, ...

    ``model`` names the registered convnet: only the settings it has are searched
    (``dense`` where its builder takes one).
    """
    settings = get_model_spec(model).defaults
    params: dict[str, Any] = {
        "width": trial.suggest_int("width", 16, 48, step=8),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }
    if "dense" in settings:
        params["dense"] = trial.suggest_int("dense", 64, 512, log=True)
    return {
        "params": params,
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 1.0),
    }


def training_space(trial: optuna.Trial) -> dict[str, Any]:
    """A model without settings of its own: only the training recipe is searched."""
    return {
        **_optimizer(trial),
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "augment": trial.suggest_float("augment", 0.0, 1.0),
    }


# Keyed by registered model name. (A model registered with its own ``space`` wins:
# see search_space().)
SEARCH_SPACES: dict[str, SearchSpace] = {
    "fnn": SearchSpace(fnn_space, epochs=15),
    "cnn-fast": SearchSpace(functools.partial(cnn_space, model="cnn-fast"), epochs=3),
    "cnn": SearchSpace(functools.partial(cnn_space, model="cnn"), epochs=6),
    "cnn-best": SearchSpace(functools.partial(cnn_space, model="cnn-best"), epochs=10),
    "cnn-best-deskew": SearchSpace(
        functools.partial(cnn_space, model="cnn-best-deskew"), epochs=10
    ),
    "keras-convnet": SearchSpace(training_space, epochs=5),
}


def search_space(model: str) -> SearchSpace:
    """The search space of a registered model.

    Parameters
    ----------
    model : registered model name.

    Returns
    -------
    The model's :class:`SearchSpace`: its own (a ``space`` attribute on its
    registry entry) if it declares one, else the one in :data:`SEARCH_SPACES`.

    Examples
    --------
    >>> search_space("fnn").epochs
    15
    """
    spec = get_model_spec(model)  # unknown names: the registry's own error
    own = getattr(spec, "space", None)  # a model registered with its own space
    if isinstance(own, SearchSpace):
        return own
    if callable(own):
        return SearchSpace(own, epochs=max(1, spec.recipe.get("epochs", 10) // 3))
    if spec.name not in SEARCH_SPACES:
        tunable = ", ".join(m.name for m in list_models() if m.name in SEARCH_SPACES)
        raise MnistlabError(
            f"model {spec.name!r} has no search space, so it cannot be tuned yet; "
            f"tunable models: {tunable} (add one to mnistlab.tune.SEARCH_SPACES)"
        )
    return SEARCH_SPACES[spec.name]


# -- storage ------------------------------------------------------------------------------


def default_storage(runs_dir: str | Path = "runs") -> str:
    """The embedded default: ``sqlite:///<runs_dir>/tune/optuna.db`` (absolute path)."""
    return f"sqlite:///{(Path(runs_dir) / 'tune' / 'optuna.db').resolve()}"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and files."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide beyond what the user typed
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect to an Optuna study database (creating its tables if needed).

    Parameters
    ----------
    url : an SQLAlchemy URL: ``sqlite:///path.db``, ``postgresql://user:pw@host/db``,
        ``mysql+pymysql://...``.

    Returns
    -------
    optuna.storages.RDBStorage, with heartbeats on, so a trial whose worker died
    is marked failed by the next worker instead of staying "running" for ever.

    Raises
    ------
    MnistlabError
        One line naming the URL (password hidden) and what went wrong.
    """
    import optuna
    from sqlalchemy.engine import make_url

    shown = redact(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise MnistlabError(
            f"--storage {url!r} is not a database URL; give an SQLAlchemy URL such as "
            "sqlite:///runs/tune/optuna.db or postgresql://USER:PASSWORD@HOST:5432/DBNAME"
        ) from None
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise MnistlabError(
            f"--storage {shown} is an in-memory SQLite database, which every connection "
            "sees empty; give a file, such as sqlite:///runs/tune/optuna.db"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise MnistlabError(
                    f"cannot create {folder} for the study storage {shown}: "
                    f"{err.strerror or err}; choose a writable --runs-dir or --storage"
                ) from None
        # Several worker processes write one file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        # Don't hang for minutes on an unreachable server, and survive server restarts.
        engine_kwargs["pool_pre_ping"] = True
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    if parsed.drivername == "postgresql":
        # Plain postgresql:// means psycopg2 in SQLAlchemy < 2.1 and psycopg (3) from 2.1
        # on; name the driver mnistlab installs so the URL works with either.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    try:
        with _quiet_optuna():
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=60, grace_period=180
            )
    except Exception as err:
        cause = getattr(err, "orig", None) or err.__cause__ or err
        reason = " ".join(str(cause).split()).split(" (Background on this error")[0][:300]
        raise MnistlabError(
            f"cannot open the study storage {shown}: {type(cause).__name__}: {reason}; "
            "check the URL, that the database server is running and reachable, and that "
            "its Python driver is installed (psycopg for postgresql://)"
        ) from None


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    # Optuna logs every trial at INFO and warns that its plots are "experimental":
    # our own one line per trial says what matters.
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


# -- the search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` found and wrote.

    Attributes
    ----------
    study : study name.
    storage : the storage URL, password hidden.
    out_dir : ``<runs_dir>/tune/<study>/`` with the outputs below.
    best_trial : number of the best trial.
    best_value : its best validation accuracy.
    best_params : the values Optuna chose for it (``hidden1``, ``learning_rate``, ...).
    best_config : its complete training configuration (``TrainConfig.to_dict()``).
    counts : trials in the whole study by state (``complete``, ``pruned``, ``fail``, ...).
    paths : ``best_params``, ``trials``, ``report`` and each figure, by name.
    retrain : ``{"run", "best_val_accuracy", "test_accuracy", ...}`` when the best
        configuration was retrained and tested, else None.
    """

    study: str
    storage: str
    out_dir: Path
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_config: dict[str, Any]
    counts: dict[str, int]
    paths: dict[str, Path]
    retrain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as written to ``best_params.json``)."""
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["paths"] = {k: str(v) for k, v in self.paths.items()}
        return d


@dataclass(frozen=True)
class _Job:
    # Everything a worker process needs; pickled to spawned workers.
    model: str
    storage: str
    study: str
    out_dir: Path
    epochs: int
    seed: int
    val_size: int
    dataset: Dataset
    deadline: float | None
    progress: bool


def tune(
    model: str = "fnn",
    trials: int = 20,
    *,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    timeout: float | None = None,
    epochs: int | None = None,
    seed: int = 0,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    train_limit: int | None = None,
    retrain_best: bool = False,
    progress: bool = False,
) -> TuneResult:
    """Search a model's hyperparameters with Optuna; write the study's outputs.

    Parameters
    ----------
    model : registered model name with a search space (:func:`search_space`).
    trials : trials to run now, across all workers (0: only write the outputs,
        and retrain if asked). Trials already in the study are kept: running
        again continues the study.
    workers : local worker processes sharing the storage; each gets
        ``cores // workers`` TensorFlow threads. 1 runs in this process.
    storage : SQLAlchemy URL of the study database; default
        :func:`default_storage` (an SQLite file in ``runs_dir``).
    study : study name (default: the model name); letters, digits, ``._-``.
    timeout : seconds after which no new trial starts (running ones finish).
    epochs : per-trial epoch budget; default the search space's.
    seed : seeds every trial's training and validation split (the same split
        for all trials, and for ``mnistlab train --seed`` with this seed) and
        the samplers (worker ``i`` uses ``seed + 1000 i`` plus the number of
        trials already in the study, so a continued study explores anew). A study
        keeps the seed of its first trials and refuses another: its trials must be
        scored on the same validation split. Workers on other machines pass the same
        seed; with an explicit ``storage`` their samplers also differ by host name.
    runs_dir : outputs go to ``<runs_dir>/tune/<study>/``; a retrained run to
        ``runs_dir`` itself.
    dataset : already-loaded data; loaded if None. The trials get a copy
        without its test set.
    train_limit : use only the first ``train_limit`` training images, with a
        validation split of a fifth of them (at most 5,000): for quick tests
        and smoke runs, not for real searches.
    retrain_best : afterwards, train the best configuration as a normal run
        with the model's full recipe length (``max(recipe epochs, epochs)``)
        and evaluate it once on the test set.
    progress : print one line per trial to stderr.

    Returns
    -------
    TuneResult; the same is written to ``<runs_dir>/tune/<study>/best_params.json``
    beside ``trials.csv``, ``figures/*.png`` and ``report.html``.

    Examples
    --------
    >>> result = tune("fnn", trials=20, workers=2, runs_dir="runs")
    >>> round(result.best_value, 4), result.best_config["learning_rate"]
    """
    space = search_space(model)
    model = get_model_spec(model).name
    study = study or model
    if not STUDY_NAME_RE.match(study):
        raise MnistlabError(
            f"invalid study name {study!r}: use 1-100 letters, digits, '.', '_' or '-'"
        )
    _check_int("trials", trials, 0)
    _check_int("workers", workers, 1)
    epochs = space.epochs if epochs is None else epochs
    _check_int("epochs", epochs, 1)
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise MnistlabError(f"invalid timeout={timeout!r}: expected a number of seconds > 0")
    if train_limit is not None:
        _check_int("train_limit", train_limit, 100)

    runs_dir = Path(runs_dir)
    url = storage or default_storage(runs_dir)
    shown = redact(url)
    out_dir = (runs_dir / "tune" / study).resolve()
    opt_study = _create_study(url, study, model)
    if trials:
        budget = {"epochs": epochs, "train_limit": train_limit, "seed": seed}
        _check_budget(opt_study, shown, budget)
    already = len(opt_study.trials)
    # Machines sharing a database start different samplers (one machine: unchanged).
    host_offset = zlib.crc32(socket.gethostname().encode()) % 1_000_000 if storage else 0

    full = dataset or load_dataset("mnist", progress=progress)
    search_data, val_size = _search_dataset(full, train_limit)
    job = _Job(
        model=model,
        storage=url,
        study=study,
        out_dir=out_dir,
        epochs=epochs,
        seed=seed,
        val_size=val_size,
        dataset=search_data,
        deadline=None if timeout is None else time.time() + timeout,
        progress=progress,
    )
    if trials:
        _say(
            progress,
            f"study {study!r} ({shown}): {already} trials so far; running {trials} more "
            f"with {_plural(workers, 'worker')}, at most {_plural(epochs, 'epoch')} each",
        )
        try:
            if workers == 1:
                budget = [trials]

                def claim() -> bool:
                    budget[0] -= 1
                    return budget[0] >= 0

                _work(job, claim, sampler_seed=seed + already + host_offset)
            else:
                _run_workers(job, trials, workers, sampler_seed=seed + already + host_offset)
        except KeyboardInterrupt:  # Ctrl-C, in a trial's training or between trials
            raise TuneInterrupted(_interrupted(url, study, out_dir)) from None
        except Exception as err:
            if not _is_storage_error(err):
                raise
            reason = " ".join(str(getattr(err, "orig", None) or err).split())[:200]
            raise MnistlabError(
                f"the study storage {shown} failed during the search ({reason}); the trials "
                "finished before are kept in it: once it works again, run the same command "
                "to continue"
            ) from err

    if retrain_best:
        retrain = _retrain(url, study, full, runs_dir, train_limit, progress)
        # Kept with the study, so later outputs (any machine, --trials 0) still show it.
        opt_study.set_user_attr("retrain", retrain)
    return write_outputs(url, study, out_dir)


class TuneInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C; ``str(err)`` says what was kept and how to go on."""


def _is_storage_error(err: BaseException) -> bool:
    """Whether ``err`` (or what it wraps) is the database failing, not a bug."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    while err is not None:
        if isinstance(err, SQLAlchemyError | optuna.exceptions.StorageInternalError):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def _interrupted(url: str, study: str, out_dir: Path) -> str:
    """Write the outputs of the finished trials; the message for an interrupted search."""
    import optuna

    opt_study = optuna.load_study(study_name=study, storage=open_storage(url))
    # The interrupted trial's worker is gone: fail it now, not after the heartbeat's grace.
    for trial in opt_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        with contextlib.suppress(Exception):  # another machine's trial may finish meanwhile
            if trial.user_attrs.get("worker", "").startswith(f"{socket.gethostname()}:"):
                opt_study.tell(
                    trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True
                )
    done = sum(t.state.name == "COMPLETE" for t in opt_study.trials)
    if done:
        with contextlib.suppress(MnistlabError):
            write_outputs(url, study, out_dir)
    kept = f"its {_plural(done, 'finished trial')} are kept" + (
        f" (outputs in {out_dir})" if done else ""
    )
    return (
        f"search interrupted; study {study!r} keeps what it had: {kept}; the interrupted "
        "trial counts as failed. Run the same command to continue the study"
    )


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise MnistlabError(f"invalid {name}={value!r}: expected an integer >= {low}")


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _create_study(url: str, name: str, model: str) -> optuna.Study:
    import optuna

    storage = open_storage(url)
    with _quiet_optuna():
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=True
        )
    # A study holds one model's trials: continuing it with another model would mix
    # incomparable search spaces.
    owner = study.user_attrs.get("model")
    if owner is None:
        study.set_user_attr("model", model)
        study.set_user_attr("objective", f"best {OBJECTIVE} (validation split)")
    elif owner != model:
        raise MnistlabError(
            f"study {name!r} in {redact(url)} tunes model {owner!r}, not {model!r}; "
            f"pass --model {owner} or another --study name"
        )
    return study


def _check_budget(study: optuna.Study, shown_url: str, budget: dict[str, Any]) -> None:
    """Refuse to add trials trained on another budget or split: their scores would not compare."""
    recorded = study.user_attrs.get("budget") or {}
    differs = [k for k in budget if k in recorded and recorded[k] != budget[k]]
    if differs:
        then = ", ".join(f"{k}={recorded[k]}" for k in differs)
        now = ", ".join(f"{k}={budget[k]}" for k in differs)
        raise MnistlabError(
            f"study {study.study_name!r} in {shown_url} ran its trials with {then}; trials "
            f"with {now} would not compare with them (the seed picks the validation split): "
            "pass the same --epochs, --train-limit and --seed, or another --study name"
        )
    if set(budget) - set(recorded):  # a new study, or one recorded before the seed was
        study.set_user_attr("budget", {**recorded, **budget})


def _search_dataset(data: Dataset, train_limit: int | None) -> tuple[Dataset, int]:
    # The trials get the training images only: with the test arrays emptied, nothing
    # in a trial can score, select or stop on the test set, even by mistake.
    x, y = data.x_train, data.y_train
    val_size = 5000
    if train_limit is not None:
        x, y = x[:train_limit], y[:train_limit]
        val_size = min(5000, train_limit // 5)
    stripped = dataclasses.replace(
        data,
        x_train=x,
        y_train=y,
        x_test=np.empty((0, *data.x_test.shape[1:]), dtype=data.x_test.dtype),
        y_test=np.empty((0,), dtype=data.y_test.dtype),
        source=f"{data.source} (training images only)",
    )
    return stripped, val_size


# -- workers ------------------------------------------------------------------------------


def _work(job: _Job, claim: Callable[[], bool], sampler_seed: int) -> None:
    """Run trials of ``job`` until ``claim()`` says the budget is spent or time is up."""
    import optuna

    with _quiet_optuna():
        study = optuna.load_study(
            study_name=job.study,
            storage=open_storage(job.storage),
            # TPE: 8 random trials, then model-based. constant_liar: workers running
            # in parallel treat each other's running trials as bad, so they spread out.
            sampler=optuna.samplers.TPESampler(
                seed=sampler_seed % 2**32, n_startup_trials=8, constant_liar=True
            ),
            # Stop a trial whose val_accuracy is below the median of earlier trials at
            # the same epoch, once a third of the epochs have given the schedule a chance.
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=4, n_warmup_steps=max(1, job.epochs // 3)
            ),
        )
        objective = _Objective(job)
        while (job.deadline is None or time.time() < job.deadline) and claim():
            # One trial per optimize(): the budget is claimed before each trial starts,
            # so K workers never run more than the trials asked for between them.
            # Optuna logs a failed trial with its traceback at WARNING; the exception
            # itself propagates and says what matters (a Ctrl-C, or a bug).
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            study.optimize(objective, n_trials=1, gc_after_trial=True)


def _run_workers(job: _Job, trials: int, workers: int, sampler_seed: int) -> None:
    # spawn, not fork: each worker starts its own TensorFlow with its own thread pools.
    ctx = multiprocessing.get_context("spawn")
    claimed = ctx.Value("i", 0)  # trials started, across workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // workers)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(job, claimed, trials, sampler_seed + 1000 * i, threads),
            name=f"mnistlab-tune-{i}",
        )
        for i in range(workers)
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    except BaseException:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=30)
        raise
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise MnistlabError(
            f"{len(failed)} of {workers} tuning workers failed (exit codes {failed}); "
            "their messages are above. Trials they finished are kept in the study"
        )


def _worker_main(job: _Job, claimed: Any, trials: int, sampler_seed: int, threads: int) -> None:
    # Entry point of a spawned worker process.
    import tensorflow as tf

    # Before TensorFlow runs its first op: afterwards the pools are fixed. With K
    # workers on C cores each gets C/K threads instead of all K fighting for C.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))

    def claim() -> bool:
        with claimed.get_lock():
            if claimed.value >= trials:
                return False
            claimed.value += 1
            return True

    try:
        _work(job, claim, sampler_seed)
    except MnistlabError as err:
        print(f"mnistlab: error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class _Objective:
    """One trial: suggest settings, train a run, return its best validation accuracy."""

    def __init__(self, job: _Job) -> None:
        self.job = job

    def __call__(self, trial: optuna.Trial) -> float:
        import keras
        import optuna

        from mnistlab.train import train

        job = self.job
        settings = search_space(job.model).suggest(trial)
        config = make_config(
            job.model,
            params=settings.pop("params", {}),
            epochs=job.epochs,
            seed=job.seed,
            dataset=job.dataset.name,
            val_size=job.val_size,
            **settings,
        )
        trial.set_user_attr("config", config.to_dict())
        # Which machine and process ran it: workers on several machines share one study.
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        pruning = pruning_callback(trial)
        started = time.perf_counter()
        # A line per epoch: a trial can take minutes, and several workers interleave.
        heartbeat = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: _say(
                job.progress,
                f"trial {trial.number:>3} epoch {epoch + 1}/{job.epochs}: {OBJECTIVE} "
                f"{float((logs or {}).get(OBJECTIVE, float('nan'))):.4f} "
                f"({time.perf_counter() - started:.0f} s)",
            )
        )
        try:
            run = train(
                config,
                runs_dir=job.out_dir,
                dataset=job.dataset,
                callbacks=[pruning, heartbeat],
                verbose=0,
                run_name=f"trial-{trial.number}",
            )
        finally:
            keras.backend.clear_session()  # free this trial's graphs before the next
        # The per-epoch checkpoint only serves resuming an interrupted run; a trial is never
        # resumed, and model.keras (the best epoch) stays. Halves a search's disk use.
        shutil.rmtree(run.checkpoint_path.parent, ignore_errors=True)
        state = run.state()
        trial.set_user_attr("run", str(run.path))
        trial.set_user_attr("epochs_run", state["epochs_run"])
        best = float(state["best_val_accuracy"])
        if config.keep == "last":  # the run keeps the last epoch's weights: score those
            best = _last_epoch_score(run.history_path, best)
        seconds = time.perf_counter() - started
        shown = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        if pruning.pruned_at is not None:
            _say(
                job.progress,
                f"trial {trial.number:>3} pruned at epoch {pruning.pruned_at}: "
                f"{OBJECTIVE} {best:.4f} ({seconds:.0f} s) {shown}",
            )
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        _say(
            job.progress,
            f"trial {trial.number:>3} {OBJECTIVE} {best:.4f} "
            f"({_plural(state['epochs_run'], 'epoch')}, {seconds:.0f} s) {shown}",
        )
        return best


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# -- outputs ------------------------------------------------------------------------------

# figure key -> (file in figures/, Optuna Matplotlib function, size in inches)
FIGURES = {
    "history": ("optimization_history.png", "plot_optimization_history", (9, 5)),
    "importances": ("param_importances.png", "plot_param_importances", (9, 5)),
    "parallel": ("parallel_coordinate.png", "plot_parallel_coordinate", (13, 6)),
}


def write_outputs(
    storage: str, study: str, out_dir: str | Path, retrain: Mapping[str, Any] | None = None
) -> TuneResult:
    """Write a study's best parameters, trial table, plots and report.

    Parameters
    ----------
    storage : SQLAlchemy URL of the study database.
    study : study name.
    out_dir : where to write (``<runs_dir>/tune/<study>/`` for :func:`tune`).
    retrain : a retrained configuration's results to show; default the last one
        :func:`tune` stored with the study (``retrain_best=True``), if any.

    Returns
    -------
    TuneResult; its ``paths`` name ``best_params.json``, ``trials.csv``,
    ``report.html`` and the figures that could be drawn (parameter importances
    need at least two finished trials).

    Examples
    --------
    >>> write_outputs("sqlite:///runs/tune/optuna.db", "fnn", "runs/tune/fnn")
    """
    import optuna

    out_dir = Path(out_dir)
    opt_study = _load_study(storage, study)
    all_trials = opt_study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in all_trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise MnistlabError(
            f"study {study!r} has no completed trial yet ({_counts_text(counts)}); run more trials"
        )
    best = opt_study.best_trial
    paths = {
        "best_params": out_dir / "best_params.json",
        "trials": out_dir / "trials.csv",
        "report": out_dir / "report.html",
    }
    _write_trials_csv(opt_study, paths["trials"])
    figures, missing = _write_figures(opt_study, out_dir / "figures")
    paths.update(figures)
    result = TuneResult(
        study=study,
        storage=redact(storage),
        out_dir=out_dir,
        best_trial=best.number,
        best_value=float(best.value),
        best_params=dict(best.params),
        best_config=dict(best.user_attrs.get("config", {})),
        counts=counts,
        paths=paths,
        retrain=dict(retrain or opt_study.user_attrs.get("retrain") or {}) or None,
    )
    files.write_json(
        paths["best_params"],
        {**result.to_dict(), "model": opt_study.user_attrs.get("model"), "objective": OBJECTIVE},
    )
    files.write_text(paths["report"], render_report(result, opt_study, missing))
    return result


def _load_study(storage: str, study: str) -> optuna.Study:
    import optuna

    with _quiet_optuna():
        try:
            return optuna.load_study(study_name=study, storage=open_storage(storage))
        except KeyError:
            raise MnistlabError(
                f"no study {study!r} in {redact(storage)}; run 'mnistlab tune' to create it"
            ) from None


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials"


def _write_trials_csv(opt_study: optuna.Study, path: Path) -> None:
    frame = opt_study.trials_dataframe(
        attrs=(
            "number",
            "value",
            "state",
            "datetime_start",
            "datetime_complete",
            "duration",
            "params",
            "user_attrs",
        )
    )
    # The full config is in each trial's run directory; here it would be one huge cell.
    frame = frame.drop(columns=[c for c in frame.columns if c == "user_attrs_config"])
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    files.write_text(path, buf.getvalue())


def _write_figures(
    opt_study: optuna.Study, figures_dir: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    # -> (figure key -> PNG written, figure key -> why it could not be drawn)
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    written, missing = {}, {}
    complete = sum(t.state.name == "COMPLETE" for t in opt_study.trials)
    for key, (name, plot, size) in FIGURES.items():
        if key == "importances" and complete < 2:
            # Optuna draws one trial's "importances" as equal shares: meaningless.
            missing[key] = "needs at least two finished trials"
            continue
        with _quiet_optuna(), warnings.catch_warnings():
            # "some regimes have less than 2 trials": expected in small studies.
            warnings.simplefilter("ignore", UserWarning)
            try:
                ax = getattr(ovm, plot)(opt_study, target_name=f"best {OBJECTIVE}")
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                # e.g. importances of a single finished trial: the report says it is missing.
                missing[key] = " ".join(str(err).split())[:200]
                plt.close("all")
                continue
        fig = (ax.flat[0] if isinstance(ax, np.ndarray) else ax).figure
        fig.set_size_inches(*size)
        path = figures_dir / name
        try:
            with files.atomic_path(path, suffix=".png") as tmp:
                fig.savefig(
                    tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None}
                )
        finally:
            plt.close(fig)
        written[key] = path
    return written, missing


def render_report(
    result: TuneResult, opt_study: optuna.Study, missing: Mapping[str, str] | None = None
) -> str:
    """The tuning report: one self-contained HTML page (figures embedded).

    Parameters
    ----------
    result : what :func:`write_outputs` found.
    opt_study : the Optuna study.
    missing : figure key -> why it is not in ``result.paths`` (shown instead).

    Returns
    -------
    An HTML document, rendered with :func:`mnistlab.report.render_page`.
    """
    from mnistlab.report import Section, figure_html, html_table, paragraph, render_page

    trials = opt_study.get_trials(deepcopy=False)
    best = opt_study.best_trial
    sections = [
        Section(
            "Summary",
            html_table(
                None,
                [
                    ("study", result.study),
                    ("model", opt_study.user_attrs.get("model", "")),
                    ("storage", result.storage),
                    (
                        "objective",
                        f"best {OBJECTIVE} of a trial (validation split; the test set is not used)",
                    ),
                    ("trials", _counts_text(result.counts)),
                    ("best trial", f"{best.number}: {OBJECTIVE} {best.value:.4f}"),
                    ("best trial's run", best.user_attrs.get("run", "")),
                ],
                cls="kv",
            ),
        ),
    ]
    if result.retrain:
        r = result.retrain
        sections.append(
            Section(
                "Best configuration retrained",
                html_table(
                    None,
                    [
                        ("run", r["run"]),
                        ("configuration of", f"trial {r['trial']}"),
                        ("epochs run", f"{r['epochs_run']} of {r['epochs']}"),
                        (f"best {OBJECTIVE}", f"{r['best_val_accuracy']:.4f}"),
                        ("test accuracy (evaluated once)", f"{r['test_accuracy']:.4f}"),
                    ],
                    cls="kv",
                ),
            )
        )
    config_rows = [(k, _plain(v)) for k, v in sorted(result.best_config.items())]
    sections.append(
        Section(
            "Best configuration",
            html_table(("setting", "value"), config_rows, cls="kv")
            + paragraph("Train it yourself: " + _train_command(result.best_config), cls="note"),
        )
    )
    space_rows = [(name, _describe(dist)) for name, dist in best.distributions.items()]
    sections.append(Section("Search space", html_table(("parameter", "range"), space_rows)))
    figure_parts = []
    captions = {
        "history": "Optimisation history: every trial's score, and the best so far.",
        "importances": "Parameter importances: how much of the variation in validation "
        "accuracy each parameter explains (Optuna's default evaluator).",
        "parallel": "Parallel coordinates: each line is a finished trial, coloured by its score.",
    }
    for key in FIGURES:
        if key in result.paths:
            figure_parts.append(figure_html(result.paths[key], captions[key]))
        else:
            reason = (missing or {}).get(key, "not enough finished trials")
            figure_parts.append(
                paragraph(f"{captions[key].split(':')[0]}: not drawn ({reason}).", cls="note")
            )
    sections.append(Section("Plots", "\n".join(figure_parts)))
    names = sorted({p for t in trials for p in t.params})
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        duration = (
            f"{(t.datetime_complete - t.datetime_start).total_seconds():.0f}"
            if t.datetime_complete and t.datetime_start
            else ""
        )
        value = "" if t.value is None else f"{t.value:.4f}"
        rows.append(
            [t.number, t.state.name.lower(), value, len(t.intermediate_values), duration]
            + [_short(t.params[n]) if n in t.params else "" for n in names]
        )
    sections.append(
        Section(
            "All trials",
            # One column per parameter: wider than the page, so it scrolls on its own.
            '<div style="overflow-x:auto">'
            + html_table(
                ["trial", "state", OBJECTIVE, "epochs", "seconds", *names],
                rows,
                numeric=[True, False, True, True, True] + [True] * len(names),
            )
            + "</div>"
            + paragraph(
                "Pruned trials show the validation accuracy of their last epoch. "
                "Every trial is a run directory: " + str(result.out_dir / "trial-<n>"),
                cls="note",
            ),
        )
    )
    return render_page(
        f"Hyperparameter search: {result.study}",
        sections,
        subtitle=f"{opt_study.user_attrs.get('model', '')} — best {OBJECTIVE} "
        f"{result.best_value:.4f} (trial {result.best_trial}) — {_counts_text(result.counts)}",
    )


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value)


def _describe(dist: Any) -> str:
    # Optuna distributions -> "0.0002 to 0.004, log scale" / "one of 64, 128, 256".
    if hasattr(dist, "choices"):
        return "one of " + ", ".join(map(str, dist.choices))
    text = f"{dist.low:g} to {dist.high:g}"
    if getattr(dist, "log", False):
        text += ", log scale"
    if getattr(dist, "step", None) not in (None, 1):
        text += f", step {dist.step:g}"
    return text


def _train_command(config: Mapping[str, Any]) -> str:
    # The mnistlab train command line that reproduces a configuration.
    if not config:
        return "(configuration not recorded)"
    parts = [f"mnistlab train --model {config['model']}"]
    for key, value in config.get("params", {}).items():
        parts.append(f"-p {key}={_plain(value)}")
    flags = {
        "seed": "--seed",
        "epochs": "--epochs",
        "batch_size": "--batch-size",
        "learning_rate": "--lr",
        "schedule": "--schedule",
        "patience": "--patience",
        "label_smoothing": "--label-smoothing",
        "weight_decay": "--weight-decay",
        "augment": "--augment",
        "val_size": "--val-size",
    }
    for key, flag in flags.items():
        if key in config:
            value = config[key]
            parts.append(f"{flag} {value:.6g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)


# -- retraining the best configuration ---------------------------------------------------


def _retrain(
    storage: str,
    study: str,
    data: Dataset,
    runs_dir: Path,
    train_limit: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Train the study's best configuration as a normal run in ``runs_dir``; test it once."""
    from mnistlab.config import TrainConfig
    from mnistlab.evaluate import evaluate
    from mnistlab.train import train

    opt_study = _load_study(storage, study)
    try:
        best_trial = opt_study.best_trial
    except ValueError:
        raise MnistlabError(
            f"study {study!r} has no completed trial to retrain; run more trials"
        ) from None
    if "config" not in best_trial.user_attrs:
        raise MnistlabError(f"trial {best_trial.number} of study {study!r} recorded no config")
    best = TrainConfig.from_dict(best_trial.user_attrs["config"])
    recipe = get_model_spec(best.model).recipe
    # The full recipe: the search capped epochs to compare many trials; the final run
    # gets the model's usual length and patience (never less than the search's).
    config = dataclasses.replace(
        best,
        epochs=max(best.epochs, int(recipe.get("epochs", best.epochs))),
        patience=max(best.patience, int(recipe.get("patience", best.patience))),
    )
    train_data = data
    if train_limit is not None:
        train_data = dataclasses.replace(
            data, x_train=data.x_train[:train_limit], y_train=data.y_train[:train_limit]
        )
    _say(
        progress,
        f"retraining trial {best_trial.number}'s configuration for up to {config.epochs} "
        f"epochs as a normal run in {runs_dir}",
    )
    # Keras prints epochs to stdout; they are progress, so stderr (stdout may be --json).
    with contextlib.redirect_stdout(sys.stderr):
        run = train(config, runs_dir=runs_dir, dataset=train_data, verbose=2 if progress else 0)
    # The one and only look at the test set, after every choice has been made.
    metrics = evaluate(run, dataset=data)
    state = run.state()
    return {
        "run": str(run.path),
        "trial": best_trial.number,
        "epochs": config.epochs,
        "epochs_run": state["epochs_run"],
        "train_seconds": state["train_seconds"],
        "best_val_accuracy": float(state["best_val_accuracy"]),
        "test_accuracy": float(metrics["test_accuracy"]),
    }


def _last_epoch_score(history_csv: Path, default: float) -> float:
    """The last epoch's validation accuracy in ``history.csv`` (``default`` if unreadable)."""
    try:
        with open(history_csv, newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1][OBJECTIVE])
    except (OSError, IndexError, KeyError, ValueError):
        return default


def pruning_callback(trial: optuna.Trial, monitor: str = OBJECTIVE) -> Any:
    """A Keras callback that reports ``monitor`` to ``trial`` after every epoch and prunes.

    When the trial's pruner says so, training stops cleanly
    (``model.stop_training``) instead of raising inside ``fit``: the trial's run
    directory is then a finished run like any other, and the callback's
    ``pruned_at`` (1-based epoch, else None) tells the objective to mark the trial
    pruned. optuna-integration's ``KerasPruningCallback`` raises from inside
    ``fit`` instead, which would leave the run marked interrupted.

    Parameters
    ----------
    trial : the Optuna trial to report to.
    monitor : the Keras log entry to report, higher is better (``val_accuracy``).

    Returns
    -------
    keras.callbacks.Callback with a ``pruned_at`` attribute.

    Examples
    --------
    >>> cb = pruning_callback(trial)
    >>> run = train(config, callbacks=[cb])
    >>> if cb.pruned_at: raise optuna.TrialPruned()
    """
    return _pruning_callback_class()(trial, monitor)


@functools.cache
def _pruning_callback_class() -> type:
    # Built on first use: keras (and TensorFlow) must not load before a worker has set
    # its thread counts.
    import keras

    class PruneOnValAccuracy(keras.callbacks.Callback):
        def __init__(self, trial: optuna.Trial, monitor: str) -> None:
            super().__init__()
            self.trial = trial
            self.monitor = monitor
            self.pruned_at: int | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            # Steps are 1-based epochs, as in history.csv.
            self.trial.report(float(value), step=epoch + 1)
            if self.trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return PruneOnValAccuracy
