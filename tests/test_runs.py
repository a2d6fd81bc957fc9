"""Run directories: creation, the latest link, lookup and the finished check."""

import json

import numpy as np
import pytest

from mnistlab.config import EnsembleConfig, make_config
from mnistlab.errors import MnistlabError
from mnistlab.runs import RunDir


def test_create_writes_the_config_and_points_latest_at_the_newest(tmp_path):
    first = RunDir.create(tmp_path, make_config("fnn", seed=1))
    second = RunDir.create(tmp_path, make_config("fnn", seed=1))
    assert first.path != second.path  # same second, same name: still two runs
    assert RunDir.open("latest", runs_dir=tmp_path).path == second.path.resolve()
    assert second.config().seed == 1
    assert second.state()["state"] == "running"


def test_open_accepts_a_path_or_a_name_and_rejects_missing_runs(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"), name="mine")
    assert RunDir.open(run.path).path == run.path.resolve()
    assert RunDir.open("mine", runs_dir=tmp_path).path == run.path.resolve()
    with pytest.raises(MnistlabError, match="no run directory at nothing-here"):
        RunDir.open("nothing-here", runs_dir=tmp_path)


def test_an_unfinished_run_is_refused(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"))
    with pytest.raises(MnistlabError, match="did not finish"):
        run.require_finished()


def test_unwritable_runs_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("a file, not a directory")
    with pytest.raises(MnistlabError, match="--runs-dir"):
        RunDir.create(blocker, make_config("fnn"))


def test_a_killed_run_is_reported_as_killed_with_the_command_that_resumes_it(tmp_path):
    # SIGKILL leaves run.json at "running" and nobody holding the lock.
    run = RunDir.create(tmp_path, make_config("fnn"), name="killed")
    with pytest.raises(MnistlabError) as err:
        run.require_finished()
    assert "no process is training it: it was killed" in str(err.value)
    assert str(err.value).endswith(f"resume it with: mnistlab train --resume {run.path}")


def test_a_run_being_trained_is_reported_as_such_and_cannot_be_locked_twice(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"))
    assert not run.is_training()
    with run.training_lock():
        assert run.is_training()
        with pytest.raises(MnistlabError, match="still training in another process"):
            run.require_finished()
        with pytest.raises(MnistlabError, match="being trained by another process"):
            with run.training_lock():
                pass
    assert not run.is_training()  # released, also when the holder dies (flock)


def test_interrupted_and_failed_runs_are_refused_with_their_state(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"))
    for state in ("interrupted", "failed"):
        run.write_state(state=state)
        with pytest.raises(MnistlabError, match=rf"\(state: {state}\); resume it with"):
            run.require_finished()
    # "finished" is believed only together with model.keras.
    run.write_state(state="finished")
    with pytest.raises(MnistlabError, match="model.keras is missing"):
        run.require_finished()
    run.model_path.write_bytes(b"a model")
    run.require_finished()


def test_write_state_merges_fields_and_none_removes_one(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"))
    run.write_state(state="failed", error="No space left on device")
    run.write_state(state="finished", error=None, epochs_run=3)
    state = run.state()
    assert state["state"] == "finished" and state["epochs_run"] == 3
    assert "error" not in state and "started" in state


# -- the run's kind ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["train", "cv-fold", "tune-trial"])
def test_run_json_records_the_kind_of_a_trained_run(tmp_path, kind):
    run = RunDir.create(tmp_path, make_config("fnn"), kind=kind)
    assert json.loads(run.state_path.read_text())["kind"] == kind
    assert run.kind == kind and run.record().kind == kind
    assert run.is_cv_fold() == (kind == "cv-fold")
    assert not run.is_ensemble()
    # Later writes keep it.
    run.write_state(state="finished", epochs_run=2)
    assert run.state()["kind"] == kind


def test_run_json_records_an_ensemble_and_its_config_is_its_members(tmp_path):
    config = EnsembleConfig(
        dataset="mnist", members=["runs/a", "runs/b"], member_models=["fnn", "cnn"]
    )
    run = RunDir.create(tmp_path, config, kind="ensemble")
    assert json.loads(run.state_path.read_text())["kind"] == "ensemble"
    assert run.kind == "ensemble" and run.is_ensemble() and not run.is_cv_fold()
    assert run.name.endswith("-ensemble-2")
    assert run.config() == config
    assert json.loads(run.config_path.read_text()) == {
        "dataset": "mnist",
        "members": ["runs/a", "runs/b"],
        "member_models": ["fnn", "cnn"],
    }
    with pytest.raises(MnistlabError, match="is an ensemble .* no training config"):
        run.train_config()
    with pytest.raises(MnistlabError, match="make it again with 'mnistlab ensemble'"):
        run.require_finished()


def test_create_refuses_an_unknown_kind_or_a_config_of_another_kind(tmp_path):
    ensemble_config = EnsembleConfig(dataset="mnist", members=["a", "b"], member_models=["x", "y"])
    with pytest.raises(MnistlabError, match="invalid kind='sweep'"):
        RunDir.create(tmp_path, make_config("fnn"), kind="sweep")  # type: ignore[arg-type]
    with pytest.raises(MnistlabError, match="cannot have a config of type TrainConfig"):
        RunDir.create(tmp_path, make_config("fnn"), kind="ensemble")
    with pytest.raises(MnistlabError, match="cannot have a config of type EnsembleConfig"):
        RunDir.create(tmp_path, ensemble_config)
    assert not any(tmp_path.iterdir())  # nothing made


# -- runs written by mnistlab 0.1.0 (no kind in run.json) ------------------------------------


def _old_run(path, config: dict, state: dict) -> RunDir:
    """A run directory as mnistlab 0.1.0 wrote it: run.json without a kind."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "run.json").write_text(json.dumps(state, indent=2))
    (path / "model.keras").write_bytes(b"a model")
    return RunDir(path)


_OLD_STATE = {"state": "finished", "started": 1.0, "finished": 2.0, "train_seconds": 1.0}


def test_an_old_trained_run_opens_as_kind_train_and_records_it_on_the_next_write(tmp_path):
    config = make_config("fnn", params={"hidden": (64, 32)}, epochs=1)
    old = json.loads(json.dumps(config.to_dict()))  # as written: tuples became lists
    run = _old_run(tmp_path / "old", old, {**_OLD_STATE, "data_source": "cache: mnist.npz"})
    assert "kind" not in json.loads(run.state_path.read_text())
    assert run.kind == "train" and run.state()["kind"] == "train"
    assert run.config() == config and run.config().params["hidden"] == (64, 32)
    run.require_finished()
    run.write_state(note="opened by a newer version")
    assert json.loads(run.state_path.read_text())["kind"] == "train"


def test_an_old_cross_validation_fold_opens_as_kind_cv_fold(tmp_path):
    source = "cross-validation fold 2/5 of cache: mnist.npz"
    run = _old_run(
        tmp_path / "fold_2", make_config("fnn").to_dict(), {**_OLD_STATE, "data_source": source}
    )
    assert run.kind == "cv-fold" and run.is_cv_fold()


def test_an_old_tune_trial_opens_as_kind_tune_trial(tmp_path):
    path = tmp_path / "runs" / "tune" / "fnn-study" / "trial-3"
    run = _old_run(path, make_config("fnn").to_dict(), _OLD_STATE)
    assert run.kind == "tune-trial"


def test_an_old_ensemble_opens_as_kind_ensemble_with_its_members(tmp_path):
    # 0.1.0 disguised an ensemble as a training config with model "ensemble".
    old_config = {
        **make_config("fnn").to_dict(),
        "model": "ensemble",
        "params": {"members": ["/r/a", "/r/b", "/r/c"], "member_models": ["cnn", "cnn", "fnn"]},
    }
    old_state = {**_OLD_STATE, "members": ["/r/a", "/r/b", "/r/c"], "params_count": 99}
    run = _old_run(tmp_path / "ens", json.loads(json.dumps(old_config)), old_state)
    assert run.kind == "ensemble" and run.is_ensemble()
    config = run.config()
    assert isinstance(config, EnsembleConfig)
    assert (config.dataset, config.members, config.member_models) == (
        "mnist",
        ["/r/a", "/r/b", "/r/c"],
        ["cnn", "cnn", "fnn"],
    )
    assert config.model == "ensemble"
    # Losing run.json does not make it a trained run either.
    run.state_path.unlink()
    assert run.kind == "ensemble"
    with pytest.raises(MnistlabError, match="make it again with 'mnistlab ensemble'"):
        run.require_finished()


def test_a_run_json_lost_from_a_current_ensemble_still_says_ensemble(tmp_path):
    config = EnsembleConfig(dataset="mnist", members=["a", "b"], member_models=["x", "y"])
    run = RunDir.create(tmp_path, config, kind="ensemble")
    run.state_path.unlink()
    assert run.kind == "ensemble" and run.state() == {"state": "unknown"}


# -- the typed records ---------------------------------------------------------------------


def test_write_state_refuses_a_field_of_the_wrong_type_in_one_line(tmp_path):
    run = RunDir.create(tmp_path, make_config("fnn"))
    before = run.state_path.read_text()
    with pytest.raises(MnistlabError) as info:
        run.write_state(epochs_run="three")
    assert "epochs_run='three'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MnistlabError, match="kind='sweep'"):
        run.write_state(kind="sweep")
    assert run.state_path.read_text() == before  # nothing written


def test_metrics_are_checked_when_written_and_read_back_typed(tmp_path):
    from mnistlab.evaluate import metrics_from_probs

    run = RunDir.create(tmp_path, make_config("fnn"))
    metrics = metrics_from_probs(np.array([0, 1, 1]), np.eye(2)[[0, 1, 0]], ["a", "b"])
    run.write_metrics(metrics)
    assert run.metrics() == json.loads(json.dumps(metrics))
    record = run.metrics_record()
    assert record.n_errors == 1 and record.per_class[1].support == 2
    with pytest.raises(MnistlabError, match="cannot write .*metrics.json: n_test"):
        run.write_metrics({**metrics, "n_test": "three"})


def test_load_temperature_is_one_without_a_calibration(tmp_path):
    from mnistlab.runs import load_temperature

    run = RunDir.create(tmp_path, make_config("fnn"))
    assert load_temperature(run) == 1.0 and load_temperature(None) == 1.0
    run.write_calibration({"method": "temperature", "temperature": 1.25})
    assert load_temperature(run) == 1.25
    with pytest.raises(MnistlabError, match="temperature"):
        run.write_calibration({"temperature": 0.0})
