"""``tune``: run a search (in this process or in worker processes) and write its outputs.

    validate the request -> open or create the study (storage) -> check its budget
    -> run the trials (:mod:`~mnistlab.tune.trials`) -> optionally retrain the best
    configuration (:mod:`~mnistlab.tune.retrain`) -> :func:`write_outputs`

A Ctrl-C keeps the finished trials (and writes their outputs); a storage that
fails mid-search is one clear error; either way running the same command again
continues the study.

>>> result = tune("fnn", trials=20, workers=2)  # doctest: +SKIP
>>> result.best_value, result.best_params  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from mnistlab import files
from mnistlab.data import Dataset, load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec
from mnistlab.progress import reporter
from mnistlab.tune.outputs import TuneResult, write_figures, write_trials_csv
from mnistlab.tune.retrain import retrain_best_config
from mnistlab.tune.spaces import search_space
from mnistlab.tune.storage import (
    OBJECTIVE,
    STUDY_NAME_RE,
    check_budget,
    counts_text,
    create_study,
    default_storage,
    is_storage_error,
    load_study,
    redact,
)
from mnistlab.tune.trials import SearchJob, plural, run_trials, run_workers


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
    >>> result = tune("fnn", trials=20, workers=2, runs_dir="runs")  # doctest: +SKIP
    >>> round(result.best_value, 4), result.best_config["learning_rate"]  # doctest: +SKIP
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
    opt_study = create_study(url, study, model)
    if trials:
        budget = {"epochs": epochs, "train_limit": train_limit, "seed": seed}
        check_budget(opt_study, shown, budget)
    already = len(opt_study.trials)
    # Machines sharing a database start different samplers (one machine: unchanged).
    host_offset = zlib.crc32(socket.gethostname().encode()) % 1_000_000 if storage else 0

    full = dataset or load_dataset("mnist", progress=progress)
    search_data, val_size = search_dataset(full, train_limit)
    job = SearchJob(
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
        reporter(progress)(
            f"study {study!r} ({shown}): {already} trials so far; running {trials} more "
            f"with {plural(workers, 'worker')}, at most {plural(epochs, 'epoch')} each",
        )
        try:
            if workers == 1:
                left = [trials]

                def claim() -> bool:
                    left[0] -= 1
                    return left[0] >= 0

                run_trials(job, claim, sampler_seed=seed + already + host_offset)
            else:
                run_workers(job, trials, workers, sampler_seed=seed + already + host_offset)
        except KeyboardInterrupt:  # Ctrl-C, in a trial's training or between trials
            raise TuneInterrupted(_interrupted(url, study, out_dir)) from None
        except Exception as err:
            if not is_storage_error(err):
                raise
            reason = " ".join(str(getattr(err, "orig", None) or err).split())[:200]
            raise MnistlabError(
                f"the study storage {shown} failed during the search ({reason}); the trials "
                "finished before are kept in it: once it works again, run the same command "
                "to continue"
            ) from err

    if retrain_best:
        retrain = retrain_best_config(url, study, full, runs_dir, train_limit, progress)
        # Kept with the study, so later outputs (any machine, --trials 0) still show it.
        opt_study.set_user_attr("retrain", retrain)
    return write_outputs(url, study, out_dir)


class TuneInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C; ``str(err)`` says what was kept and how to go on."""


def _interrupted(url: str, study: str, out_dir: Path) -> str:
    """Write the outputs of the finished trials; the message for an interrupted search."""
    import optuna

    opt_study = load_study(url, study)
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
    kept = f"its {plural(done, 'finished trial')} are kept" + (
        f" (outputs in {out_dir})" if done else ""
    )
    return (
        f"search interrupted; study {study!r} keeps what it had: {kept}; the interrupted "
        "trial counts as failed. Run the same command to continue the study"
    )


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise MnistlabError(f"invalid {name}={value!r}: expected an integer >= {low}")


def search_dataset(data: Dataset, train_limit: int | None) -> tuple[Dataset, int]:
    """The trials' data and validation size: training images only, no test set.

    With the test arrays emptied, nothing in a trial can score, select or stop on
    the test set, even by mistake. ``train_limit`` keeps the first images only,
    with a validation split of a fifth of them (at most 5,000).
    """
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
    >>> write_outputs("sqlite:///runs/tune/optuna.db", "fnn", "runs/tune/fnn")  # doctest: +SKIP
    """
    import optuna

    out_dir = Path(out_dir)
    opt_study = load_study(storage, study)
    all_trials = opt_study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in all_trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise MnistlabError(
            f"study {study!r} has no completed trial yet ({counts_text(counts)}); run more trials"
        )
    best = opt_study.best_trial
    paths = {
        "best_params": out_dir / "best_params.json",
        "trials": out_dir / "trials.csv",
        "report": out_dir / "report.html",
    }
    write_trials_csv(opt_study, paths["trials"])
    figures, missing = write_figures(opt_study, out_dir / "figures")
    paths.update(figures)
    result = TuneResult(
        study=study,
        storage=redact(storage),
        out_dir=out_dir,
        best_trial=best.number,
        best_value=float(cast(float, best.value)),  # a complete trial has a value
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
    from mnistlab.tune.dashboard import render_report  # loads Matplotlib: only here

    files.write_text(paths["report"], render_report(result, opt_study, missing))
    return result
