"""The analysis figures of a run: per-class accuracy, error gallery, ROC, PR, reliability.

Drawn from the saved test predictions (the numbers come from
:mod:`mnistlab.evaluate`). As in :mod:`mnistlab.report.figures`, ``draw_*``
returns a :class:`matplotlib.figure.Figure` and ``plot_*`` saves the same figure
as a PNG with :func:`mnistlab.files.save_figure`; no pyplot.

>>> fig = draw_roc(roc_curves(y_true, probs, class_names))  # doctest: +SKIP
>>> plot_reliability(reliability(y_true, probs), "figures/reliability.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mnistlab import files
from mnistlab.evaluate import Curve, Reliability
from mnistlab.report.drawing import (
    TRAIN_COLOR,
    VAL_COLOR,
    curve_colors,
    new_figure,
    slant_xticklabels,
    style,
)


def draw_per_class_accuracy(
    accuracy: Sequence[float] | np.ndarray, class_names: Sequence[str], overall: float
) -> Figure:
    """Bar chart of the fraction of each class's test images predicted correctly.

    Parameters
    ----------
    accuracy : K per-class accuracies (:func:`mnistlab.evaluate.per_class_accuracy`).
    class_names : K names.
    overall : overall test accuracy, drawn as a dashed line.

    Returns
    -------
    The figure. The y-axis starts near the weakest class, not at 0
    (the caption says so), so that differences of a few tenths of a percent show.
    """
    acc = np.asarray(accuracy, dtype=float)
    names = [str(c) for c in class_names]
    lowest = float(np.nanmin(acc)) if np.any(np.isfinite(acc)) else 0.0
    bottom = max(0.0, 1.0 - 2.0 * (1.0 - lowest) - 0.005)
    with style():
        fig = new_figure((9, 3.8))
        ax = fig.subplots()
        colors = [VAL_COLOR if a == lowest else TRAIN_COLOR for a in acc]
        bars = ax.bar(names, np.nan_to_num(acc - bottom), bottom=bottom, color=colors)
        ax.bar_label(bars, labels=[f"{a:.2%}" for a in acc], fontsize=7, padding=2)
        ax.axhline(overall, color="grey", ls="--", lw=1, label=f"all classes {overall:.2%}")
        ax.set_ylim(bottom, 1.0 + (1.0 - bottom) * 0.08)
        ax.set_xlabel("true class")
        ax.set_ylabel("fraction predicted correctly")
        ax.set_title("per-class accuracy on the test set")
        # Outside the axes: inside, it would cover a bar.
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if max(len(n) for n in names) > 3:
            slant_xticklabels(ax, 30)
    return fig


def draw_error_gallery(
    mistakes: Sequence[Mapping[str, Any]], images: np.ndarray, class_names: Sequence[str]
) -> Figure:
    """A grid of misclassified images, each titled true -> predicted and the confidence.

    Parameters
    ----------
    mistakes : :func:`mnistlab.evaluate.ranked_mistakes` records, in the order to show.
    images : uint8 (N, 28, 28), the evaluated images that ``index`` refers to.
    class_names : K names.

    Returns
    -------
    The figure.
    """
    names = [str(c) for c in class_names]
    n = len(mistakes)
    cols = 10
    rows = max(1, math.ceil(n / cols))
    with style("white"):
        fig = new_figure((cols * 1.05, rows * 1.45))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, m in zip(axes.flat, mistakes, strict=False):
            ax.imshow(images[m["index"]], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(
                f"{names[m['true']]} → {names[m['pred']]}\n{m['confidence']:.1%}",
                fontsize=8,
                pad=2,
                color="#b2182b",
            )
        title = f"the {n} most confident mistakes: true → predicted, confidence"
        fig.suptitle(title if n else "no misclassified images", y=1.0, fontsize=11)
        # Fixed spacing: tight_layout over 40 axes takes seconds and gives the same grid.
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.1, hspace=0.55)
    return fig


def plot_per_class_accuracy(
    accuracy: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    overall: float,
    path: str | Path,
) -> Path:
    """Save :func:`draw_per_class_accuracy` as a PNG; return ``path`` as a Path."""
    return files.save_figure(draw_per_class_accuracy(accuracy, class_names, overall), path)


def plot_error_gallery(
    mistakes: Sequence[Mapping[str, Any]],
    images: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Save :func:`draw_error_gallery` as a PNG; return ``path`` as a Path."""
    return files.save_figure(draw_error_gallery(mistakes, images, class_names), path)


def _draw_curves(ax: Axes, curves: Sequence[Curve]) -> None:
    # Each class with its area in the legend, then the micro average dashed in black.
    per_class, micro = curves[:-1], curves[-1]
    for curve, color in zip(per_class, curve_colors(len(per_class)), strict=True):
        if curve.area is not None:
            ax.plot(curve.x, curve.y, color=color, lw=1.2, label=f"{curve.label}: {curve.area:.6f}")
    ax.plot(micro.x, micro.y, "k--", lw=1.4, label=f"micro: {micro.area:.6f}")


def draw_roc(curves: Sequence[Curve]) -> Figure:
    """One-vs-rest ROC curves: full view, and the false-positive rate on a log scale.

    Parameters
    ----------
    curves : :func:`mnistlab.evaluate.roc_curves` (per class, then micro).

    Returns
    -------
    The figure.
    """
    drawn = [c for c in curves[:-1] if c.area is not None] + [curves[-1]]
    positive = np.concatenate([c.x[c.x > 0] for c in drawn] or [np.array([1e-4])])
    x_low = max(float(positive.min()) if positive.size else 1e-4, 1e-5)
    y_low = min(float(np.interp(x_low, c.x, c.y)) for c in drawn)
    with style():
        fig = new_figure((11, 4.6))
        for ax, log in zip(fig.subplots(1, 2), (False, True), strict=True):
            _draw_curves(ax, curves)
            ax.set_xlabel("false-positive rate" + (" (log scale)" if log else ""))
            ax.set_ylabel("true-positive rate")
            if log:
                ax.set_xscale("log")
                ax.set_xlim(x_low, 1.0)
                ax.set_ylim(max(0.0, y_low - 0.02), 1.002)
                ax.set_title("zoom: false-positive rate on a log scale")
            else:
                ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
                ax.set_xlim(-0.01, 1.0)
                ax.set_ylim(0.0, 1.01)
                ax.set_title("ROC, each class against the rest")
                ax.legend(title="class: AUC", loc="lower right", fontsize=7, ncol=2)
        fig.tight_layout()
    return fig


def plot_roc(curves: Sequence[Curve], path: str | Path) -> Path:
    """Save :func:`draw_roc` as a PNG; return ``path`` as a Path."""
    return files.save_figure(draw_roc(curves), path)


def draw_pr(curves: Sequence[Curve]) -> Figure:
    """One-vs-rest precision-recall curves: full view, and the top-right corner.

    Parameters
    ----------
    curves : :func:`mnistlab.evaluate.pr_curves` (per class, then micro).

    Returns
    -------
    The figure.
    """
    with style():
        fig = new_figure((11, 4.6))
        for ax, zoom in zip(fig.subplots(1, 2), (False, True), strict=True):
            _draw_curves(ax, curves)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            if zoom:
                ax.set_xlim(0.8, 1.002)
                ax.set_ylim(0.8, 1.002)
                ax.set_title("zoom: recall and precision above 0.8")
            else:
                ax.set_xlim(0.0, 1.01)
                ax.set_ylim(0.0, 1.01)
                ax.set_title("precision-recall, each class against the rest")
                ax.legend(title="class: average precision", loc="lower left", fontsize=7, ncol=2)
        fig.tight_layout()
    return fig


def plot_pr(curves: Sequence[Curve], path: str | Path) -> Path:
    """Save :func:`draw_pr` as a PNG; return ``path`` as a Path."""
    return files.save_figure(draw_pr(curves), path)


def draw_reliability(
    before: Reliability, after: Reliability | None = None, temperature: float | None = None
) -> Figure:
    """Reliability diagram (accuracy against confidence per bin) and the images per bin.

    Parameters
    ----------
    before : :func:`mnistlab.evaluate.reliability` of the model's probabilities.
    after : the same after temperature scaling, drawn over it when given.
    temperature : the temperature of ``after``, for the legend.

    Returns
    -------
    The figure.
    """
    width = np.diff(before.edges)
    left = before.edges[:-1]
    used = before.count > 0
    with style():
        fig = new_figure((11, 4.4))
        axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
        ax = axes[0]
        ax.bar(
            left[used],
            before.accuracy[used],
            width=width[used],
            align="edge",
            color=TRAIN_COLOR,
            edgecolor="white",
            alpha=0.85,
            label=f"accuracy in bin (ECE {before.ece:.4f})",
        )
        # The gap between a bar and the diagonal is the bin's miscalibration.
        ax.bar(
            left[used],
            before.confidence[used] - before.accuracy[used],
            bottom=before.accuracy[used],
            width=width[used],
            align="edge",
            color="#d62728",
            alpha=0.25,
            hatch="//",
            edgecolor="#d62728",
            lw=0,
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1.2, label="perfect calibration")
        if after is not None:
            ok = after.count > 0
            ax.plot(
                after.confidence[ok],
                after.accuracy[ok],
                "o-",
                color=VAL_COLOR,
                ms=4,
                label=f"after temperature {temperature:.3f} (ECE {after.ece:.4f})",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("confidence (top-class probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"reliability diagram, {len(width)} equal-width bins")
        ax.legend(loc="upper left", fontsize=8)

        ax = axes[1]
        ax.bar(left, before.count, width=width, align="edge", color=TRAIN_COLOR, edgecolor="white")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("confidence (top-class probability)")
        ax.set_ylabel("test images (log scale)")
        ax.set_title("images per confidence bin")
        fig.tight_layout()
    return fig


def plot_reliability(
    before: Reliability,
    path: str | Path,
    after: Reliability | None = None,
    temperature: float | None = None,
) -> Path:
    """Save :func:`draw_reliability` as a PNG; return ``path`` as a Path."""
    return files.save_figure(draw_reliability(before, after, temperature), path)
