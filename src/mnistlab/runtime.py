"""TensorFlow process set-up, in one place: environment defaults, thread caps, start-up lines.

- :func:`set_environment_defaults`: ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++
  start-up chatter is noise for users) and ``KERAS_BACKEND=tensorflow``, each only
  if the user has not set it; ``import mnistlab`` applies them, before anything
  imports TensorFlow.
- :func:`threads_per_worker` and :func:`configure_threads`: how many TensorFlow
  threads each of several worker processes gets, and capping a fresh process's
  thread pools to that (tune's and cv's workers).
- :func:`install_startup_filter`: keeps TensorFlow's start-up lines off stderr.
  Only entry points call it (the CLI's ``main``, worker processes); importing a
  mnistlab module never touches ``sys.stderr``, the import system or logging.

TensorFlow 2.21 writes, from C++ and while ``import tensorflow`` runs, lines that
``TF_CPP_MIN_LOG_LEVEL`` does not silence::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795776886.888994   25316 port.cc:153] oneDNN custom operations are on. ...

twice each, before every command's own output (a one-line error included). They
say nothing a user can act on. :func:`install_startup_filter` wraps the first
import of ``tensorflow`` so that file descriptor 2 goes to a temporary file
meanwhile; afterwards every captured line is written back to stderr except those
two kinds. Anything else TensorFlow says while importing (an error, a real
warning) still shows. Setting ``TF_CPP_MIN_LOG_LEVEL`` to 0 or 1 (asking for
TensorFlow's informational logs) turns the filter off.
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

# Set by set_environment_defaults() unless the user chose otherwise.
ENVIRONMENT_DEFAULTS = {
    # 2: warnings and errors only; hides oneDNN/CPU-feature notices at every start.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # The models' fused batch normalisation and the input pipeline are TensorFlow's.
    "KERAS_BACKEND": "tensorflow",
}


def set_environment_defaults() -> None:
    """Set :data:`ENVIRONMENT_DEFAULTS` in ``os.environ`` where they are not set already.

    Must run before TensorFlow and Keras are imported (they read these once).
    """
    for name, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


# %% Thread caps -------------------------------------------------------------------


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """TensorFlow threads for each of ``workers`` processes sharing ``cores`` (at least 1).

    ``cores`` defaults to :func:`available_cores`. With K workers on C cores each
    gets C // K threads instead of all K fighting for C.

    Examples
    --------
    >>> threads_per_worker(2, cores=8), threads_per_worker(4, cores=2)
    (4, 1)
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return max(1, (cores if cores is not None else available_cores()) // workers)


def configure_threads(threads: int) -> None:
    """Cap this process's TensorFlow thread pools at ``threads`` (intra-op).

    Call it in a fresh worker process before TensorFlow runs its first op:
    afterwards the pools are fixed (TensorFlow raises RuntimeError). The inter-op
    pool gets ``max(2, threads)``, so that independent ops (the input pipeline's
    and the model's) can still overlap on a one-thread worker. TensorFlow is
    imported here, after :func:`install_startup_filter`, since a worker's stderr
    is its command's.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    install_startup_filter()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))


# %% TensorFlow's start-up lines ------------------------------------------------------

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


def install_startup_filter() -> None:
    """Filter the first ``import tensorflow`` of this process (no-op if done or unwanted).

    For entry points only (the CLI's ``main``, worker processes): it adds a finder to
    ``sys.meta_path`` that stays until TensorFlow is imported.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1"):
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
