"""The report's Trust section: risk-coverage, the abstention rule on test digits, OOD table.

Shown when the run has ``abstention.json`` (``mnistlab train`` / ``mnistlab trust``):

- the risk-coverage curve (selective accuracy against coverage, most confident
  first: ``metrics.json``'s ``risk_coverage``) with the run's operating point on the
  test digits (``abstention.json``'s ``test``, measured by ``mnistlab evaluate``);
- what the rule abstains on, per reason, and test digits it abstained on;
- the OOD comparison (AUROC / FPR@95 per score and outlier kind) when ``mnistlab
  ood RUN`` stored one.

The reliability diagram before and after calibration is in the Calibration section.
Nothing is measured here; figures are drawn on :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mnistlab import files
from mnistlab.data import Dataset
from mnistlab.report.blocks import Block, Cards, Paragraph, PngFigure, Section, Table
from mnistlab.report.drawing import new_figure, style
from mnistlab.runs import RunDir, load_predictions


def draw_risk_coverage(curve: Mapping[str, Any], point: tuple[float, float] | None) -> Figure:
    """Selective accuracy against coverage, and the operating point (coverage, accuracy)."""
    with style():
        fig = new_figure((5.5, 3.6))
        ax = fig.subplots()
        ax.plot(curve["coverage"], curve["selective_accuracy"], lw=2, label="most confident first")
        if point is not None:
            ax.plot(*point, "o", ms=9, color="C3", label="the run's abstention rule")
        ax.set_xlabel("coverage (share of test digits answered)")
        ax.set_ylabel("selective accuracy")
        low = min(curve["selective_accuracy"])
        ax.set_ylim(max(0.0, low - 0.005), 1.0005)
        ax.legend(loc="lower left")
        ax.set_title("risk-coverage on the test digits")
    return fig


def draw_examples(images: np.ndarray, titles: list[str]) -> Figure:
    """A row of 28x28 images (white ink on black) with a title each."""
    with style("white"):
        fig = new_figure((1.1 * max(len(images), 1), 1.5))
        axes = np.atleast_1d(fig.subplots(1, max(len(images), 1)))
        for ax, image, title in zip(axes, images, titles, strict=False):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7)
        for ax in axes:
            ax.axis("off")
    return fig


def trust_section(run: RunDir, metrics: Mapping[str, Any], dataset: Dataset) -> Section | None:
    """The Trust section of ``run``'s report; None when the run has no abstention rule."""
    record = run.abstention_record()
    if record is None:
        return None
    _, probs = load_predictions(run)  # calibrated, as the rule saw them
    data = record.model_dump()
    test = data.get("test")
    blocks: list[Block] = []
    if test:
        blocks.append(
            Cards(
                [
                    ("test digits answered", f"{test['coverage']:.2%}"),
                    ("accuracy on those", f"{test['selective_accuracy']:.2%}"),
                    ("accuracy on all", f"{test['accuracy']:.2%}"),
                    ("abstention score", record.score),
                ]
            )
        )
    curve = metrics.get("risk_coverage")
    if curve:
        point = (test["coverage"], test["selective_accuracy"]) if test else None
        path = files.save_figure(
            draw_risk_coverage(curve, point), run.figures_dir / "risk_coverage.png"
        )
        blocks.append(PngFigure(path, "Selective accuracy against coverage; the dot: the rule"))
    if test:
        rows = [(reason, f"{rate:.2%}") for reason, rate in test["rates"].items()]
        blocks.append(Table(["test digits abstained on as", "share"], rows, numeric=[False, True]))
        for reason, indices in test["examples"].items():
            if indices:
                blocks.append(_examples(run, reason, indices, dataset, probs))
    ood = data.get("ood_benchmark")
    if ood:
        blocks.append(_ood_table(ood))
    blocks.append(
        Paragraph(
            f"Thresholds chosen on the {record.n_fit or 'validation'} validation digits only, "
            f"to answer {record.target_keep:.0%} of them: an OOD score ({record.score}) above "
            f"{record.ood_threshold:.4g} is 'not a digit', a calibrated top probability below "
            f"{record.min_confidence:.3f} is 'unsure', ink over {record.max_ink:.0%} of the "
            "field is 'not a digit'"
            + (
                ", several blobs side by side are 'not a single digit'."
                if record.split_blobs
                else "."
            )
            + " 'mnistlab ood RUN' compares the scores on test outliers.",
            cls="note",
        )
    )
    return Section("Trust: abstention", blocks)


def _examples(
    run: RunDir, reason: str, indices: list[int], dataset: Dataset, probs: np.ndarray
) -> PngFigure:
    images = dataset.x_test[indices].astype(np.float32) / 255
    titles = [
        f"label {dataset.y_test[i]}\n{probs[i].argmax()} {probs[i].max():.2f}" for i in indices
    ]
    name = reason.replace(" ", "-")
    path: Path = files.save_figure(
        draw_examples(images, titles), run.figures_dir / f"abstained-{name}.png"
    )
    return PngFigure(path, f"Test digits abstained on as '{reason}' (label; top class, prob.)")


def _ood_table(ood: Mapping[str, Any]) -> Table:
    methods = ood["methods"]
    kinds = list(next(iter(methods.values())).keys())
    rows = [
        (method, *(f"{row[k]['auroc']:.3f} / {row[k]['fpr95']:.2f}" for k in kinds))
        for method, row in methods.items()
    ]
    return Table(
        ["score (AUROC / FPR@95, test outliers)", *kinds],
        rows,
        numeric=[False, *([True] * len(kinds))],
        scroll=True,
    )
