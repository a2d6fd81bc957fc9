"""Reading saved ``.keras`` files, with this package's layers known and clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError
from mnistlab.models.layers import custom_layers

if TYPE_CHECKING:
    import keras


def load_saved_model(path: Any, *, compile: bool = False, hint: str = "") -> keras.Model:
    """``keras.saving.load_model`` that knows this package's own layers and says
    plainly what is wrong with a file it cannot read.

    Every place that reads a saved ``.keras`` file goes through here, so a model
    with this package's layers (:func:`fused_batchnorm_class`, :func:`deskew_class`)
    loads in a process that has not built one.

    Parameters
    ----------
    path : the ``.keras`` file.
    compile : restore the optimiser too (resuming training); inference needs not.
    hint : what the user should do about an unreadable file; ends the error message.

    Raises
    ------
    MnistlabError
        Missing, truncated or unreadable file.
    """
    import keras

    path = Path(path)
    todo = f"; {hint}" if hint else ""
    if not path.is_file():
        raise MnistlabError(f"cannot load {path}: no such file{todo}")
    # A .keras file is a zip archive. Keras reports a truncated or overwritten one
    # as "File not found", which would send the user looking for the wrong problem.
    if not zipfile.is_zipfile(path):
        raise MnistlabError(
            f"cannot load {path}: the file is corrupt (not a complete .keras archive; "
            f"truncated or overwritten?){todo}"
        )
    custom_layers()  # registers the classes with Keras's serialisation
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as err:  # bad JSON, missing weights, unknown layers: all "unreadable"
        reason = " ".join(str(err).split())[:200]
        raise MnistlabError(
            f"cannot load {path} ({type(err).__name__}: {reason}); the file is corrupt "
            f"or not a model mnistlab can read{todo}"
        ) from err
