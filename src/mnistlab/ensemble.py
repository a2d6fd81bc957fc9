"""Ensembles: average the softmax outputs of several finished runs.

The result is an ordinary run directory whose ``model.keras`` is one Keras
model (the members side by side, their probabilities averaged), so
``evaluate``, ``report``, ``predict`` and ``serve`` use it like any other run.
No training happens here and the test set is not looked at: members are
chosen by the user (ideally by their validation accuracy), never by test
accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import ENSEMBLE_AVERAGE_LAYER
from mnistlab.models import load_saved_model
from mnistlab.runs import RunDir


def ensemble(
    runs: Sequence[str | Path | RunDir],
    *,
    runs_dir: str | Path = "runs",
    run_name: str | None = None,
) -> RunDir:
    """Combine finished runs into a new run that averages their probabilities.

    Parameters
    ----------
    runs : two or more run directories (paths, names in ``runs_dir``, or RunDir).
    runs_dir : where the new run directory is created.
    run_name : its name (default ``<timestamp>-ensemble-<n>``).

    Returns
    -------
    RunDir of the ensemble, state "finished": evaluate it like any run.

    Examples
    --------
    >>> run = ensemble(["runs/a", "runs/b", "runs/c"])
    >>> metrics = mnistlab.evaluate(run)
    """
    import keras

    if len(runs) < 2:
        raise MnistlabError(f"an ensemble needs at least two runs, got {len(runs)}")
    members = [r if isinstance(r, RunDir) else RunDir.open(r, runs_dir) for r in runs]
    seen: set[Path] = set()
    for member in members:
        if member.path.resolve() in seen:
            raise MnistlabError(
                f"run {member.path} is given twice; an ensemble averages distinct runs"
            )
        seen.add(member.path.resolve())
    for member in members:
        member.require_finished()
    configs = [m.config() for m in members]
    datasets = {c.dataset for c in configs}
    if len(datasets) > 1:
        raise MnistlabError(f"ensemble members were trained on different datasets: {datasets}")

    inputs = keras.Input((28, 28, 1), name="image")
    outputs = []
    for i, member in enumerate(members):
        model = load_saved_model(member.model_path)
        # Nested models need distinct names to be saved together.
        wrapped = keras.Model(model.inputs[0], model.outputs[0], name=f"member_{i}_{model.name}")
        outputs.append(wrapped(inputs))
    probs = keras.layers.Average(name=ENSEMBLE_AVERAGE_LAYER)(outputs)
    combined = keras.Model(inputs, probs, name="ensemble")

    base = configs[0]
    config = TrainConfig.from_dict(
        {
            **base.to_dict(),
            "model": "ensemble",
            "params": {
                "members": [str(m.path) for m in members],
                "member_models": [c.model for c in configs],
            },
        }
    )
    run = RunDir.create(runs_dir, config, name=run_name or _default_name(len(members)))
    with files.atomic_path(run.model_path, suffix=".keras") as tmp:
        combined.save(tmp)
    states = [m.state() for m in members]
    run.write_state(
        state="finished",
        finished=time.time(),
        train_seconds=round(sum(s.get("train_seconds", 0.0) for s in states), 3),
        params_count=int(combined.count_params()),
        members=[str(m.path) for m in members],
        member_best_val_accuracy=[s.get("best_val_accuracy") for s in states],
    )
    return run


def _default_name(n: int) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-ensemble-{n}"
