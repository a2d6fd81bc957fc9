"""The trials: a worker's loop, the objective that trains one run, the pruning callback.

A worker (this process, or one of ``workers`` spawned processes sharing the
storage) loads the study with a TPE sampler and a median pruner and runs one
trial at a time until the budget of trials is claimed or time is up. A trial
suggests settings from the model's :class:`~mnistlab.tune.spaces.SearchSpace`,
trains them as an ordinary run of kind ``tune-trial`` in
``<runs_dir>/tune/<study>/trial-<n>``, and scores its best validation accuracy;
the test set is never touched.
"""

from __future__ import annotations

import csv
import functools
import math
import multiprocessing
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab import runtime
from mnistlab.config import make_config
from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.progress import reporter
from mnistlab.tune.spaces import search_space
from mnistlab.tune.storage import OBJECTIVE, open_storage, quiet_optuna

if TYPE_CHECKING:  # optuna and keras load on first use: `mnistlab --help` stays quick
    import optuna


def plural(n: int, word: str) -> str:
    """``"1 trial"``, ``"2 trials"``."""
    return f"{n} {word}{'s' * (n != 1)}"


def short(value: Any) -> str:
    """A parameter value in a progress line or table: floats with 3 significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SearchJob:
    """Everything a worker needs to run trials; pickled to spawned workers.

    ``progress``: whether to print progress lines (a bool, not a callable, so that
    spawned workers can receive it).
    """

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


def run_trials(job: SearchJob, claim: Callable[[], bool], sampler_seed: int) -> None:
    """Run trials of ``job`` in this process until ``claim()`` says the budget is spent
    or time is up; ``sampler_seed`` seeds the TPE sampler."""
    import optuna

    with quiet_optuna():
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
        objective = Objective(job)
        while (job.deadline is None or time.time() < job.deadline) and claim():
            # One trial per optimize(): the budget is claimed before each trial starts,
            # so K workers never run more than the trials asked for between them.
            # Optuna logs a failed trial with its traceback at WARNING; the exception
            # itself propagates and says what matters (a Ctrl-C, or a bug).
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            study.optimize(objective, n_trials=1, gc_after_trial=True)


def run_workers(job: SearchJob, trials: int, workers: int, sampler_seed: int) -> None:
    """Run ``trials`` trials of ``job`` in ``workers`` spawned processes sharing the storage.

    Worker ``i`` seeds its sampler with ``sampler_seed + 1000 i``; together the
    workers start exactly ``trials`` trials (each claims one before starting it).
    """
    # spawn, not fork: each worker starts its own TensorFlow with its own thread pools.
    ctx = multiprocessing.get_context("spawn")
    claimed = ctx.Value("i", 0)  # trials started, across workers
    threads = runtime.threads_per_worker(workers)
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


def _worker_main(
    job: SearchJob, claimed: Any, trials: int, sampler_seed: int, threads: int
) -> None:
    # Entry point of a spawned worker process: cap TensorFlow's thread pools before
    # its first op (afterwards they are fixed).
    runtime.configure_threads(threads)

    def claim() -> bool:
        with claimed.get_lock():
            if claimed.value >= trials:
                return False
            claimed.value += 1
            return True

    try:
        run_trials(job, claim, sampler_seed)
    except MnistlabError as err:
        print(f"mnistlab: error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class Objective:
    """One trial: suggest settings, train a run, return its best validation accuracy."""

    def __init__(self, job: SearchJob) -> None:
        self.job = job
        self.say = reporter(job.progress)

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
            on_epoch_end=lambda epoch, logs: self.say(
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
                kind="tune-trial",
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
        shown = " ".join(f"{k}={short(v)}" for k, v in trial.params.items())
        if pruning.pruned_at is not None:
            self.say(
                f"trial {trial.number:>3} pruned at epoch {pruning.pruned_at}: "
                f"{OBJECTIVE} {best:.4f} ({seconds:.0f} s) {shown}",
            )
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        self.say(
            f"trial {trial.number:>3} {OBJECTIVE} {best:.4f} "
            f"({plural(state['epochs_run'], 'epoch')}, {seconds:.0f} s) {shown}",
        )
        return best


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
    >>> cb = pruning_callback(trial)  # doctest: +SKIP
    >>> run = train(config, callbacks=[cb])  # doctest: +SKIP
    >>> if cb.pruned_at: raise optuna.TrialPruned()  # doctest: +SKIP
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
