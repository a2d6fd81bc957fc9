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
