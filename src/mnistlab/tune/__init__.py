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

Each trial is an ordinary run directory of kind ``tune-trial``,
``<runs_dir>/tune/<study>/trial-<n>``, so its history and model can be inspected
like any other run.

The package, by concern:

- :mod:`~mnistlab.tune.spaces`: what is searched for each model;
- :mod:`~mnistlab.tune.storage`: the study database, and what a study records;
- :mod:`~mnistlab.tune.trials`: workers, the objective (one trial = one run), pruning;
- :mod:`~mnistlab.tune.search`: :func:`tune` and :func:`write_outputs`;
- :mod:`~mnistlab.tune.outputs`: trials.csv, Optuna's plots, :class:`TuneResult`;
- :mod:`~mnistlab.tune.dashboard`: the study's report.html (a Jinja2 template);
- :mod:`~mnistlab.tune.retrain`: the best configuration as a normal, tested run.

>>> result = tune("fnn", trials=20, workers=2)  # doctest: +SKIP
>>> result.best_value, result.best_params  # doctest: +SKIP
"""

from typing import Any

from mnistlab.tune.outputs import FIGURES, TuneResult
from mnistlab.tune.search import TuneInterrupted, search_dataset, tune, write_outputs
from mnistlab.tune.spaces import (
    SEARCH_SPACES,
    SearchSpace,
    cnn_space,
    fnn_space,
    search_space,
    training_space,
)
from mnistlab.tune.storage import (
    OBJECTIVE,
    STUDY_NAME_RE,
    create_study,
    default_storage,
    load_study,
    open_storage,
    redact,
)
from mnistlab.tune.trials import pruning_callback

__all__ = [
    "FIGURES",
    "OBJECTIVE",
    "SEARCH_SPACES",
    "STUDY_NAME_RE",
    "SearchSpace",
    "TuneInterrupted",
    "TuneResult",
    "cnn_space",
    "create_study",
    "default_storage",
    "fnn_space",
    "load_study",
    "open_storage",
    "pruning_callback",
    "redact",
    "render_report",
    "search_dataset",
    "search_space",
    "training_space",
    "tune",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    # The dashboard draws on mnistlab.report (Matplotlib, Seaborn: seconds to import);
    # a spawned worker, which only runs trials, does not load it.
    if name == "render_report":
        from mnistlab.tune.dashboard import render_report

        return render_report
    raise AttributeError(f"module 'mnistlab.tune' has no attribute {name!r}")
