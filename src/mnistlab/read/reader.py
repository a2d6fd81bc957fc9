"""Reading a written number: the reader, its result, and the choice of the best cut.

::

    image -> segment.line_ink (polarity, light, printed lines removed)
    -> segment.hypotheses (atoms: components and cuts; runs of atoms as digits)
    -> one batched call of the run's classifier on every hypothesis, and one of
       the run's segmentation verifier (mnistlab.read.verifier: is it one whole
       digit?) when it has one
    -> dynamic programming over the atoms: the sequence of hypotheses covering
       them all with the highest score, a digit's score being
       log p(its best class) + verify_weight * log p(one whole digit)
       + a width and height prior + a per-digit bonus
    -> NumberReading (text, confidence, each digit's box, class, probabilities)

A page with no ink, or whose best reading is too unsure to be a number (the
geometric mean of its digits' confidences under a threshold chosen on validation
compositions), gets ``text=None`` and a ``reason``: never a made-up number.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from mnistlab.errors import MnistlabError
from mnistlab.predict import Predictor, load_image, load_predictor
from mnistlab.predict.preprocess import MAX_IMAGE_PIXELS
from mnistlab.read.ink import line_ink
from mnistlab.read.segment import Hypothesis, hypotheses, marks
from mnistlab.read.verifier import NOT_ONE_DIGIT, Verifier, features, load_or_train, load_verifier

__all__ = [
    "DigitReading",
    "Decoding",
    "NumberReader",
    "NumberReading",
    "read_bytes",
    "read_image",
]

# Reasons a reading has no text.
NO_INK = "no ink: the image is blank"
NO_DIGITS = "no digits found"
NOT_A_NUMBER = "not a number: the marks do not look like digits"
TOO_MANY = "not a line of digits: too many separate marks"
# More separate marks than this: a page of text or a drawing, not one line of 1-12 digits.
MAX_MARKS_PER_LINE = 60


class DigitReading(BaseModel):
    """One digit of a reading: where it is and what it is."""

    box: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 in input pixels")
    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0, le=1)
    probabilities: list[float] = Field(min_length=10, max_length=10)


class NumberReading(BaseModel):
    """What was read from one image.

    ``text`` is None when no readable number was found; ``reason`` then says why.
    ``confidence`` is the product of the digits' confidences (0 without text).
    """

    text: str | None
    confidence: float = Field(ge=0, le=1)
    reason: str | None = None
    digits: list[DigitReading] = Field(default_factory=list)


@dataclass(frozen=True)
class Decoding:
    """The scoring of a segmentation (chosen on validation compositions, see docs/reading.md).

    Attributes
    ----------
    digit_bonus : added per digit (counters the sum of log-probabilities favouring
        fewer, merged digits).
    wide_from, wide_penalty : a digit wider than ``wide_from`` digit heights loses
        ``wide_penalty`` per extra height.
    low_from, low_penalty : a digit lower than ``low_from`` of the line's height
        loses ``low_penalty`` per missing height (a stroke's fragment alone).
    skip_penalty : leaving a small atom out (a speck) costs this.
    cut_penalty : a digit ending at a cut through a component (not at a gap) costs this.
    reject_below : geometric-mean digit confidence under this is "not a number".
    verify_weight : with a verifier, ``verify_weight * log(1 - p(not one digit))``
        is added to each candidate's score.
    """

    digit_bonus: float = 0.0
    wide_from: float = 1.0
    wide_penalty: float = 3.0
    low_from: float = 0.55
    low_penalty: float = 0.0
    skip_penalty: float = 4.0
    cut_penalty: float = 0.0
    reject_below: float = 0.5
    verify_weight: float = 3.0


# Chosen on validation compositions (docs/reading.md): with the run's verifier, and
# without one (the classifier alone: then fragments and cuts need the penalties).
VERIFIED = Decoding()
UNVERIFIED = Decoding(low_penalty=8.0, cut_penalty=1.0, verify_weight=0.0)


class NumberReader:
    """A run's classifier, loaded once, that reads lines of handwritten digits.

    Examples
    --------
    >>> reader = NumberReader.from_run("runs/latest")  # doctest: +SKIP
    >>> read_image(reader, gray).text  # doctest: +SKIP
    '2024'
    """

    def __init__(
        self,
        predictor: Predictor,
        decoding: Decoding | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        if predictor.result_class_names() is not None:
            raise MnistlabError(
                f"{predictor.name} classifies {predictor.class_names[0]}, ...; reading "
                "numbers needs a digit model (an MNIST run)"
            )
        self.predictor = predictor
        # None: VERIFIED's scoring with a verifier, UNVERIFIED's without.
        self.decoding = decoding
        # The run directory the model came from (None for a bare .keras file).
        source = Path(predictor.source) if predictor.source else None
        self.run_path = source if source is not None and source.is_dir() else None
        # The segmentation verifier: given, else the run's own when it has one.
        self.verifier = verifier if verifier is not None else load_verifier(self.run_path)

    @classmethod
    def from_run(
        cls, run: str | os.PathLike[str], runs_dir: str | Path = "runs", *, verify: bool = True
    ) -> NumberReader:
        """Load the model of a run (a run directory, a name in ``runs_dir``, ``latest``).

        With ``verify`` (default) the run's segmentation verifier is loaded, and
        trained and saved into the run first when it has none (once, about a
        minute: :mod:`mnistlab.read.verifier`); without it candidates are scored by
        the classifier alone.
        """
        predictor = load_predictor(run, runs_dir, abstain=False)
        reader = cls(predictor)
        if verify and reader.verifier is None and reader.run_path is not None:
            reader.verifier = load_or_train(reader.run_path)
        if not verify:
            reader.verifier = None
        return reader

    def scoring(self) -> Decoding:
        """The decoding in use: the one given, else the default for having a verifier or not."""
        if self.decoding is not None:
            return self.decoding
        return VERIFIED if self.verifier is not None else UNVERIFIED

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of MNIST-form crops, in one batched call."""
        if not images:
            return np.zeros((0, 10), np.float32)
        return self.predictor.probabilities(np.stack(images))


def read_image(reader: NumberReader, image: np.ndarray) -> NumberReading:
    """Read the number written in ``image``.

    Parameters
    ----------
    reader : the loaded reader.
    image : 2-D uint8 or float array in [0, 1] as decoded from a file; dark ink on
        light paper or the reverse.

    Returns
    -------
    NumberReading; ``text`` None with a ``reason`` when no number can be read.

    Raises
    ------
    MnistlabError
        Not a 2-D image, or non-finite values.
    """
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 1:
        raise MnistlabError(f"expected a 2-D grayscale image, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.isfinite(image).all():
        raise MnistlabError("the image has NaN or infinite values")
    if image.dtype != np.uint8 and image.size and (image.min() < 0 or image.max() > 1):
        raise MnistlabError(
            f"expected values in [0, 1] (or uint8), got {image.min():g}..{image.max():g}"
        )
    page = line_ink(image)
    if not page.ink.any():
        return NumberReading(text=None, confidence=0.0, reason=NO_INK)
    atoms, hyps, height = hypotheses(page.ink, max_marks=MAX_MARKS_PER_LINE)
    if not atoms:
        return NumberReading(text=None, confidence=0.0, reason=NO_DIGITS)
    if marks(atoms) > MAX_MARKS_PER_LINE:
        return NumberReading(text=None, confidence=0.0, reason=TOO_MANY)
    crops = np.stack([h.image for h in hyps]) if hyps else np.zeros((0, 28, 28), np.float32)
    probs = reader.predictor.probabilities(crops) if hyps else np.zeros((0, 10), np.float32)
    garbage = None
    digit_probs = probs
    if reader.verifier is not None:
        checked = reader.verifier.probabilities(crops, features(hyps))
        garbage = checked[:, NOT_ONE_DIGIT]
        # The digit read: the classifier's and the verifier's evidence together (the
        # verifier has seen cut and cleaned-up crops, the classifier only whole digits).
        both = probs * checked[:, :NOT_ONE_DIGIT]
        digit_probs = both / np.maximum(both.sum(axis=1, keepdims=True), 1e-12)
    chosen = best_sequence(
        len(atoms), hyps, probs, atoms_small(atoms, height), reader.scoring(), garbage
    )
    if not chosen:
        return NumberReading(text=None, confidence=0.0, reason=NO_DIGITS)
    digits = [_digit(hyps[i], digit_probs[i], page.scale, image.shape) for i in chosen]
    confidences = [d.confidence for d in digits]
    mean = math.exp(float(np.mean(np.log(np.maximum(confidences, 1e-12)))))
    if mean < reader.scoring().reject_below:
        return NumberReading(text=None, confidence=0.0, reason=NOT_A_NUMBER, digits=digits)
    return NumberReading(
        text="".join(str(d.digit) for d in digits),
        confidence=float(np.prod(confidences)),
        digits=digits,
    )


def read_bytes(
    reader: NumberReader, data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> NumberReading:
    """Decode an encoded image (PNG, JPEG, ...) as ``predict`` does and read its number.

    Raises
    ------
    mnistlab.predict.ImageError
        Empty, unreadable or too large (the same errors as prediction).
    """
    return read_image(reader, load_image(data, max_pixels=max_pixels))


def atoms_small(atoms: list, height: float) -> np.ndarray:
    """Which atoms are small enough to be left out as specks."""
    return np.array(
        [(a.y1 - a.y0) < 0.35 * height and (a.x1 - a.x0) < 0.35 * height for a in atoms], bool
    )


def best_sequence(
    n_atoms: int,
    hyps: list[Hypothesis],
    probs: np.ndarray,
    small: np.ndarray,
    decoding: Decoding,
    garbage: np.ndarray | None = None,
) -> list[int]:
    """Indices of the hypotheses that cover all atoms with the best total score.

    ``garbage``: each hypothesis' probability of not being one whole digit (the
    verifier's), or None.
    """
    d = decoding
    score = np.log(np.maximum(probs.max(axis=1), 1e-12)) + d.digit_bonus
    if garbage is not None:
        score += d.verify_weight * np.log(np.maximum(1 - garbage, 1e-6))
    for i, h in enumerate(hyps):
        score[i] -= d.wide_penalty * max(0.0, h.width - d.wide_from)
        score[i] -= d.low_penalty * max(0.0, d.low_from - h.height)
        score[i] -= d.cut_penalty * h.cut_right
    ending: list[list[int]] = [[] for _ in range(n_atoms + 1)]
    for i, h in enumerate(hyps):
        ending[h.stop].append(i)
    best = np.full(n_atoms + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int]] = [(-1, -1)] * (n_atoms + 1)  # (previous position, hypothesis)
    for stop in range(1, n_atoms + 1):
        if small[stop - 1] and best[stop - 1] - d.skip_penalty > best[stop]:
            best[stop] = best[stop - 1] - d.skip_penalty
            back[stop] = (stop - 1, -1)
        for i in ending[stop]:
            total = best[hyps[i].start] + score[i]
            if total > best[stop]:
                best[stop] = total
                back[stop] = (hyps[i].start, i)
    chosen: list[int] = []
    pos = n_atoms
    while pos > 0 and np.isfinite(best[pos]):
        pos, i = back[pos]
        if i >= 0:
            chosen.append(i)
    return chosen[::-1]


def _digit(
    hyp: Hypothesis, probs: np.ndarray, scale: float, shape: tuple[int, ...]
) -> DigitReading:
    x0, y0, x1, y1 = hyp.box
    h, w = shape
    box = (
        int(max(0, math.floor(x0 * scale))),
        int(max(0, math.floor(y0 * scale))),
        int(min(w, math.ceil(x1 * scale))),
        int(min(h, math.ceil(y1 * scale))),
    )
    p = [round(float(v), 6) for v in probs]
    digit = int(np.argmax(probs))
    return DigitReading(
        box=box, digit=digit, confidence=min(1.0, max(0.0, float(probs[digit]))), probabilities=p
    )
