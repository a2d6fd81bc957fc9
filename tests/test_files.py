"""Atomic writes: the target is the old file or the complete new one, never a fragment;
and disk trouble (a full disk, a read-only filesystem) is one clear line that damages
nothing: not the file being replaced, not the data cache, not a training run."""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnistlab import files
from mnistlab.config import make_config
from mnistlab.data import load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.runs import RunDir


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "m.json"
    files.write_json(target, {"a": 1})
    files.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["m.json"]


def test_a_failure_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.bin"]


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a directory should be: fails even for root
    with pytest.raises(MnistlabError, match="cannot write"):
        files.write_text(blocker / "sub" / "out.txt", "data")


def test_link_or_copy_replaces_the_target_with_the_same_bytes(tmp_path):
    source, target = tmp_path / "epoch-0002.keras", tmp_path / "last.keras"
    target.write_bytes(b"epoch 1")
    source.write_bytes(b"epoch 2")
    files.link_or_copy(source, target)
    assert target.read_bytes() == b"epoch 2"
    source.unlink()  # the next commit removes old epochs; 'last' must survive that
    assert target.read_bytes() == b"epoch 2"
    assert sorted(os.listdir(tmp_path)) == ["last.keras"]


# %% Disk trouble: a real full disk and a real read-only filesystem --------------------
#
# A tmpfs of a few kB or MB is a real filesystem that really fills up. Mounting needs
# root (CI containers and this project's machines run as root); elsewhere these
# tests are skipped with the reason.


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """Mount a ``size`` tmpfs at ``path`` for the duration; skip the test if we cannot."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as err:
        pytest.skip(f"cannot run mount to make a small filesystem: {err}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def resize(path: Path, size: str) -> None:
    """Grow a mounted tmpfs: the user freed some space."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, timeout=30)


def test_a_full_disk_is_one_clear_line_and_keeps_the_old_file(tmp_path):
    with tmpfs(tmp_path / "disk", "64k") as disk:
        target = disk / "history.csv"
        files.write_text(target, "epoch,loss\n1,0.5\n")
        with pytest.raises(MnistlabError) as err:
            files.write_bytes(target, bytes(200_000))
        message = str(err.value)
        assert message.startswith(f"cannot write {target}: No space left on device")
        assert "free some disk space" in message and "\n" not in message
        assert target.read_text() == "epoch,loss\n1,0.5\n"
        assert os.listdir(disk) == ["history.csv"]  # no temporary left behind


def test_a_read_only_filesystem_is_one_clear_line(tmp_path):
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
        with pytest.raises(MnistlabError, match="Read-only file system; choose a writable"):
            files.write_json(ro / "run.json", {"state": "running"})
        with pytest.raises(MnistlabError, match="Read-only file system; pass --runs-dir"):
            RunDir.create(ro / "runs", make_config("fnn"))


def test_a_failed_cache_write_leaves_the_previous_cache_file_untouched(
    mnist, mnist_idx_dir, tmp_path, caplog
):
    # A damaged 30 MB cache on a 64 MB disk: rebuilding it (55 MB) runs out of space.
    with tmpfs(tmp_path / "cache", "64m") as home:
        cache = home / "mnist.npz"
        with open(mnist.cache_path, "rb") as fh:
            cache.write_bytes(fh.read(30 * 2**20))
        before = hashlib.sha256(cache.read_bytes()).hexdigest()

        with caplog.at_level(logging.WARNING, logger="mnistlab.data"):
            ds = load_dataset(home=home, idx_dir=mnist_idx_dir, mirrors=())

        assert ds.source == f"idx directory {mnist_idx_dir}"  # verified data all the same
        np.testing.assert_array_equal(ds.x_test, mnist.x_test)
        assert "No space left on device" in caplog.text and "without a cache" in caplog.text
        assert hashlib.sha256(cache.read_bytes()).hexdigest() == before
        assert os.listdir(home) == ["mnist.npz"]


@pytest.mark.slow
def test_training_on_a_full_disk_stops_cleanly_and_resumes_once_there_is_space(mnist, tmp_path):
    from mnistlab.train import train

    # 6,000 real images; fnn 64-32's checkpoint (weights + Adam moments) is ~650 kB, so
    # on a 1 MB disk the first epoch's commit fits and the second one's does not.
    data = dataclasses.replace(mnist, x_train=mnist.x_train[:6000], y_train=mnist.y_train[:6000])
    config = make_config("fnn", params={"hidden": (64, 32)}, epochs=3, val_size=1000)
    with tmpfs(tmp_path / "runs", "1m") as runs:
        with pytest.raises(MnistlabError) as err:
            train(config, runs_dir=runs, dataset=data, verbose=0, run_name="full")
        run = RunDir.open(runs / "full")
        message = str(err.value)
        assert "\n" not in message
        assert "epoch-0002.keras: No space left on device" in message
        assert f"stopped after 1 of 3 epochs; resume it with: {run.resume_command()}" in message
        assert run.state()["state"] == "failed"
        with pytest.raises(MnistlabError, match="state: failed"):
            run.require_finished()

        resize(runs, "8m")
        train(resume=run, dataset=data, verbose=0)
        assert run.state()["state"] == "finished" and run.state()["epochs_run"] == 3
        assert "error" not in run.state()
        run.require_finished()
