"""The run's abstention rule measured on the test digits: coverage, selective accuracy, examples.

``mnistlab evaluate`` calls :func:`measure_abstention` after scoring the test set: the
rule chosen on validation (``abstention.json``) is applied to the 10,000 test digits
and the result is added to ``abstention.json`` under ``"test"``::

    {"n", "coverage" (share answered), "selective_accuracy" (accuracy on those),
     "accuracy" (on all), "rates": {"not a digit", "unsure", "not a single digit"},
     "examples": {reason: [test index, ...]}}

Nothing is chosen here: the thresholds stay the ones fitted on validation. The report
draws the operating point on the risk-coverage curve and shows the examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.data import Dataset, to_float
from mnistlab.evaluate import run_dataset
from mnistlab.runs import RunDir, load_predictions, load_run_model
from mnistlab.trust.abstention import REASONS, Abstainer

__all__ = ["EXAMPLES", "measure_abstention"]

EXAMPLES = 12  # test indices kept per reason


def measure_abstention(
    run: RunDir | str | Path, *, dataset: Dataset | None = None, runs_dir: str | Path = "runs"
) -> dict[str, Any] | None:
    """Apply the run's abstention rule to its test digits; record it in abstention.json.

    Parameters
    ----------
    run : an evaluated run (its ``predictions.npz`` holds the calibrated test probabilities).
    dataset : the run's dataset if already loaded.
    runs_dir : where run names are looked up.

    Returns
    -------
    The ``"test"`` block (see the module docstring), or None when the run has no
    abstention rule.
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    record = run.abstention_record()
    if record is None:
        return None
    dataset = run_dataset(run, dataset)
    y_true, probs = load_predictions(run)
    abstainer = Abstainer.from_run(run, load_run_model(run))
    assert abstainer is not None  # the record exists
    images = to_float(dataset.x_test)[..., 0]
    reasons = abstainer.decide(images, probs)
    answered = np.array([r is None for r in reasons])
    correct = probs.argmax(axis=1) == y_true
    test = {
        "n": len(y_true),
        "coverage": float(answered.mean()),
        "selective_accuracy": float(correct[answered].mean()) if answered.any() else None,
        "accuracy": float(correct.mean()),
        "rates": {reason: float(np.mean([r == reason for r in reasons])) for reason in REASONS},
        "examples": {
            reason: [i for i, r in enumerate(reasons) if r == reason][:EXAMPLES]
            for reason in REASONS
        },
    }
    data = record.model_dump()
    data["test"] = test
    run.write_abstention(data)
    return test
