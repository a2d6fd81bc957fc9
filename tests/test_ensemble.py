"""Ensembles: a new run whose probabilities are the mean of its members'."""

import json

import numpy as np
import pytest

from mnistlab.config import EnsembleConfig, make_config
from mnistlab.ensemble import ensemble
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import calibrate, evaluate, format_metrics, load_predictions
from mnistlab.report import write_report
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
    assert run.config().members == [str(m.path) for m in members]

    # The evaluation also scores each member, in the same pass: the numbers each
    # member's own evaluation gave, and how their errors overlap.
    recorded = metrics["members"]
    assert recorded["runs"] == [str(m.path) for m in members]
    assert recorded["n_errors"] == [m.metrics()["n_errors"] for m in members]
    wrong = np.stack([p.argmax(1) != mnist.y_test for p in member_probs])
    assert recorded["wrong_in_all"] == int(wrong.all(axis=0).sum())
    assert recorded["wrong_in_any"] == int(wrong.any(axis=0).sum())
    assert recorded["wrong_in_all"] < min(recorded["n_errors"]) <= recorded["wrong_in_any"]
    ensemble_wrong = probs.argmax(1) != mnist.y_test
    assert recorded["fixed"] == int((~ensemble_wrong & wrong.any(axis=0)).sum())
    assert f"members        2 runs with {recorded['n_errors'][0]:,}, " in format_metrics(metrics)
    page = write_report(run, dataset=mnist).read_text()
    assert "Ensemble members" in page and members[1].path.name in page
    assert "for an ensemble only when its members share seed and val_size" in page
    # An ordinary run has no members section.
    assert "members" not in members[0].metrics()
    # Members of seeds 0 and 1 held out different validation images: each one's is partly
    # the other's training data, so there is nothing honest to fit a temperature on.
    with pytest.raises(MnistlabError, match="held out different validation images"):
        calibrate(run, dataset=mnist)
    assert not (run.path / "calibration.json").exists()


def test_an_ensemble_needs_two_finished_runs(members, tmp_path):
    with pytest.raises(MnistlabError, match="at least two runs"):
        ensemble([members[0].path], runs_dir=tmp_path)
    unfinished = RunDir.create(tmp_path, make_config("fnn"))
    with pytest.raises(MnistlabError, match="did not finish"):
        ensemble([members[0].path, unfinished.path], runs_dir=tmp_path)
    # The same run twice, once by path and once by name: refused, and nothing is made.
    before = sorted(tmp_path.iterdir())
    with pytest.raises(MnistlabError, match="is given twice"):
        ensemble([members[0].path, members[0].name], runs_dir=members[0].path.parent)
    with pytest.raises(MnistlabError, match="invalid run name '../escaped'"):
        ensemble([m.path for m in members], runs_dir=tmp_path, run_name="../escaped")
    assert sorted(tmp_path.iterdir()) == before


def test_an_ensemble_is_a_run_of_kind_ensemble_with_its_own_config_record(members, tmp_path):
    run = ensemble([m.path for m in members], runs_dir=tmp_path)
    assert json.loads(run.state_path.read_text())["kind"] == "ensemble"
    assert run.kind == "ensemble" and run.is_ensemble()
    config = run.config()
    assert isinstance(config, EnsembleConfig)  # not a TrainConfig with model "ensemble"
    assert config.members == [str(m.path) for m in members]
    assert config.member_models == ["fnn", "fnn"] and config.dataset == "mnist"
    saved = json.loads(run.config_path.read_text())
    assert set(saved) == {"dataset", "members", "member_models"}  # no training settings
    assert all(m.kind == "train" for m in members)
    state = run.state()
    assert state["state"] == "finished" and state["members"] == config.members


@pytest.mark.slow
def test_an_incomplete_ensemble_says_to_make_it_again_not_to_resume(members, tmp_path):
    run = ensemble([m.path for m in members], runs_dir=tmp_path)
    run.state_path.unlink()  # run.json lost: the run's state is unknown
    with pytest.raises(MnistlabError, match="make it again with 'mnistlab ensemble'") as info:
        run.require_finished()
    assert "resume" not in str(info.value)
    with pytest.raises(MnistlabError, match="is an ensemble .* nothing to resume"):
        train(resume=run.path)
    assert not run.state_path.exists()  # the attempt wrote nothing into it
