"""The command line as a user meets it: real subprocesses, exit codes and messages."""

import json
import os
import subprocess
import sys

import pytest

from mnistlab.models import get_model_spec


def mnistlab(*args, cwd=None, env_extra=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mnistlab: error:")]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_models_lists_every_registered_model_with_its_size():
    result = mnistlab("models", "--json")
    assert result.returncode == 0, result.stderr
    # TensorFlow loads for this, and its start-up lines stay off the terminal.
    assert result.stderr == ""
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"fnn", "cnn-fast", "cnn"} <= set(rows)
    h1, h2 = get_model_spec("fnn").defaults["hidden"]
    assert rows["fnn"]["params"] == 784 * h1 + h1 + h1 * h2 + h2 + h2 * 10 + 10


def test_the_models_table_lines_up_and_names_every_setting():
    rows = {row["name"]: row for row in json.loads(mnistlab("models", "--json").stdout)}
    lines = mnistlab("models").stdout.splitlines()
    ends = set()
    for name, row in rows.items():
        (line,) = [x for x in lines if x.startswith(f"{name} ")]
        ends.add(line.index(f"{row['params']:,}  ") + len(f"{row['params']:,}"))
    assert len(ends) == 1  # the parameter counts end in one column
    assert not any(line.rstrip().endswith("settings:") for line in lines)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["train", "--model", "fnn", "-p", "hidden"], "--param expects NAME=VALUE"),
        (["train", "--model", "fnn", "-p", "depth=3"], "has no setting depth"),
        (["train", "--epochs", "0"], "invalid epochs=0"),
        (["evaluate", "no/such/run"], "no run directory at no/such/run"),
        (["report", "no/such/run"], "no run directory at no/such/run"),
        (["data", "--dataset", "cifar"], "cifar"),
        (["preprocess", "digit.png", "--out", "small.jpg"], "give a path ending in .png"),
    ],
)
def test_user_mistakes_get_one_clear_line_and_a_nonzero_exit(tmp_path, args, fragment):
    assert_one_line_error(mnistlab(*args, cwd=tmp_path), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "fnn", "-p", "dropout=2"], "dropout must be in [0, 1)"),
        (["--model", "cnn-fast", "-p", "width=0"], "model 'cnn-fast' cannot be built with"),
    ],
)
def test_settings_the_model_refuses_leave_no_run_behind(tmp_path, args, fragment):
    result = mnistlab("train", *args, "--epochs", "1", cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert "resume" not in result.stderr  # nothing was started, so nothing to resume
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("command", ["train", "cv", "tune", "bench", "compare"])
def test_a_seed_out_of_range_is_refused_before_any_work(tmp_path, command):
    args = ["a", "b"] if command == "compare" else []
    result = mnistlab(command, *args, "--seed", "-1", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "'--seed': -1 is not in the range 0<=x<=4294967295" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_command_has_help_with_an_example():
    for command in ("data", "models", "train", "evaluate", "report"):
        result = mnistlab(command, "--help")
        assert result.returncode == 0
        assert "Example:" in result.stdout, command


def test_the_command_modules_together_register_every_command_with_an_example():
    from click.testing import CliRunner

    from mnistlab.cli import cli

    assert sorted(cli.commands) == [
        "bench",
        "calibrate",
        "compare",
        "cv",
        "data",
        "ensemble",
        "evaluate",
        "export",
        "models",
        "ood",
        "predict",
        "preprocess",
        "read",
        "read-bench",
        "report",
        "robustness",
        "serve",
        "train",
        "trust",
        "tune",
    ]
    runner = CliRunner()
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example:" in result.output, name


def test_the_installed_script_and_python_m_run_the_same_main():
    from importlib.metadata import entry_points

    from mnistlab.cli import main

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "mnistlab"]
    assert script.value == "mnistlab.cli:main" and script.load() is main
    result = mnistlab("--version")
    assert result.returncode == 0 and result.stdout.startswith("mnistlab, version ")
