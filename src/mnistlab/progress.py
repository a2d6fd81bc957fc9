"""Progress lines and result tables of the drivers (tune, cv, bench): one mechanism.

Progress lines are log records of the logger ``mnistlab.progress`` (level INFO).
Unless the application has given that logger handlers of its own, the first line
attaches one that writes the bare message to the *current* ``sys.stderr`` (so
stdout stays free for ``--json``, and a test's captured stderr sees it). Nothing
is configured at import time: importing this module changes no logging state.

A driver takes ``progress`` as ``True`` (lines to stderr), ``False``/``None``
(silent) or a callable that receives each line (tests collect them in a list);
:func:`reporter` turns any of these into one function to call.

Tables on the console are drawn by rich (:func:`format_table`); the same rows as
a GitHub-flavoured Markdown table (``summary.md``, ``results.md``) come from
the same function with ``markdown=True``.

>>> say = reporter(lambda line: print("got:", line))
>>> say("fold 1/5: training")
got: fold 1/5: training
>>> print(format_table(["fold", "accuracy"], [["1", "0.9812"]], markdown=True))
| fold | accuracy |
| --- | ---: |
| 1 | 0.9812 |
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

LOGGER_NAME = "mnistlab.progress"

ProgressLine = Callable[[str], None]


class _CurrentStderr(logging.StreamHandler):
    """A stream handler bound to whatever ``sys.stderr`` is when a line is written."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def progress_logger() -> logging.Logger:
    """The ``mnistlab.progress`` logger, given a stderr handler on first use.

    An application that wants the lines elsewhere adds its own handlers to this
    logger before the first line; they are then left as they are.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.addHandler(_CurrentStderr())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # shown once, not again by a root handler
    return logger


def to_stderr(line: str) -> None:
    """Report one progress line (logger ``mnistlab.progress``, INFO; shown on stderr)."""
    progress_logger().info(line)


def _silent(line: str) -> None:
    del line


def reporter(progress: bool | ProgressLine | None) -> ProgressLine:
    """The function a driver calls with each progress line.

    Parameters
    ----------
    progress : ``True``: lines go to stderr (:func:`to_stderr`); ``False`` or
        ``None``: no lines; a callable: it receives each line.

    Returns
    -------
    A function of one ``str``.
    """
    if callable(progress):
        return progress
    return to_stderr if progress else _silent


def format_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: Sequence[str] | None = None,
    markdown: bool = False,
    title: str | None = None,
) -> str:
    """Rows of already formatted cells as a console table (rich) or a Markdown table.

    Parameters
    ----------
    columns : header cells.
    rows : one sequence of cells (strings) per row, as long as ``columns``.
    align : ``"left"`` or ``"right"`` per column; default: the first column left,
        the others right (names, then numbers).
    markdown : a GitHub-flavoured Markdown table (``| a | b |`` with an alignment
        rule) instead of a console table.
    title : a line above the table.

    Returns
    -------
    The table as text, no trailing newline and no trailing spaces.
    """
    align = list(align) if align is not None else ["left"] + ["right"] * (len(columns) - 1)
    if len(align) != len(columns) or any(len(row) != len(columns) for row in rows):
        raise ValueError("every row and the alignments need one entry per column")
    if markdown:
        rule = ["---:" if a == "right" else "---" for a in align]
        lines = [title, ""] if title else []
        lines += ["| " + " | ".join(cells) + " |" for cells in (columns, rule, *rows)]
        return "\n".join(lines)

    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
    for name, a in zip(columns, align, strict=True):
        table.add_column(name, justify="right" if a == "right" else "left", no_wrap=True)
    for cells in rows:
        table.add_row(*cells)
    buffer = io.StringIO()
    # A wide, colourless console: the text is the same on a terminal, in a pipe and in a file.
    Console(file=buffer, width=1000, color_system=None, highlight=False).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(([title, ""] if title else []) + lines)


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: Sequence[str] | None = None,
    title: str | None = None,
    file: TextIO | None = None,
) -> None:
    """Print :func:`format_table`'s console table to ``file`` (default: stdout)."""
    print(format_table(columns, rows, align=align, title=title), file=file or sys.stdout)
