"""TensorFlow's start-up chatter is kept off the terminal; everything else it says is not."""

import os

from mnistlab._tf_startup import filtered_stderr, keep_lines

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
