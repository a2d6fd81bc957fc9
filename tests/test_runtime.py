"""TensorFlow process set-up: start-up chatter kept off the terminal (by entry points only),
thread caps computed in one place, and no side effects when mnistlab is imported."""

import os
import subprocess
import sys

import pytest

from mnistlab.runtime import filtered_stderr, keep_lines, threads_per_worker

ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = (
    "I0000 00:00:1795776886.888994   25316 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.\n"
)
REAL = "E0000 00:00:1795776886.9   25316 cuda_dnn.cc:8] could not load a library\n"


def test_only_the_two_kinds_of_start_up_lines_are_dropped():
    assert keep_lines(ABSL + ONEDNN + REAL + ABSL + ONEDNN) == REAL
    assert keep_lines("a normal line\nand another") == "a normal line\nand another"


def test_what_is_written_to_fd_2_meanwhile_comes_back_without_the_noise(capfd):
    with filtered_stderr():
        os.write(2, (ABSL + ONEDNN + REAL).encode())
    assert capfd.readouterr().err == REAL


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, TensorFlow's filterable chatter not asked for."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )


# Importing the package and its stages (TensorFlow included) changes none of these.
NO_SIDE_EFFECTS = """
import logging, sys
stderr, stdout = sys.stderr, sys.stdout
root = logging.getLogger()
before = (logging.getLoggerClass(), root.level, list(root.handlers), logging.root.manager.disable)
import mnistlab, mnistlab.data, mnistlab.models, mnistlab.runtime, mnistlab.train
assert callable(mnistlab.train)
assert sys.stderr is stderr and sys.stdout is stdout
hooks = [f for f in sys.meta_path if type(f).__module__.startswith("mnistlab")]
assert not hooks, hooks
after = (logging.getLoggerClass(), root.level, list(root.handlers), logging.root.manager.disable)
assert after == before, (before, after)
ours = [
    logger for name, logger in logging.root.manager.loggerDict.items()
    if name.startswith("mnistlab") and isinstance(logger, logging.Logger)
]
assert all(not lg.handlers and lg.level == logging.NOTSET and lg.propagate for lg in ours)
print("untouched")
"""


def test_importing_mnistlab_leaves_stderr_import_hooks_and_logging_alone():
    done = _python(NO_SIDE_EFFECTS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "untouched"


def test_the_cli_entry_point_installs_the_start_up_filter():
    code = (
        "import sys; from mnistlab import runtime; from mnistlab.cli import main\n"
        "assert not any(isinstance(f, runtime._QuietFinder) for f in sys.meta_path)\n"
        "main(['--version'])\n"
        "print(any(isinstance(f, runtime._QuietFinder) for f in sys.meta_path))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_threads_per_worker_shares_the_cores_and_never_gives_zero():
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1
    assert threads_per_worker(1) >= 1
    with pytest.raises(ValueError, match="workers"):
        threads_per_worker(0, cores=2)


def test_configure_threads_caps_a_fresh_process_and_keeps_its_start_up_quiet():
    code = (
        "from mnistlab.runtime import configure_threads\n"
        "configure_threads(1)\n"
        "import tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2"]
    assert (
        "absl::InitializeLog" not in done.stderr and "oneDNN custom operations" not in done.stderr
    )
