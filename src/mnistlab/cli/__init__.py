"""The ``mnistlab`` command: a thin shell over the Python API.

Every command maps to one public function; errors a user can fix are printed
as one line on stderr with a non-zero exit, never a traceback. One module per
group of commands; :mod:`~mnistlab.cli.app` holds the group and :func:`main`
(the ``mnistlab`` script and ``python -m mnistlab``).
"""

from __future__ import annotations

from mnistlab.cli.app import cli, main

__all__ = ["cli", "main"]
