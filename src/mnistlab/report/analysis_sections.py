"""The sections of a run's report on its test predictions: where it errs, how sure it is.

Per-class accuracy, the most-confused pairs, the gallery of confident mistakes,
ROC and precision-recall curves, and calibration: each a
:class:`~mnistlab.report.blocks.Section` built from the saved predictions
(numbers from :mod:`mnistlab.evaluate`) and the figures that
:func:`mnistlab.report.write_analysis_figures` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.evaluate import (
    average_precision,
    confused_pairs,
    negative_log_likelihood,
    per_class_accuracy,
    ranked_mistakes,
    reliability,
    roc_auc,
)
from mnistlab.report.blocks import Block, Paragraph, PngFigure, Section, Table
from mnistlab.report.sections import AREA_FORMAT, format_number

GALLERY_SIZE = 40  # misclassified images in the error gallery
GALLERY_TABLE_ROWS = 10  # of which listed in the table under it
CONFUSED_PAIRS = 10  # rows of the most-confused pairs table


def analysis_sections(
    figures: Mapping[str, Path],
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    calibration: Mapping[str, Any] | None = None,
    uncalibrated_note: str | None = None,
) -> list[Section]:
    """The sections on where the model errs, how sure it is and how well it ranks.

    Parameters
    ----------
    figures : from :func:`mnistlab.report.write_analysis_figures`.
    y_true, probs : the test labels and probabilities.
    class_names : K names.
    calibration : the run's ``calibration.json``, if any.
    uncalibrated_note : what to say when there is no calibration (default: how to
        calibrate).

    Returns
    -------
    Sections "Per-class accuracy", "Most-confused pairs", "Error gallery",
    "ROC curves", "Precision-recall curves" and "Calibration", in that order.
    """
    names = [str(c) for c in class_names]
    return [
        per_class_accuracy_section(figures["per_class_accuracy"], y_true, probs, names),
        confused_pairs_section(y_true, probs, names),
        error_gallery_section(figures["error_gallery"], y_true, probs, names),
        roc_section(figures["roc"], y_true, probs, names),
        Section(
            "Precision-recall curves",
            [
                PngFigure(
                    figures["pr"],
                    "Each class against the rest: precision against recall as the threshold "
                    "falls; the legend gives the average precision (area under the curve). The "
                    "right panel zooms into recall and precision above 0.8.",
                )
            ],
        ),
        calibration_section(figures["reliability"], y_true, probs, calibration, uncalibrated_note),
    ]


def per_class_accuracy_section(
    figure: Path, y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]
) -> Section:
    """The per-class accuracy figure, with the weakest class named in its caption."""
    acc = per_class_accuracy(y_true, probs)
    worst = int(np.nanargmin(acc))
    caption = (
        "Fraction of each class's test images predicted correctly (the per-class "
        f"recall); the weakest class, {names[worst]} ({acc[worst]:.2%}), is orange. "
        "The axis starts near the weakest class, not at zero."
    )
    return Section("Per-class accuracy", [PngFigure(figure, caption)])


def confused_pairs_section(y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> Section:
    """The pairs of classes mixed up most, both directions counted."""
    pairs = confused_pairs(y_true, probs, top=CONFUSED_PAIRS)
    if not pairs:
        note = Paragraph("No test image is misclassified, so no pair is confused.", "note")
        return Section("Most-confused pairs", [note])
    rows = [
        (
            f"{names[p['a']]} ↔ {names[p['b']]}",
            f"{p['a_as_b']:,}",
            f"{p['b_as_a']:,}",
            f"{p['total']:,}",
            f"{p['share']:.1%}",
        )
        for p in pairs
    ]
    table = Table(
        ["pair (a ↔ b)", "a predicted as b", "b predicted as a", "errors", "share of errors"],
        rows,
        numeric=[False, True, True, True, True],
    )
    note = Paragraph(
        f"The {len(pairs)} pairs of classes the model mixes up most, both directions "
        "counted, from the confusion matrix.",
        "note",
    )
    return Section("Most-confused pairs", [table, note])


def error_gallery_section(
    figure: Path, y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]
) -> Section:
    """The gallery of the most confident mistakes, and a table of the first of them."""
    mistakes = ranked_mistakes(y_true, probs)
    blocks: list[Block] = [
        PngFigure(
            figure,
            f"The {min(len(mistakes), GALLERY_SIZE)} misclassified test images the model was "
            f"most sure about, of {len(mistakes):,} mistakes in all. Each is titled true class "
            "→ predicted class and the probability given to the (wrong) prediction.",
        )
    ]
    rows = [
        (
            f"{m['index']:,}",
            names[m["true"]],
            names[m["pred"]],
            f"{m['confidence']:.2%}",
            f"{m['p_true']:.2%}",
        )
        for m in mistakes[:GALLERY_TABLE_ROWS]
    ]
    if rows:
        blocks += [
            Table(
                ["test image", "true", "predicted", "confidence", "p(true class)"],
                rows,
                numeric=[True, False, False, True, True],
            ),
            Paragraph(
                f"The first {len(rows)} of them; 'test image' is the index into the test set.",
                "note",
            ),
        ]
    return Section("Error gallery", blocks)


def roc_section(
    figure: Path, y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]
) -> Section:
    """The ROC curves, and ROC-AUC and average precision per class and averaged."""
    auc, ap = roc_auc(y_true, probs), average_precision(y_true, probs)

    def areas(title: str, a: Any, p: Any) -> tuple[str, str, str]:
        return title, format_number(a, AREA_FORMAT), format_number(p, AREA_FORMAT)

    rows = [areas(name, auc["per_class"][i], ap["per_class"][i]) for i, name in enumerate(names)]
    foot = [
        areas("micro average", auc["micro"], ap["micro"]),
        areas("macro average", auc["macro"], ap["macro"]),
    ]
    caption = (
        "Each class against the other nine: true-positive rate against false-positive "
        "rate as the probability threshold falls. The dashed black line pools every "
        "(image, class) decision (micro average). The right panel spreads out the "
        "low false-positive rates, where a good model's curves differ."
    )
    table = Table(
        ["class", "ROC-AUC", "average precision"], rows, foot=foot, numeric=[False, True, True]
    )
    return Section("ROC curves", [PngFigure(figure, caption), table])


def calibration_section(
    figure: Path,
    y_true: np.ndarray,
    probs: np.ndarray,
    calibration: Mapping[str, Any] | None = None,
    uncalibrated_note: str | None = None,
) -> Section:
    """The reliability diagram, the calibration numbers, and the temperature if fitted."""
    rel = reliability(y_true, probs)
    rows = [
        ("ECE (15 equal-width bins)", f"{rel.ece:.4f}"),
        ("negative log-likelihood", f"{negative_log_likelihood(y_true, probs):.4f}"),
        ("mean confidence", f"{float(probs.max(axis=1).mean()):.4f}"),
        ("accuracy", f"{float(np.mean(probs.argmax(axis=1) == y_true)):.4f}"),
    ]
    if calibration is not None:
        test = calibration.get("test", {})
        temperature = float(calibration["temperature"])
        rows += [
            ("temperature (fitted on validation)", f"{temperature:.4f}"),
            ("ECE after temperature scaling", format_number(test.get("ece_after"))),
            ("NLL after temperature scaling", format_number(test.get("nll_after"))),
        ]
        note = (
            f"Temperature scaling divides the logits by T = {temperature:.3f},"
            f" fitted on {calibration.get('n_fit', 0):,} validation images "
            "(calibration.json); predictions and accuracy do not change."
        )
    else:
        note = uncalibrated_note or (
            "Run 'mnistlab calibrate RUN' to fit a temperature on the validation split, "
            "then 'mnistlab report RUN' again to see its effect here."
        )
    caption = (
        "Left: test images binned by the probability of their predicted class; bars "
        "show how often the prediction was right. A calibrated model's bars reach the "
        "diagonal; bars below it mean over-confidence. Right: how many images fall in "
        "each bin (most are near 1)."
    )
    return Section(
        "Calibration",
        [PngFigure(figure, caption), Table(None, rows, cls="kv"), Paragraph(note, "note")],
    )
