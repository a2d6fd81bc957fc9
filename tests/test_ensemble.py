"""Ensembles: a new run whose probabilities are the mean of its members'."""

import numpy as np
import pytest

from mnistlab.config import make_config
from mnistlab.ensemble import ensemble
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import evaluate, load_predictions
from mnistlab.runs import RunDir
from mnistlab.train import train


@pytest.fixture(scope="module")
def members(mnist, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("members")
    runs = []
    for seed in (0, 1):
        config = make_config("fnn", params={"hidden": (64, 32)}, epochs=1, seed=seed)
        run = train(config, runs_dir=runs_dir, dataset=mnist, verbose=0)
        evaluate(run, dataset=mnist)
        runs.append(run)
    return runs


@pytest.mark.slow
def test_ensemble_averages_member_probabilities_and_evaluates_like_a_run(members, mnist, tmp_path):
    run = ensemble([m.path for m in members], runs_dir=tmp_path)
    metrics = evaluate(run, dataset=mnist)
    _, probs = load_predictions(run)
    member_probs = [load_predictions(m)[1] for m in members]
    np.testing.assert_allclose(probs, np.mean(member_probs, axis=0), atol=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(
        float(np.mean(probs.argmax(1) == mnist.y_test))
    )
    assert run.config().params["members"] == [str(m.path) for m in members]


def test_an_ensemble_needs_two_finished_runs(members, tmp_path):
    with pytest.raises(MnistlabError, match="at least two runs"):
        ensemble([members[0].path], runs_dir=tmp_path)
    unfinished = RunDir.create(tmp_path, make_config("fnn"))
    with pytest.raises(MnistlabError, match="did not finish"):
        ensemble([members[0].path, unfinished.path], runs_dir=tmp_path)
