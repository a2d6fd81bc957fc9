"""The robustness benchmark's figures: examples of each corruption, accuracy per corruption.

Drawn on :class:`matplotlib.figure.Figure` objects in the report's look
(:mod:`mnistlab.report.drawing`: no pyplot, no global state) and saved by
:func:`mnistlab.files.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mnistlab import files
from mnistlab.report.drawing import TRAIN_COLOR, VAL_COLOR, new_figure, style

GAP = 2  # black pixels between the example digits of the mosaic


def draw_examples(examples: Mapping[str, np.ndarray]) -> Figure:
    """One row of digits per corruption (the clean ones first), as the model sees them.

    Parameters
    ----------
    examples : row name -> uint8 (K, 28, 28), the same K for every row.

    Returns
    -------
    The figure: one mosaic image, rows labelled by name.
    """
    rows = []
    for images in examples.values():
        padded = np.pad(np.asarray(images, np.uint8), ((0, 0), (GAP, GAP), (GAP, GAP)))
        rows.append(np.concatenate(list(padded), axis=1))
    mosaic = np.concatenate(rows, axis=0)
    height, width = mosaic.shape
    with style("white"):
        fig = new_figure((width / 40 + 1.6, height / 40 + 0.4))
        ax = fig.add_subplot()
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        side = height / len(rows)
        ax.set_yticks([side * (i + 0.5) for i in range(len(rows))], list(examples))
        ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title("The same test digits under each corruption")
    return fig


def draw_accuracy(record: Mapping[str, Any]) -> Figure:
    """Horizontal bars: accuracy per corruption on arrays (and through predict).

    Parameters
    ----------
    record : what ``robustness.json`` holds (``clean``, ``corruptions``, ``mean``).

    Returns
    -------
    The figure, with the clean accuracy on arrays as a dashed line.
    """
    names = [*(s["name"] for s in record["corruptions"]), "mean"]
    scores = [*record["corruptions"], record["mean"]]
    arrays = [s["arrays"] for s in scores]
    predict = [s.get("predict") for s in scores]
    with_predict = all(p is not None for p in predict)
    y = np.arange(len(names))[::-1].astype(float)
    height = 0.4 if with_predict else 0.7
    with style("whitegrid"):
        fig = new_figure((7.0, 0.32 * len(names) + 1.4))
        ax = fig.add_subplot()
        ax.barh(
            y + (height / 2 if with_predict else 0),
            arrays,
            height,
            color=TRAIN_COLOR,
            label="on arrays (the model)",
        )
        if with_predict:
            ax.barh(
                y - height / 2,
                predict,
                height,
                color=VAL_COLOR,
                label="through predict (PNG -> preprocessing -> model)",
            )
        ax.axvline(
            record["clean"]["arrays"],
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"clean on arrays ({record['clean']['arrays']:.2%})",
        )
        ax.set_yticks(y, names)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"test accuracy ({record['n']:,} images, seed {record['seed']})")
        # Below the axes: inside, it would hide the bars of the last corruptions.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize="small", frameon=False)
        ax.set_title("Accuracy under the MNIST-C corruptions")
    return fig


def write_figures(
    record: Mapping[str, Any], examples: Mapping[str, np.ndarray], run_path: Path
) -> dict[str, str]:
    """Save both figures under ``run_path``; their paths relative to it, by name."""
    paths = {
        "accuracy": "figures/robustness_accuracy.png",
        "examples": "figures/robustness_examples.png",
    }
    files.save_figure(draw_accuracy(record), run_path / paths["accuracy"])
    files.save_figure(draw_examples(examples), run_path / paths["examples"])
    return paths
