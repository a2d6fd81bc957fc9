"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every artefact (cache arrays, JSON, CSV, models) goes through here: write to a
temporary name in the same directory, flush and fsync, then ``os.replace``,
which is atomic on POSIX within one filesystem. A process killed mid-write
(even by SIGKILL or a power cut) leaves at most a hidden ``.NAME.*.tmp*`` file
beside the untouched old one.

A write that fails (full disk, read-only filesystem, a file where a directory
should be) raises :class:`MnistlabError` with one line saying which file, why,
and what to do; the old file is left as it was.

Figures (report, tuning dashboard, cross-validation, benchmark) are saved by
:func:`save_figure`, the one place that decides a PNG's resolution.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError

if TYPE_CHECKING:  # Matplotlib is imported by whoever draws the figure, not by this module
    from matplotlib.figure import Figure

# Resolution of every PNG figure mnistlab writes: sharp in a browser, small enough
# that a report with all its figures embedded stays around 1 MB.
FIGURE_DPI = 110


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The temporary file keeps ``suffix`` (e.g. ``.keras``) so libraries that
    check extensions accept it. On any exception the temporary file is removed
    and ``path`` is left as it was.

    Parameters
    ----------
    path : the file to (re)place.
    suffix : extension the temporary name ends with.

    Yields
    ------
    Path of an empty temporary file to write (or overwrite) in full.

    Raises
    ------
    MnistlabError
        If the directory cannot be created or written, or the writer in the
        ``with`` block fails with an ``OSError`` (e.g. no space left on device).

    Examples
    --------
    >>> with atomic_path("runs/x/model.keras", suffix=".keras") as tmp:  # doctest: +SKIP
    ...     model.save(tmp)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent
        )
    except OSError as err:
        raise MnistlabError(f"cannot write {path}: {describe_os_error(err)}") from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; give the final file the usual permissions (0666 less umask).
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise MnistlabError(f"cannot write {path}: {describe_os_error(err)}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def describe_os_error(err: OSError) -> str:
    """``err``'s reason plus what to do about it, for a one-line message.

    Parameters
    ----------
    err : the error a file operation raised.

    Returns
    -------
    e.g. ``"No space left on device; free some disk space and try again"``.
    """
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{reason}; free some disk space and try again"
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST):
        return f"{reason}; choose a writable directory"
    return reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk. Best effort:
    # some filesystems (and Windows) cannot open or fsync a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Atomically save ``fig`` as a PNG at :data:`FIGURE_DPI`, cropped to its content.

    The PNG carries no "Software" tag, so the same figure gives the same bytes
    across Matplotlib versions. The figure is left open: a
    :class:`matplotlib.figure.Figure` made without pyplot is freed when unused;
    a pyplot figure is the caller's to close.

    Parameters
    ----------
    fig : the figure to save.
    path : PNG file to (re)place; parent directories are created.

    Returns
    -------
    ``path`` as a Path.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(2, 2))
    >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
    >>> save_figure(fig, "figures/line.png")  # doctest: +SKIP
    PosixPath('figures/line.png')
    """
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(
            tmp, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None}
        )
    return path


def link_or_copy(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Atomically make ``path`` a hard link to ``source`` (a copy where links fail).

    A hard link costs no space and no time, and stays whole if ``source`` is
    later deleted or replaced (``os.replace`` gives ``source`` a new inode).

    Parameters
    ----------
    source : an existing file.
    path : the name to (re)place with the same content.
    """
    path = Path(path)
    with atomic_path(path, suffix=Path(source).suffix) as tmp:
        try:
            tmp.unlink()
            os.link(source, tmp)
        except OSError:  # no hard links here (some filesystems): copy the bytes
            shutil.copyfile(source, tmp)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths: the only non-JSON types our artefacts hold.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
