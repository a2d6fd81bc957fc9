"""Stratified K-fold cross-validation on the training images.

How much of a model's accuracy is the model, and how much the luck of one
split? Train it K times, each time holding out a different fifth (or K-th)::

    the 60,000 training images (or a stratified subset: limit)
    -> StratifiedKFold(K, shuffle=True, random_state=seed): K held-out folds
       with the class proportions of the whole
    -> per fold: train() on the other K-1 folds, early stopping on a validation
       split carved from those folds only; evaluate() on the held-out fold
    -> <out>/fold_<i>.json (atomic) the moment fold i finishes
    -> mean and standard deviation of accuracy and macro-F1 over the folds

The test set is not used at all: each fold is scored on its held-out fold.

Layout of ``<out>``::

    plan.json          what this cross-validation is: config, folds, seed, images
    fold_<i>.json      result of fold i (1..K): accuracy, macro-F1, sizes, held-out indices
    folds/fold_<i>/    the fold's run directory (config.json, model.keras, metrics.json, ...)
    summary.json       per fold and mean/std (also summary.csv and summary.md)
    cv.png             accuracy and macro-F1 per fold with the mean +- std band

Running the same cross-validation again resumes it: folds whose
``fold_<i>.json`` exists are not trained again, a fold that was interrupted
is trained from the start. Folds can train in parallel processes
(``workers``); each process gets an equal share of the CPU cores.

Modules: :mod:`~mnistlab.cv.folds` (the stratified split),
:mod:`~mnistlab.cv.crossval` (training the folds, resuming),
:mod:`~mnistlab.cv.summary` (mean +- std, summary files and figure).
"""

from __future__ import annotations

from mnistlab.cv.crossval import PLAN_FILE, cross_validate
from mnistlab.cv.folds import fold_indices, subset_indices
from mnistlab.cv.summary import (
    STD_DDOF,
    SUMMARY_COLUMNS,
    SUMMARY_FILES,
    format_summary,
    plot_summary,
    summarise,
    write_summary,
)

__all__ = [
    "PLAN_FILE",
    "STD_DDOF",
    "SUMMARY_COLUMNS",
    "SUMMARY_FILES",
    "cross_validate",
    "fold_indices",
    "format_summary",
    "plot_summary",
    "subset_indices",
    "summarise",
    "write_summary",
]
