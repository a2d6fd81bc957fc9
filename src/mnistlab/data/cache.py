"""Where verified datasets are cached, and reading and writing that cache.

A cache file is ``data_home()/<name>.npz``: the four uint8 arrays, uncompressed (a
cache hit is a plain read of ~50 MB), plus a 0-d string saying where the data first
came from. A cache is used only if its arrays match the official digests.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import platformdirs

from mnistlab.data.dataset import ARRAY_SHAPES, verify_digests
from mnistlab.errors import MnistlabError
from mnistlab.files import atomic_path

log = logging.getLogger(__name__)


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
        directory (``platformdirs.user_cache_dir``): ``$XDG_CACHE_HOME/mnistlab`` or
        ``~/.cache/mnistlab`` on Linux, ``~/Library/Caches/mnistlab`` on macOS,
        ``%LOCALAPPDATA%\\mnistlab`` on Windows. The directory is not created here;
        the first cache write creates it.
    """
    if home is not None and os.fspath(home) != "":
        return Path(home).expanduser()
    env = os.environ.get("MNISTLAB_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    # platformdirs follows each platform's convention (XDG on Linux: a relative
    # $XDG_CACHE_HOME is ignored, as the spec says). opinion=False: no extra "Cache"
    # level on Windows; appauthor=False: no vendor level. Neither creates anything.
    return Path(platformdirs.user_cache_dir("mnistlab", appauthor=False, opinion=False))


def read_cache(name: str, path: Path) -> tuple[dict[str, np.ndarray] | None, str, str]:
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


def write_cache(path: Path, arrays: dict[str, np.ndarray], origin: str) -> None:
    """Save verified ``arrays`` and their ``origin`` as the cache file ``path``.

    Written atomically: a failed write (full disk, killed process) leaves the
    previous cache file exactly as it was. An unwritable cache does not stop the
    caller: the data is verified, so it is used, and a warning says that the next
    load will have to fetch again.
    """
    # Uncompressed: a cache hit is then a plain read (~50 MB), well under a second.
    # The origin rides along as a 0-d string array, so a cache hit can still say where
    # the data first came from.
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(
                tmp,
                x_train=arrays["x_train"],
                y_train=arrays["y_train"],
                x_test=arrays["x_test"],
                y_test=arrays["y_test"],
                source=np.array(origin),
            )
    except MnistlabError as err:
        log.warning("%s; continuing without a cache, so the next load fetches again", err)
