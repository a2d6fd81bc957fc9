"""Analysis: where a classifier errs and how well it ranks.

Pure functions of ``(y_true, probs)``: true labels, int (N,), and predicted
class probabilities, float (N, K), rows summing to 1 (checked by
:func:`~.probabilities.check_probs`). No files, no models, no plots, so
``evaluate`` can put the numbers in ``metrics.json`` and ``report`` can draw
them::

    ranking      roc_auc, average_precision, roc_curves, pr_curves (one-vs-rest)
    errors       ranked_mistakes, confused_pairs, per_class_accuracy, member_overlap (ensembles)

Calibration (reliability, ECE, temperature) is :mod:`.calibration`; the
numbers for ``metrics.json`` are :func:`~.metrics.analysis_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.evaluate.probabilities import check_probs

# -- ranking: ROC and precision-recall, one class against the rest ---------------------


@dataclass(frozen=True)
class Curve:
    """One ROC or precision-recall curve.

    Attributes
    ----------
    x, y : points in drawing order: (false-positive rate, true-positive rate)
        for ROC, (recall, precision) for precision-recall.
    area : ROC-AUC or average precision; None when undefined (the class has
        no positive or no negative image).
    label : the class name, or ``"micro"``.
    """

    x: np.ndarray
    y: np.ndarray
    area: float | None
    label: str


def _one_hot(y_true: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.int8)[y_true]


def _ranking_scores(y_true: np.ndarray, probs: np.ndarray, score: Any) -> dict[str, Any]:
    # score: sklearn's roc_auc_score or average_precision_score on binary targets.
    y_true, probs = check_probs(y_true, probs)
    k = probs.shape[1]
    onehot = _one_hot(y_true, k)
    per_class: list[float | None] = []
    for c in range(k):
        positives = int(onehot[:, c].sum())
        # One-vs-rest needs both sides: a class absent from y_true has no curve.
        if 0 < positives < len(y_true):
            per_class.append(float(score(onehot[:, c], probs[:, c])))
        else:
            per_class.append(None)
    defined = [a for a in per_class if a is not None]
    return {
        "per_class": per_class,
        # micro: every (image, class) pair is one binary decision, pooled.
        "micro": float(score(onehot.ravel(), probs.ravel())),
        # macro: the unweighted mean over the classes where it is defined.
        "macro": float(np.mean(defined)) if defined else None,
    }


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """One-vs-rest ROC-AUC per class, micro- and macro-averaged.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.

    Returns
    -------
    ``{"per_class": [K floats or None], "micro": float, "macro": float}``.
    A class with no positive or no negative image gets None and is left out
    of the macro mean. Macro equals scikit-learn's
    ``roc_auc_score(y, probs, multi_class="ovr", average="macro")``.

    Examples
    --------
    >>> roc_auc([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])["macro"]
    1.0
    """
    from sklearn.metrics import roc_auc_score

    return _ranking_scores(y_true, probs, roc_auc_score)


def average_precision(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """One-vs-rest average precision (area under the precision-recall curve).

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.

    Returns
    -------
    ``{"per_class": [K floats or None], "micro": float, "macro": float}``, as
    :func:`roc_auc`; the values are scikit-learn's ``average_precision_score``.
    """
    from sklearn.metrics import average_precision_score

    return _ranking_scores(y_true, probs, average_precision_score)


def _curves(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str] | None, kind: str
) -> list[Curve]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    y_true, probs = check_probs(y_true, probs)
    k = probs.shape[1]
    names = [str(c) for c in (class_names or range(k))]
    if len(names) != k:
        raise MnistlabError(f"class_names has {len(names)} names for {k} classes")
    onehot = _one_hot(y_true, k)
    areas = (roc_auc if kind == "roc" else average_precision)(y_true, probs)
    columns = [(onehot[:, c], probs[:, c], areas["per_class"][c], names[c]) for c in range(k)]
    columns.append((onehot.ravel(), probs.ravel(), areas["micro"], "micro"))
    curves = []
    for target, score, area, name in columns:
        if area is None:
            curves.append(Curve(np.array([]), np.array([]), None, name))
        elif kind == "roc":
            fpr, tpr, _ = roc_curve(target, score)
            curves.append(Curve(fpr, tpr, area, name))
        else:
            precision, recall, _ = precision_recall_curve(target, score)
            # Reversed so recall rises left to right, the way it is drawn.
            curves.append(Curve(recall[::-1], precision[::-1], area, name))
    return curves


def roc_curves(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str] | None = None
) -> list[Curve]:
    """One-vs-rest ROC curve of every class, then the micro-average curve.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.
    class_names : K names for the curves' labels; ``"0" .. "K-1"`` if None.

    Returns
    -------
    K + 1 :class:`Curve` objects (x = false-positive rate, y = true-positive
    rate, area = ROC-AUC); the last is ``label="micro"``.
    """
    return _curves(y_true, probs, class_names, "roc")


def pr_curves(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str] | None = None
) -> list[Curve]:
    """One-vs-rest precision-recall curve of every class, then the micro-average curve.

    Parameters
    ----------
    y_true, probs, class_names : as :func:`roc_curves`.

    Returns
    -------
    K + 1 :class:`Curve` objects (x = recall, y = precision, area = average
    precision); the last is ``label="micro"``.
    """
    return _curves(y_true, probs, class_names, "pr")


# -- errors ----------------------------------------------------------------------------------


def ranked_mistakes(
    y_true: np.ndarray, probs: np.ndarray, limit: int | None = None
) -> list[dict[str, Any]]:
    """The misclassified images, most confident mistake first.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.
    limit : keep at most this many; all if None.

    Returns
    -------
    One ``{"index", "true", "pred", "confidence", "p_true"}`` per mistake:
    ``index`` into the evaluated images, ``confidence`` the probability of the
    (wrong) predicted class, ``p_true`` that of the true class. Ties keep
    image order.

    Examples
    --------
    >>> ranked_mistakes([0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])[0]["index"]
    2
    """
    y_true, probs = check_probs(y_true, probs)
    pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")]
    if limit is not None:
        order = order[: max(int(limit), 0)]
    return [
        {
            "index": int(i),
            "true": int(y_true[i]),
            "pred": int(pred[i]),
            "confidence": float(confidence[i]),
            "p_true": float(probs[i, y_true[i]]),
        }
        for i in order
    ]


def confused_pairs(
    y_true: np.ndarray, probs: np.ndarray, top: int | None = 10
) -> list[dict[str, Any]]:
    """Pairs of classes most often mistaken for each other, both directions counted.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.
    top : keep the ``top`` pairs with most errors; all if None.

    Returns
    -------
    One ``{"a", "b", "a_as_b", "b_as_a", "total", "share"}`` per unordered
    pair ``a < b`` with at least one error, most errors first (ties: lower
    classes first). ``share`` is the pair's fraction of all errors.

    Examples
    --------
    >>> confused_pairs([0, 1, 1], [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    [{'a': 0, 'b': 1, 'a_as_b': 1, 'b_as_a': 1, 'total': 2, 'share': 1.0}]
    """
    y_true, probs = check_probs(y_true, probs)
    k = probs.shape[1]
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, probs.argmax(axis=1)), 1)
    n_errors = int(cm.sum() - np.trace(cm))
    pairs = [
        {
            "a": a,
            "b": b,
            "a_as_b": int(cm[a, b]),
            "b_as_a": int(cm[b, a]),
            "total": int(cm[a, b] + cm[b, a]),
            "share": (cm[a, b] + cm[b, a]) / n_errors if n_errors else 0.0,
        }
        for a in range(k)
        for b in range(a + 1, k)
        if cm[a, b] + cm[b, a] > 0
    ]
    pairs.sort(key=lambda p: (-p["total"], p["a"], p["b"]))
    for p in pairs:
        p["share"] = float(p["share"])
    return pairs if top is None else pairs[:top]


def member_overlap(
    y_true: np.ndarray, member_probs: Sequence[np.ndarray], probs: np.ndarray
) -> dict[str, Any]:
    """How an ensemble's members err together, and what averaging made of it.

    Averaging can only fix an image that enough members get right: the images
    wrong in every member are (nearly) out of its reach, and the more of each
    member's errors are shared, the less an ensemble gains on its members.

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    member_probs : M >= 1 float arrays (N, K), each member's probabilities.
    probs : float array (N, K), the ensemble's probabilities.

    Returns
    -------
    Plain JSON values: ``n_members``; per member, in the order given,
    ``accuracy`` and ``n_errors``; ``mean_member_errors``; ``wrong_in_all``,
    ``wrong_in_majority`` (more than half of the members) and ``wrong_in_any``
    (image counts); ``fixed`` (images the ensemble gets right and at least one
    member wrong) and ``missed`` (images the ensemble gets wrong and at least
    one member right).

    Examples
    --------
    >>> y = [0, 0, 1]
    >>> a = [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]   # wrong on image 1
    >>> b = [[0.6, 0.4], [0.7, 0.3], [0.6, 0.4]]   # wrong on image 2
    >>> mean = [[0.75, 0.25], [0.55, 0.45], [0.4, 0.6]]
    >>> o = member_overlap(y, [a, b], mean)
    >>> o["n_errors"], o["wrong_in_all"], o["wrong_in_any"], o["fixed"], o["missed"]
    ([1, 1], 0, 2, 2, 0)
    """
    y_true, probs = check_probs(y_true, probs)
    if len(member_probs) < 1:
        raise MnistlabError("member_probs is empty; give each member's probabilities")
    wrong = []
    for i, member in enumerate(member_probs):
        member = np.asarray(member)
        if member.shape != probs.shape:
            raise MnistlabError(
                f"member {i} has probabilities of shape {member.shape}; "
                f"the ensemble's are {probs.shape}"
            )
        wrong.append(check_probs(y_true, member)[1].argmax(axis=1) != y_true)
    wrong_by_member = np.stack(wrong)  # (M, N)
    n_wrong = wrong_by_member.sum(axis=0)  # members wrong on each image
    m, n = wrong_by_member.shape
    ensemble_wrong = probs.argmax(axis=1) != y_true
    errors = [int(w.sum()) for w in wrong_by_member]
    return {
        "n_members": m,
        "accuracy": [1.0 - e / n for e in errors],
        "n_errors": errors,
        "mean_member_errors": float(np.mean(errors)),
        "wrong_in_all": int(np.sum(n_wrong == m)),
        "wrong_in_majority": int(np.sum(2 * n_wrong > m)),
        "wrong_in_any": int(np.sum(n_wrong > 0)),
        "fixed": int(np.sum(~ensemble_wrong & (n_wrong > 0))),
        "missed": int(np.sum(ensemble_wrong & (n_wrong < m))),
    }


def per_class_accuracy(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Fraction of each class's images predicted correctly (the per-class recall).

    Parameters
    ----------
    y_true : int array (N,), labels in ``0 .. K-1``.
    probs : float array (N, K), predicted class probabilities.

    Returns
    -------
    float64 (K,); NaN for a class with no images.

    Examples
    --------
    >>> per_class_accuracy([0, 0, 1], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]).tolist()
    [0.5, 1.0]
    """
    y_true, probs = check_probs(y_true, probs)
    k = probs.shape[1]
    correct = probs.argmax(axis=1) == y_true
    total = np.bincount(y_true, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(y_true, weights=correct, minlength=k) / total
