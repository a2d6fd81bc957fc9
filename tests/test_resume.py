"""Surviving faults end to end: real `mnistlab train` processes killed (SIGKILL) or
stopped (Ctrl-C, SIGINT) mid-epoch, then resumed, against uninterrupted runs.

All runs train the same small real model (fnn 64-32, 3 epochs over the 55,000
training images, seed 3) with ``--deterministic``, so "ends like an
uninterrupted run" can be checked to the last bit of every weight, and the
test metrics with them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import evaluate
from mnistlab.runs import RunDir

pytestmark = pytest.mark.slow

EPOCHS = 3
TRAIN = ("train", "--model", "fnn", "-p", "hidden=64,32", "--epochs", str(EPOCHS), "--seed", "3")
TRAIN += ("--batch-size", "128", "--deterministic")  # 430 steps per epoch, whatever the recipe
# Resuming is about the training; the trust step after it (minutes) is tested elsewhere.
TRAIN += ("--no-trust",)
TIMEOUT_S = 600  # generous: CI machines can be slow and shared


class Training:
    """One ``mnistlab`` process in the background, its output in files."""

    def __init__(self, args: tuple[str, ...], runs_dir: Path, home: Path) -> None:
        self.runs_dir = runs_dir
        runs_dir.mkdir(parents=True, exist_ok=True)
        self.out, self.err = runs_dir / "stdout.txt", runs_dir / "stderr.txt"
        env = {
            **os.environ,
            "MNISTLAB_HOME": str(home),  # the session's verified MNIST cache
            "MNISTLAB_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mnistlab", *args, "--runs-dir", str(runs_dir)],
                stdout=out,
                stderr=err,
                env=env,
            )

    @property
    def run(self) -> RunDir:
        return RunDir.open("latest", runs_dir=self.runs_dir)

    def committed_epochs(self) -> int:
        """Epochs committed to checkpoints/resume.json so far (0 before the first)."""
        try:
            return json.loads(self.run.resume_path.read_text())["epoch"]
        except (MnistlabError, OSError, KeyError, ValueError):
            return 0

    def wait_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert self.proc.poll() is None, f"training ended early:\n{self.stderr()}"
            assert time.monotonic() < deadline, "timed out waiting for training"
            time.sleep(0.05)

    def finish(self) -> int:
        return self.proc.wait(timeout=TIMEOUT_S)

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def start(mnist: Dataset) -> Iterator[Callable[[Path, tuple[str, ...]], Training]]:
    started: list[Training] = []

    def start(runs_dir: Path, args: tuple[str, ...] = TRAIN) -> Training:
        started.append(Training(args, runs_dir, mnist.cache_path.parent))
        return started[-1]

    yield start
    for training in started:  # a failed test leaves no process behind
        training.stop()


@pytest.fixture(scope="module")
def uninterrupted(start, tmp_path_factory: pytest.TempPathFactory) -> tuple[Training, Training]:
    """Two runs of the same training, never interrupted: the reference, and a second one
    for the determinism test. Started together in the background, once."""
    return start(tmp_path_factory.mktemp("reference")), start(tmp_path_factory.mktemp("again"))


def weights(run: RunDir) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(run.model_path).get_weights()


def test_sigkill_mid_epoch_then_resume_ends_exactly_like_an_uninterrupted_run(
    start, uninterrupted: tuple[Training, Training], mnist: Dataset, tmp_path: Path
) -> None:
    victim = start(tmp_path / "killed")
    victim.wait_until(lambda: victim.committed_epochs() >= 1)
    time.sleep(0.5)  # well into the next epoch (one takes seconds)
    victim.proc.send_signal(signal.SIGKILL)
    assert victim.finish() == -signal.SIGKILL
    run = victim.run
    killed_after = victim.committed_epochs()
    assert 1 <= killed_after < EPOCHS, "the kill must land before training ended"

    # The run directory does not lie: not finished, and evaluate says what to do.
    assert run.state()["state"] == "running" and not run.model_path.exists()
    with pytest.raises(MnistlabError, match="no process is training it: it was killed") as err:
        evaluate(run, dataset=mnist)
    assert f"resume it with: mnistlab train --resume {run.path}" in str(err.value)

    resumed = start(tmp_path / "resume-log", ("train", "--resume", str(run.path), "--no-trust"))
    assert resumed.finish() == 0, resumed.stderr()
    # It continued: only the epochs after the kill ran in the second process.
    assert f"Epoch {killed_after + 1}/{EPOCHS}" in resumed.stdout()
    assert f"Epoch {killed_after}/{EPOCHS}" not in resumed.stdout()
    assert run.state()["resumed"][0]["epoch"] == killed_after
    # --no-trust: no abstention rule fitted, and the output says how to fit it.
    assert not (run.path / "abstention.json").exists()
    assert f"mnistlab trust {run.path} fits it" in resumed.stdout()

    reference_training = uninterrupted[0]
    assert reference_training.finish() == 0, reference_training.stderr()
    reference = reference_training.run
    assert run.state()["epochs_run"] == reference.state()["epochs_run"] == EPOCHS
    for a, b in zip(weights(reference), weights(run), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical: every weight
    expected, got = evaluate(reference, dataset=mnist), evaluate(run, dataset=mnist)
    print(
        f"\nkilled after epoch {killed_after} and resumed: test accuracy "
        f"{got['test_accuracy']:.4f}, loss {got['test_loss']:.6f}; uninterrupted: "
        f"{expected['test_accuracy']:.4f}, loss {expected['test_loss']:.6f}"
    )
    assert abs(got["test_accuracy"] - expected["test_accuracy"]) <= 0.0005
    assert got["test_loss"] == expected["test_loss"]


def test_two_deterministic_runs_with_one_seed_give_bit_identical_weights(
    uninterrupted: tuple[Training, Training],
) -> None:
    first, second = uninterrupted
    assert first.finish() == 0, first.stderr()
    assert second.finish() == 0, second.stderr()
    assert first.run.path != second.run.path
    assert json.loads(second.run.config_path.read_text())["deterministic"] is True
    first_weights, second_weights = weights(first.run), weights(second.run)
    assert len(first_weights) == 6  # 3 dense layers: kernels and biases
    for a, b in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_keeps_the_last_epoch_prints_the_resume_command_and_exits_130(
    start, mnist: Dataset, tmp_path: Path
) -> None:
    import keras

    training = start(tmp_path / "ctrl-c")
    training.wait_until(lambda: training.committed_epochs() >= 1)
    time.sleep(0.5)
    training.proc.send_signal(signal.SIGINT)
    assert training.finish() == 130
    run, saved = training.run, training.committed_epochs()
    assert 1 <= saved < EPOCHS

    stderr = training.stderr()
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("mnistlab: training")]
    assert lines == [
        f"mnistlab: training interrupted; epochs 1-{saved} of {EPOCHS} are saved in "
        f"{run.path}; resume with: mnistlab train --resume {run.path}"
    ]
    assert run.state()["state"] == "interrupted" and run.state()["epochs_run"] == saved
    # The checkpoint is whole: the model with its optimiser, at the end of epoch `saved`.
    checkpoint = keras.saving.load_model(run.checkpoint_path)
    steps_per_epoch = 430  # ceil(55,000 / 128)
    assert int(checkpoint.optimizer.iterations.numpy()) == saved * steps_per_epoch
    with pytest.raises(MnistlabError, match=r"state: interrupted\); resume it with"):
        evaluate(run, dataset=mnist)
