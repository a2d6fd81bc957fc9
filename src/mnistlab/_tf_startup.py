"""Keep TensorFlow's start-up chatter off the user's terminal.

TensorFlow 2.21 writes, from C++ and while ``import tensorflow`` runs, lines that
``TF_CPP_MIN_LOG_LEVEL`` does not silence::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795776886.888994   25316 port.cc:153] oneDNN custom operations are on. ...

twice each, before every command's own output (a one-line error included). They
say nothing a user can act on. :func:`install` wraps the first import of
``tensorflow`` so that file descriptor 2 goes to a temporary file meanwhile;
afterwards every captured line is written back to stderr except those two kinds.
Anything else TensorFlow says while importing (an error, a real warning) still
shows. Setting ``TF_CPP_MIN_LOG_LEVEL`` to 0 or 1 (asking for TensorFlow's
informational logs) turns the filter off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^I\d{4} [\d:.]+\s+\d+ port\.cc:\d+\] oneDNN custom operations are on\."),
)


def keep_lines(text: str, noise: Sequence[re.Pattern[str]] = NOISE) -> str:
    """``text`` without the lines that match ``noise`` (line ends kept)."""
    return "".join(
        line for line in text.splitlines(keepends=True) if not any(p.match(line) for p in noise)
    )


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file; write it back without the noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = keep_lines(captured.read().decode("utf-8", errors="replace"))
            if rest:
                os.write(2, rest.encode("utf-8"))


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, run with stderr filtered."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with filtered_stderr():
            self.inner.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as the other finders would, behind :class:`_QuietLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; and no recursion into find_spec below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Filter the first ``import tensorflow`` of this process (no-op if done or unwanted)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1"):
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
