"""Retraining a study's best configuration as a normal run, tested once.

The search capped every trial's epochs to compare many configurations; the
best one is trained again with the model's full recipe length and patience,
as an ordinary ``train`` run in ``runs_dir``, and evaluated on the test set:
the one and only look at the test set, after every choice has been made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec
from mnistlab.progress import reporter
from mnistlab.tune.storage import load_study


def retrain_best_config(
    storage: str,
    study: str,
    data: Dataset,
    runs_dir: Path,
    train_limit: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Train the study's best configuration as a normal run in ``runs_dir``; test it once.

    Parameters
    ----------
    storage, study : the study's database URL and name.
    data : the full dataset (the run trains on its training images, then is tested).
    runs_dir : where the run goes.
    train_limit : as in the search: only the first ``train_limit`` training images.
    progress : print what happens (and Keras's epoch lines) to stderr.

    Returns
    -------
    ``{"run", "trial", "epochs", "epochs_run", "train_seconds", "best_val_accuracy",
    "test_accuracy"}``, as kept with the study and shown in its report.
    """
    from mnistlab.config import TrainConfig
    from mnistlab.evaluate import evaluate
    from mnistlab.train import train

    opt_study = load_study(storage, study)
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
    config = best.replace(
        epochs=max(best.epochs, int(recipe.get("epochs", best.epochs))),
        patience=max(best.patience, int(recipe.get("patience", best.patience))),
    )
    train_data = data
    if train_limit is not None:
        train_data = dataclasses.replace(
            data, x_train=data.x_train[:train_limit], y_train=data.y_train[:train_limit]
        )
    reporter(progress)(
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
