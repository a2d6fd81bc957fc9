"""The read benchmark: readers and Tesseract on composed number images, per layout.

::

    MNIST test digits -> compose.compose_set per layout (deterministic: seed, count)
    -> each reader reads every image (timed, one image at a time)
    -> exact-number accuracy, digit accuracy (1 - edit distance / length, at least 0),
       images per second, per layout and overall
    -> the same images as PNG files to Tesseract (``tesseract IMG stdout --psm N
       -c tessedit_char_whitelist=0123456789``), one process per image, per mode

``split="validation"`` composes from the held-out part of the train split (the
digits the classifier never trained on, and never the test set): that is where
the reader's settings and Tesseract's page-segmentation mode are chosen.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from mnistlab.data import load_dataset
from mnistlab.data.dataset import train_val_split
from mnistlab.errors import MnistlabError
from mnistlab.read.compose import LAYOUTS, NumberImage, compose_set
from mnistlab.read.reader import NumberReader, read_image

__all__ = [
    "ReadScore",
    "benchmark_set",
    "digit_accuracy",
    "edit_distance",
    "format_scores",
    "score_reader",
    "tesseract_reader",
]

# The test set: this many images per layout, composed with this seed.
DEFAULT_PER_LAYOUT = 100
TEST_SEED = 2024
VALIDATION_SEED = 7
# Tesseract's page-segmentation modes tried: one text line, one word, raw line, a block.
TESSERACT_MODES = (7, 8, 13, 6)


class ReadScore(BaseModel):
    """One reader on one layout."""

    reader: str
    layout: str
    images: int
    exact: float
    digit_accuracy: float
    images_per_second: float


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions).

    >>> edit_distance("1234", "124"), edit_distance("", "56")
    (1, 2)
    """
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def digit_accuracy(read: str | None, truth: str) -> float:
    """1 - edit distance / length of the truth, at least 0 (None reads as nothing)."""
    return max(0.0, 1 - edit_distance(read or "", truth) / len(truth))


def benchmark_set(
    split: str = "test",
    per_layout: int = DEFAULT_PER_LAYOUT,
    layouts: Sequence[str] = LAYOUTS,
    *,
    seed: int | None = None,
) -> list[NumberImage]:
    """The composed images of ``split`` ("test" or "validation"), ``per_layout`` per layout."""
    if split not in ("test", "validation", "train"):
        raise MnistlabError(f"split={split!r}: expected 'test', 'validation' or 'train'")
    unknown = [lay for lay in layouts if lay not in LAYOUTS]
    if unknown:
        raise MnistlabError(f"unknown layout {unknown[0]!r}; choose from {', '.join(LAYOUTS)}")
    if per_layout < 1:
        raise MnistlabError(f"per_layout={per_layout}: expected at least 1")
    data = load_dataset("mnist")
    if split == "test":
        x, y = data.x_test, data.y_test
    else:
        x_tr, y_tr, x_val, y_val = train_val_split(
            data.x_train, data.y_train, val_size=5000, seed=0
        )
        x, y = (x_val, y_val) if split == "validation" else (x_tr, y_tr)
    if seed is None:
        seed = TEST_SEED if split == "test" else VALIDATION_SEED
    out: list[NumberImage] = []
    for layout in layouts:
        out.extend(compose_set(x, y, layout, per_layout, seed=seed))
    return out


Reader = Callable[[np.ndarray], str | None]


def score_reader(
    name: str, read: Reader, images: Sequence[NumberImage]
) -> tuple[list[ReadScore], list[str | None]]:
    """Read every image with ``read``; scores per layout and overall, and the texts read."""
    texts: list[str | None] = []
    seconds: list[float] = []
    for item in images:
        start = time.perf_counter()
        texts.append(read(item.image))
        seconds.append(time.perf_counter() - start)
    scores = []
    groups = [*dict.fromkeys(i.layout for i in images), "all"]
    for layout in groups:
        idx = [i for i, item in enumerate(images) if layout in ("all", item.layout)]
        exact = np.mean([texts[i] == images[i].text for i in idx])
        digits = np.mean([digit_accuracy(texts[i], images[i].text) for i in idx])
        speed = len(idx) / max(sum(seconds[i] for i in idx), 1e-9)
        scores.append(
            ReadScore(
                reader=name,
                layout=layout,
                images=len(idx),
                exact=round(float(exact), 4),
                digit_accuracy=round(float(digits), 4),
                images_per_second=round(speed, 1),
            )
        )
    return scores, texts


def mnistlab_reader(reader: NumberReader) -> Reader:
    """``read_image`` as a benchmark reader."""

    def read(image: np.ndarray) -> str | None:
        return read_image(reader, image).text

    return read


def tesseract_reader(psm: int, workdir: str | Path | None = None) -> Reader:
    """Tesseract (digits only, page-segmentation mode ``psm``) as a benchmark reader.

    Raises
    ------
    MnistlabError
        The ``tesseract`` program is not installed.
    """
    program = shutil.which("tesseract")
    if program is None:
        raise MnistlabError(
            "tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)"
        )
    folder = Path(workdir or tempfile.mkdtemp(prefix="mnistlab-tesseract-"))

    def read(image: np.ndarray) -> str | None:
        path = folder / "number.png"
        Image.fromarray(image).save(path)
        found = subprocess.run(
            [
                program,
                str(path),
                "stdout",
                "--psm",
                str(psm),
                "-c",
                "tessedit_char_whitelist=0123456789",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        text = "".join(ch for ch in found.stdout if ch.isdigit())
        return text or None

    return read


def format_scores(scores: Sequence[ReadScore]) -> str:
    """A Markdown table: one row per reader, exact / digit accuracy per layout, speed."""
    layouts = list(dict.fromkeys(s.layout for s in scores))
    readers = list(dict.fromkeys(s.reader for s in scores))
    head = "| reader | " + " | ".join(layouts) + " | images/s |"
    rule = "|---|" + "---|" * len(layouts) + "---|"
    rows = [head, rule]
    for name in readers:
        mine = {s.layout: s for s in scores if s.reader == name}
        cells = [
            f"{100 * mine[lay].exact:.1f} / {100 * mine[lay].digit_accuracy:.1f}"
            if lay in mine
            else "-"
            for lay in layouts
        ]
        speed = mine["all"].images_per_second if "all" in mine else float("nan")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {speed:.1f} |")
    return "\n".join(rows) + "\n\n(exact-number accuracy % / digit accuracy %)"
