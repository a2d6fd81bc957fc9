"""One prediction as a value: the class, its probability, the top k, or why there is none.

:class:`FileResult` is what :func:`mnistlab.predict.predict_files` yields per file and
what the HTTP API builds its answers from; ``to_dict`` is its plain-JSON form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FileResult"]


@dataclass
class FileResult:
    """The prediction for one file, or why there is none.

    Attributes
    ----------
    file : the path as given (or found in a directory).
    digit, probability : the predicted class and its probability (None on error).
    top_k : [(digit, probability), ...], most likely first.
    probabilities : all ten, in digit order.
    label : the true digit when the file sits in a folder named by it (``samples/7/x.png``;
        for a run with other classes, a folder named by a class: ``Sandal/x.png``).
    error : the one-line reason when the file could not be used.
    reason : why there is no digit although the image was used: ``"not a digit"``,
        ``"unsure"`` or ``"not a single digit"`` (:mod:`mnistlab.trust`); the
        probabilities and top k are still there.
    image : the 28x28 image the model saw (float32), not serialised.
    class_names : the classes' names when they are not the digits (Fashion-MNIST);
        then :meth:`to_dict` adds a ``class`` beside each class number.
    """

    file: str
    digit: int | None = None
    probability: float | None = None
    top_k: list[tuple[int, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    label: int | None = None
    error: str | None = None
    reason: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    @classmethod
    def from_probs(
        cls,
        file: str,
        probs: np.ndarray,
        top_k: int,
        image: np.ndarray | None = None,
        class_names: tuple[str, ...] | None = None,
        reason: str | None = None,
    ) -> FileResult:
        order = np.argsort(-probs, kind="stable")[: max(1, top_k)]
        return cls(
            file=file,
            digit=None if reason else int(order[0]),
            reason=reason,
            probability=float(probs[order[0]]),
            top_k=[(int(d), float(probs[d])) for d in order],
            probabilities=[float(p) for p in probs],
            image=image,
            class_names=class_names,
        )

    def class_name(self, index: int) -> str:
        """What class ``index`` is called: ``"7"`` for MNIST, ``"Sandal"`` for Fashion-MNIST's 5."""
        return self.class_names[index] if self.class_names else str(index)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def correct(self) -> bool | None:
        """True/False when the label is known, None otherwise."""
        if self.label is None or self.digit is None:
            return None
        return self.digit == self.label

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the image)."""
        if self.error is not None:
            return {"file": self.file, "error": self.error, "label": self.label}
        if self.class_names is None:  # MNIST: the digits are the names
            top_k: list[dict[str, Any]] = [{"digit": d, "probability": p} for d, p in self.top_k]
            named: dict[str, Any] = {}
        else:
            top_k = [
                {"digit": d, "class": self.class_name(d), "probability": p} for d, p in self.top_k
            ]
            named = {"class": self.class_name(self.digit) if self.digit is not None else None}
        from mnistlab.trust import explain

        return {
            "file": self.file,
            "digit": self.digit,
            **named,
            "reason": self.reason,
            "explanation": explain(self.reason),
            "probability": self.probability,
            "top_k": top_k,
            "probabilities": self.probabilities,
            "label": self.label,
            "correct": self.correct,
        }
