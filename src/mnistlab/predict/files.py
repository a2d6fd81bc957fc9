"""Predicting image files: find them, label them by their folder, predict, summarise.

::

    paths -> find_images (directories recursively, image extensions, no hidden files)
    -> label_from_path (samples/7/x.png is a 7; Sandal/x.png for a Fashion-MNIST run)
    -> preprocess_image -> Predictor.probabilities in chunks -> FileResult per file
    -> summarise (counts, accuracy over labelled files)

An image that cannot be read is reported in its result and counted; the batch goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.models import NUM_CLASSES
from mnistlab.predict.predictor import DIGITS, Predictor
from mnistlab.predict.preprocess import ImageError, preprocess_image
from mnistlab.predict.result import FileResult

__all__ = ["IMAGE_EXTENSIONS", "find_images", "label_from_path", "predict_files", "summarise"]

# Files a directory walk picks up; a file named explicitly is always tried.
_EXTENSIONS = tuple(".png .jpg .jpeg .gif .bmp .tif .tiff .webp .pgm .ppm .pnm".split())
IMAGE_EXTENSIONS = frozenset(_EXTENSIONS)


def label_from_path(
    path: str | os.PathLike[str], class_names: Sequence[str] | None = None
) -> int | None:
    """The class a file's folder names (``samples/7/x.png`` -> 7), else None.

    Parameters
    ----------
    path : an image file.
    class_names : the model's classes (default the digits). For other classes the
        folder must be named by one of them, ignoring case, spaces and punctuation
        (``Sandal/``, ``t-shirt-top/``, ``ankle_boot/``): a digit folder does not
        label a Fashion-MNIST image.

    Examples
    --------
    >>> from mnistlab.data import CLASS_NAMES
    >>> fashion = CLASS_NAMES["fashion-mnist"]
    >>> label_from_path("samples/7/x.png"), label_from_path("shoes/sandal/x.png", fashion)
    (7, 5)
    """
    parent = Path(path).parent.name
    if class_names is None or tuple(class_names) == DIGITS:
        return int(parent) if len(parent) == 1 and parent.isdigit() else None
    wanted = _folder_key(parent)
    matches = [i for i, name in enumerate(class_names) if _folder_key(name) == wanted]
    return matches[0] if wanted and matches else None


def _folder_key(name: str) -> str:
    # "T-shirt/top" cannot be a folder name: compare letters and digits only.
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def find_images(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand files and directories (recursively, sorted) into image files.

    Files named explicitly are yielded whatever their extension (and reported later
    if they are not images); inside directories only image extensions are taken and
    hidden files and folders are skipped. Paths that do not exist are yielded too,
    so the caller reports them.
    """
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            yield from found
        else:
            yield path


def predict_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    top_k: int = 3,
    chunk: int = 64,
) -> Iterator[FileResult]:
    """Predict every image under ``paths``; a file that fails gives a result with ``error``.

    Parameters
    ----------
    predictor : the loaded model.
    paths : files and directories (see :func:`find_images`).
    top_k : how many classes to list per file (1-10).
    chunk : files preprocessed before one batched forward pass.

    Yields
    ------
    FileResult per file, in order.

    Raises
    ------
    MnistlabError
        ``top_k`` out of range, no image file at all under ``paths`` (e.g. an empty
        directory), or a model whose output is NaN.

    Examples
    --------
    >>> results = list(predict_files(load_predictor("latest"), ["samples"]))  # doctest: +SKIP
    >>> summarise(results)["accuracy"]  # doctest: +SKIP
    0.96
    """
    if not 1 <= top_k <= NUM_CLASSES:
        raise MnistlabError(f"invalid top_k={top_k!r}: expected 1 to {NUM_CLASSES}")
    paths = list(paths)
    names = predictor.result_class_names()
    pending: list[tuple[FileResult, np.ndarray | None]] = []
    found = 0
    for path in find_images(paths):
        found += 1
        result = FileResult(file=str(path), label=label_from_path(path, names), class_names=names)
        image = None
        try:
            # Clean-up (lines, boxes, stray marks) is for digits on paper, not Fashion-MNIST photos.
            image = preprocess_image(path, cleanup=names is None).image
        except ImageError as err:
            result.error = str(err).removeprefix(f"{path}: ")
            if err.blank and names is not None:  # a Fashion-MNIST run looks for no digit
                result.error = "nothing to classify: the image is blank (no ink that stands out)"
        pending.append((result, image))
        if len(pending) >= chunk:
            yield from _predict_chunk(predictor, pending, top_k)
            pending = []
    if not found:
        where = ", ".join(str(p) for p in paths) or "the paths given"
        raise MnistlabError(
            f"no image files found in {where} (looked for {', '.join(_EXTENSIONS)}; "
            "hidden files and folders are skipped)"
        )
    yield from _predict_chunk(predictor, pending, top_k)


def _predict_chunk(
    predictor: Predictor, pending: Sequence[tuple[FileResult, np.ndarray | None]], top_k: int
) -> Iterator[FileResult]:
    images = [img for _, img in pending if img is not None]
    probs = predictor.probabilities(np.stack(images)) if images else np.zeros((0, NUM_CLASSES))
    reasons = predictor.decide(np.stack(images), probs) if images else []
    i = 0
    for result, image in pending:
        if image is not None:
            done = FileResult.from_probs(
                result.file,
                probs[i],
                top_k,
                image=image,
                class_names=result.class_names,
                reason=reasons[i],
            )
            done.label = result.label
            result = done
            i += 1
        yield result


def summarise(results: Sequence[FileResult]) -> dict[str, Any]:
    """Counts and, over files with a label, accuracy.

    Returns
    -------
    dict with ``files``, ``predicted`` (answered with a class), ``abstained`` (no
    class: "not a digit", "unsure", ... counted in ``abstained_by_reason``),
    ``failed``, ``labelled``, ``correct`` and ``accuracy`` over the labelled files
    answered (None when there is none).
    """
    scored = [r for r in results if r.ok and r.label is not None and r.reason is None]
    correct = sum(bool(r.correct) for r in scored)
    reasons = [r.reason for r in results if r.ok and r.reason is not None]
    return {
        "files": len(results),
        "predicted": sum(r.ok and r.reason is None for r in results),
        "abstained": len(reasons),
        "abstained_by_reason": {k: reasons.count(k) for k in sorted(set(reasons))},
        "failed": sum(not r.ok for r in results),
        "labelled": len(scored),
        "correct": correct,
        "accuracy": round(correct / len(scored), 4) if scored else None,
    }
