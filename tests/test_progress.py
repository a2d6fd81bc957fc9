"""Progress lines and tables of tune, cv and bench: where lines go, how tables look."""

import logging

import pytest

from mnistlab.progress import LOGGER_NAME, format_table, reporter, to_stderr


@pytest.fixture
def fresh_logger():
    """The progress logger as a new process has it: a new Logger object, no handlers.

    The logger other tests used is put back afterwards. A new object, not the old one
    emptied: whatever an earlier test (or pytest's log capture) holds on to the old
    logger cannot reach this one.
    """
    loggers = logging.Logger.manager.loggerDict
    saved = loggers.pop(LOGGER_NAME, None)
    logger = logging.getLogger(LOGGER_NAME)
    yield logger
    if saved is not None:
        loggers[LOGGER_NAME] = saved


def test_lines_go_to_the_stderr_of_the_moment_once_each(fresh_logger, capsys):
    say = reporter(True)
    say("fold 1/3: training on 1,700 images, validating on 300")
    to_stderr("fold 1/3: accuracy 0.9100")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays free for --json
    assert captured.err.splitlines() == [
        "fold 1/3: training on 1,700 images, validating on 300",
        "fold 1/3: accuracy 0.9100",
    ]
    assert len(fresh_logger.handlers) == 1  # attached on the first line, not again


def test_an_application_handler_is_used_instead_of_stderr(fresh_logger, capsys):
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    fresh_logger.addHandler(Collect())
    fresh_logger.setLevel(logging.INFO)
    to_stderr("[1/2] fnn: training fnn ...")
    assert seen == ["[1/2] fnn: training fnn ..."]
    assert capsys.readouterr().err == ""


def test_silent_and_callable_reporters(fresh_logger, capsys):
    lines = []
    reporter(lines.append)("trial 3 pruned")
    reporter(False)("not shown")
    reporter(None)("not shown either")
    assert lines == ["trial 3 pruned"]
    assert capsys.readouterr().err == ""
    assert fresh_logger.handlers == []  # nothing was logged, nothing set up


def test_a_console_table_aligns_names_left_and_numbers_right():
    text = format_table(
        ["recipe", "accuracy"], [["fnn", "0.9812"], ["keras-convnet", "0.99"]], title="Results"
    )
    title, blank, header, rule, *rows = text.splitlines()
    assert (title, blank) == ("Results", "")
    assert header.split() == ["recipe", "accuracy"] and set(rule) == {"─"}
    assert rows[0].startswith("fnn ") and rows[1].startswith("keras-convnet ")
    assert len({len(line) for line in (header, *rows)}) == 1  # numbers end in one column
    assert all(line == line.rstrip() for line in text.splitlines())


def test_a_markdown_table_has_one_row_per_line_and_an_alignment_rule():
    text = format_table(["fold", "accuracy"], [["1", "0.91"], ["2", "0.92"]], markdown=True)
    assert text.splitlines() == [
        "| fold | accuracy |",
        "| --- | ---: |",
        "| 1 | 0.91 |",
        "| 2 | 0.92 |",
    ]


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="one entry per column"):
        format_table(["a", "b"], [["1"]])
