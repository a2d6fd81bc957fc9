"""Atomic writes: the target is the old file or the complete new one, never a fragment."""

import json
import os

import pytest

from mnistlab import files
from mnistlab.errors import MnistlabError


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
