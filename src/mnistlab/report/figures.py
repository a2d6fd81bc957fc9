"""The standard figures of a run: its data, its training history, its confusion matrix.

Each figure has two functions, in the manner of scikit-learn's displays:
``draw_*`` computes what it needs once and returns a
:class:`matplotlib.figure.Figure` (show it in a notebook, or add to it), and
``plot_*`` draws the same and saves it as a PNG with
:func:`mnistlab.files.save_figure`. No pyplot: the user's backend is never touched.

>>> fig = draw_class_distribution(load_dataset("mnist"))  # doctest: +SKIP
>>> plot_confusion(run.metrics(), "figures/confusion_matrix.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mnistlab import files
from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.report.drawing import TRAIN_COLOR, VAL_COLOR, new_figure, slant_xticklabels, style

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def draw_class_distribution(dataset: Dataset) -> Figure:
    """Bar chart of images per class, training and test sets side by side.

    Parameters
    ----------
    dataset : a loaded dataset (``y_train``, ``y_test``, ``class_names``).

    Returns
    -------
    The figure.
    """
    names = [str(c) for c in dataset.class_names]
    k = len(names)
    counts = pd.DataFrame(
        {
            "class": names * 2,
            "images": np.concatenate(
                [
                    np.bincount(dataset.y_train, minlength=k),
                    np.bincount(dataset.y_test, minlength=k),
                ]
            ),
            "set": [f"train ({len(dataset.y_train):,})"] * k
            + [f"test ({len(dataset.y_test):,})"] * k,
        }
    )
    with style():
        fig = new_figure((9, 4))
        ax = fig.subplots()
        sns.barplot(
            counts, x="class", y="images", hue="set", palette=[TRAIN_COLOR, VAL_COLOR], ax=ax
        )
        for bars in ax.containers:
            if isinstance(bars, BarContainer):
                ax.bar_label(bars, fmt="{:,.0f}", fontsize=7, padding=2)
        ax.set_title(f"{dataset.name}: images per class")
        ax.set_xlabel("class")
        ax.set_ylabel("images")
        ax.margins(y=0.1)  # room for the count labels above the tallest bar
        ax.legend(title=None, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if max(len(n) for n in names) > 3:  # Fashion-MNIST's "Ankle boot" and friends
            slant_xticklabels(ax, 30)
    return fig


def plot_class_distribution(dataset: Dataset, path: str | Path) -> Path:
    """Save :func:`draw_class_distribution` as a PNG.

    Parameters
    ----------
    dataset : a loaded dataset (``y_train``, ``y_test``, ``class_names``).
    path : PNG file to write (parent directories are created).

    Returns
    -------
    ``path`` as a Path.

    Examples
    --------
    >>> plot_class_distribution(load_dataset("mnist"), "figures/classes.png")  # doctest: +SKIP
    """
    return files.save_figure(draw_class_distribution(dataset), path)


def draw_samples(dataset: Dataset, n: int = 40, seed: int = 0) -> Figure:
    """A grid of ``n`` random training images, each titled with its label.

    Parameters
    ----------
    dataset : a loaded dataset (``x_train`` uint8 (N, 28, 28), ``y_train``, ``class_names``).
    n : number of images, 1 to the training-set size; 10 per row.
    seed : which images (the same seed draws the same images).

    Returns
    -------
    The figure.
    """
    if not 1 <= n <= len(dataset.x_train):
        raise MnistlabError(f"invalid n={n!r}: expected 1 to {len(dataset.x_train)} images")
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(dataset.x_train), size=n, replace=False))
    cols = min(10, n)
    rows = math.ceil(n / cols)
    with style("white"):
        fig = new_figure((cols * 1.0, rows * 1.25))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, i in zip(axes.flat, index, strict=False):
            # gray_r: dark ink on white paper, as the digits were written.
            ax.imshow(dataset.x_train[i], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(str(dataset.class_names[dataset.y_train[i]]), fontsize=9, pad=2)
        fig.suptitle(f"{dataset.name}: {n} random training images with their labels", y=1.0)
        fig.tight_layout(pad=0.3)
    return fig


def plot_samples(dataset: Dataset, path: str | Path, n: int = 40, seed: int = 0) -> Path:
    """Save :func:`draw_samples` (``n`` random training images with labels) as a PNG.

    Returns
    -------
    ``path`` as a Path.
    """
    return files.save_figure(draw_samples(dataset, n, seed), path)


def read_history(history_csv_path: str | Path) -> pd.DataFrame:
    """A run's ``history.csv``, checked to have the columns the history figure needs.

    Raises
    ------
    MnistlabError
        If the file cannot be read, has no rows or lacks a column.
    """
    try:
        history = pd.read_csv(history_csv_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise MnistlabError(
            f"cannot read training history {history_csv_path}: {err}; was the run trained?"
        ) from err
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing or history.empty:
        raise MnistlabError(
            f"training history {history_csv_path} has no rows or lacks columns {missing}; "
            "it should come from 'mnistlab train'"
        )
    return history


def draw_history(history: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, training vs validation, in two panels.

    Parameters
    ----------
    history : :func:`read_history` of a run's ``history.csv``.

    Returns
    -------
    The figure. A dotted line marks the epoch with the best validation accuracy
    (a run with ``keep="best"`` kept its weights). A run trained without a
    validation set (``val_size=0``) has training curves alone.
    """
    validated = bool(history["val_accuracy"].notna().any())
    best_epoch = (
        int(history["epoch"].iloc[int(np.nanargmax(history["val_accuracy"].to_numpy()))])
        if validated
        else None
    )
    with style():
        fig = new_figure((10, 3.8))
        axes = fig.subplots(1, 2)
        for ax, metric in ((axes[0], "loss"), (axes[1], "accuracy")):
            ax.plot(
                history["epoch"], history[metric], "o-", color=TRAIN_COLOR, ms=4, label="training"
            )
            if best_epoch is not None:
                ax.plot(
                    history["epoch"],
                    history[f"val_{metric}"],
                    "o-",
                    color=VAL_COLOR,
                    ms=4,
                    label="validation",
                )
                ax.axvline(
                    best_epoch, color="grey", ls=":", lw=1.2, label=f"best epoch ({best_epoch})"
                )
            ax.set_title(metric if best_epoch is not None else f"{metric} (no validation set)")
            ax.set_xlabel("epoch")
            # Whole epochs only; the half-epoch margins keep a one-epoch run from
            # collapsing the axis to a sliver with fractional ticks.
            ax.set_xlim(0.5, history["epoch"].max() + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes[0].set_ylabel("cross-entropy")
        axes[1].set_ylabel("fraction correct")
        axes[1].legend(loc="lower right")
        fig.tight_layout()
    return fig


def plot_history(history_csv_path: str | Path, path: str | Path) -> Path:
    """Save :func:`draw_history` of a run's ``history.csv`` as a PNG.

    Parameters
    ----------
    history_csv_path : a run's ``history.csv`` (columns epoch, loss, accuracy,
        val_loss, val_accuracy, ...).
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    return files.save_figure(draw_history(read_history(history_csv_path)), path)


def draw_confusion(metrics: Mapping[str, Any]) -> Figure:
    """Annotated heatmap of the test-set confusion matrix (counts).

    Colours are on a log scale so a handful of errors stands out next to
    a diagonal of ~1,000; cells with no images are left blank.

    Parameters
    ----------
    metrics : a metrics dict (``confusion_matrix``, ``class_names``, ``test_accuracy``).

    Returns
    -------
    The figure.
    """
    cm = np.asarray(metrics["confusion_matrix"], dtype=int)
    names = [str(c) for c in metrics["class_names"]]
    with style("white"):
        fig = new_figure((8, 6.6))
        ax = fig.subplots()
        sns.heatmap(
            cm,
            ax=ax,
            annot=True,
            fmt="d",
            annot_kws={"fontsize": 8},
            mask=cm == 0,
            norm=LogNorm(vmin=1, vmax=max(int(cm.max()), 2)),
            cmap="Blues",
            xticklabels=names,
            yticklabels=names,
            square=True,
            linewidths=0.5,
            linecolor="#eeeeee",
            cbar_kws={"label": "images (log scale)", "shrink": 0.8},
        )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(axis="y", labelrotation=0)
        if max(len(n) for n in names) > 3:
            slant_xticklabels(ax, 45)
        ax.set_title(
            f"confusion matrix: {int(cm.sum()) - int(np.trace(cm)):,} errors in "
            f"{int(cm.sum()):,} test images ({metrics['test_accuracy']:.2%} correct)"
        )
        # The mask leaves zero cells uncoloured; a frame keeps the matrix readable as a grid.
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color("#cccccc")
    return fig


def plot_confusion(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Save :func:`draw_confusion` (the test-set confusion matrix) as a PNG.

    Returns
    -------
    ``path`` as a Path.
    """
    return files.save_figure(draw_confusion(metrics), path)
