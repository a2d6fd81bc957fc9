"""Ensembles: average the softmax outputs of several finished runs.

The result is a run directory of kind ``"ensemble"`` whose ``model.keras`` is
one Keras model (the members side by side, their probabilities averaged), so
``evaluate``, ``report``, ``predict`` and ``serve`` use it like any other run.
Its ``config.json`` is an :class:`~mnistlab.config.EnsembleConfig` (the
members and their dataset), not training settings: nothing is trained here.
The test set is not looked at either: members are chosen by the user (ideally
by their validation accuracy), never by test accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistlab.config import EnsembleConfig
from mnistlab.errors import MnistlabError
from mnistlab.runs import RunDir, load_run_model

# The layer of an ensemble's model that averages its members' outputs.
ENSEMBLE_AVERAGE_LAYER = "mean_probability"


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
    >>> run = ensemble(["runs/a", "runs/b", "runs/c"])  # doctest: +SKIP
    >>> metrics = mnistlab.evaluate(run)  # doctest: +SKIP
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
        model = load_run_model(member)
        # Nested models need distinct names to be saved together.
        wrapped = keras.Model(model.inputs[0], model.outputs[0], name=f"member_{i}_{model.name}")
        outputs.append(wrapped(inputs))
    probs = keras.layers.Average(name=ENSEMBLE_AVERAGE_LAYER)(outputs)
    combined = keras.Model(inputs, probs, name="ensemble")

    config = EnsembleConfig(
        dataset=configs[0].dataset,
        members=[str(m.path) for m in members],
        member_models=[c.model for c in configs],
    )
    run = RunDir.create(runs_dir, config, name=run_name, kind="ensemble")
    run.write_model(combined)
    records = [m.record() for m in members]
    run.write_state(
        state="finished",
        finished=time.time(),
        train_seconds=round(sum(r.train_seconds or 0.0 for r in records), 3),
        params_count=int(combined.count_params()),
        members=[str(m.path) for m in members],
        member_best_val_accuracy=[r.best_val_accuracy for r in records],
    )
    return run


def with_member_outputs(model: Any) -> Any:
    """An ensemble's model made to output each member's probabilities, then its own.

    ``evaluate`` scores the members and the ensemble in one pass with it. A model
    not laid out by :func:`ensemble` (no averaging layer) is returned as it is.
    """
    import keras

    try:
        average = model.get_layer(ENSEMBLE_AVERAGE_LAYER)
    except ValueError:
        return model
    members = average.input
    if not isinstance(members, list) or average.output is not model.outputs[0]:
        return model
    return keras.Model(model.inputs, [*members, model.outputs[0]])
