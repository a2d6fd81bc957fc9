"""Run directories: creation, the latest link, lookup and the finished check."""

import pytest

from mnistlab.config import make_config
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
