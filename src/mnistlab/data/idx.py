"""The IDX file format of the official MNIST files: reading and parsing, bounded in memory.

A file is ``0x00 0x00``, a type code, the number of dimensions, that many big-endian
uint32 sizes, then the data. Only uint8 files with 1 (labels) or 3 (images) dimensions
are accepted. Files may be gzipped (detected from their content); inflating stops as
soon as the output outgrows what its own header describes.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mnistlab.errors import MnistlabError

# The official file of each array (``.gz`` added when gzipped); keys as in ARRAY_SHAPES.
IDX_FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

_MAX_IDX_BYTES = 2**30
_GUNZIP_STEP = 2**20

_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32"}


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
    return parse_idx(maybe_gunzip(data, str(path)), str(path))


def maybe_gunzip(data: bytes, label: str) -> bytes | bytearray:
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
                if claimed is None:  # not an IDX header: parse_idx says what is wrong
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


def parse_idx(buf: bytes | bytearray, label: str) -> np.ndarray:
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
