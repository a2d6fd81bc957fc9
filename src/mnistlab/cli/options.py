"""Options and argument parsing shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mnistlab.errors import MnistlabError

F = TypeVar("F", bound=Callable[..., Any])

# Seeds as NumPy and scikit-learn take them (mnistlab.config.MAX_SEED; not imported
# here, since that would load Keras before every command).
SEED = click.IntRange(0, 2**32 - 1)

RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory that holds run directories.",
)


def json_option(help: str = "Print machine-readable JSON.") -> Callable[[F], F]:
    """The ``--json`` flag (parameter ``as_json``) of a command with machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def format_setting(value: Any) -> str:
    """A model setting as the command line writes it: tuples as ``a,b``."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    """``-p NAME=VALUE`` options as a dict of strings (the config parses the values)."""
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MnistlabError(f"--param expects NAME=VALUE (e.g. hidden=512,256), got {item!r}")
        params[key.strip()] = value.strip()
    return params
