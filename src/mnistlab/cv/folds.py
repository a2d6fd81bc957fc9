"""Splitting the training images into stratified folds (pure functions, no training)."""

from __future__ import annotations

import numpy as np

from mnistlab.errors import MnistlabError


def fold_indices(y: np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """The held-out indices of each fold of a stratified, shuffled K-fold split.

    Parameters
    ----------
    y : int (N,), class labels; every fold keeps their proportions.
    folds : K >= 2; every class needs at least K images.
    seed : ``random_state`` of scikit-learn's ``StratifiedKFold(shuffle=True)``.

    Returns
    -------
    K sorted int arrays, disjoint, together covering ``0 .. N-1``.

    Examples
    --------
    >>> parts = fold_indices(np.array([0, 1] * 5), folds=5)
    >>> [len(p) for p in parts]
    [2, 2, 2, 2, 2]
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    if not (isinstance(folds, int | np.integer) and folds >= 2):
        raise MnistlabError(f"invalid folds={folds!r}: expected an integer >= 2")
    present = np.bincount(y) if len(y) else np.zeros(1, dtype=int)
    smallest = int(present[present > 0].min()) if present.any() else 0
    if smallest < folds:
        raise MnistlabError(
            f"cannot make {folds} stratified folds: the smallest class has only {smallest} "
            "images; use fewer folds or more images"
        )
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    return [np.sort(held) for _, held in splitter.split(np.zeros(len(y)), y)]


def subset_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A stratified, seeded subset of ``n`` of the images (for quick trials).

    Parameters
    ----------
    y : int (N,), class labels.
    n : subset size, ``1 <= n <= N``; ``n == N`` returns every index.
    seed : the same seed picks the same images.

    Returns
    -------
    Sorted int (n,) indices into ``y``.
    """
    y = np.asarray(y)
    if not (isinstance(n, int | np.integer) and 1 <= n <= len(y)):
        raise MnistlabError(f"invalid limit={n!r}: expected 1 to {len(y):,} images")
    if n == len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    try:
        chosen, _ = train_test_split(
            np.arange(len(y)), train_size=int(n), random_state=seed, stratify=y
        )
    except ValueError as err:
        raise MnistlabError(f"cannot draw a stratified subset of {n} images: {err}") from err
    return np.sort(chosen)
