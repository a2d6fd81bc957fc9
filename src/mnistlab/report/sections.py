"""The sections of a run's report that show the run itself: summary, metrics, figures, config.

Each function turns one part of the run (``metrics.json``, ``run.json``,
``config.json``, the figures written to ``figures/``) into a
:class:`~mnistlab.report.blocks.Section` of plain blocks; the template renders
them. The sections on the analysis of the predictions are in
:mod:`mnistlab.report.analysis_sections`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnistlab.data import Dataset
from mnistlab.report.blocks import Cards, Paragraph, PngFigure, Section, Table

# ROC-AUC and average precision with six decimals: a good convnet's are 0.99998.
AREA_FORMAT = "{:.6f}"


def format_number(value: Any, fmt: str = "{:.4f}") -> str:
    """``fmt.format(value)``, or a dash where the value is missing (None or NaN).

    run.json fields may be absent in runs from older versions: a dash, not "None".

    >>> format_number(0.98765), format_number(None), format_number(float("nan"), "{:,}")
    ('0.9877', '—', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt.format(value)


def summary_section(
    metrics: Mapping[str, Any],
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    dataset: Dataset,
) -> Section:
    """Headline numbers and the facts of the run (model, data, training time)."""
    cards = Cards(
        [
            ("test accuracy", f"{metrics['test_accuracy']:.2%}"),
            ("test errors", f"{metrics['n_errors']:,} of {metrics['n_test']:,}"),
            ("test loss (cross-entropy)", f"{metrics['test_loss']:.4f}"),
            ("parameters", format_number(metrics.get("params_count"), "{:,}")),
        ]
    )
    rows = [
        ("model", metrics["model"]),
        ("dataset", metrics["dataset"]),
        ("data source", _data_source(state.get("data_source") or dataset.source, dataset)),
        ("parameters", format_number(metrics.get("params_count"), "{:,}")),
        (
            "epochs run",
            f"{format_number(state.get('epochs_run'), '{}')} of {config.get('epochs', '—')}",
        ),
        ("best epoch", format_number(state.get("best_epoch"), "{}")),
        ("best validation accuracy", format_number(state.get("best_val_accuracy"), "{:.4f}")),
        ("training time", format_number(state.get("train_seconds"), "{:,.1f} s")),
        ("test accuracy", f"{metrics['test_accuracy']:.4f}"),
        ("test loss", f"{metrics['test_loss']:.4f}"),
        ("macro F1", f"{metrics['macro_avg']['f1']:.4f}"),
        *_ranking_rows(metrics),
        ("evaluation time", format_number(metrics.get("eval_seconds"), "{:,.2f} s")),
        ("run directory", metrics.get("run", "—")),
    ]
    versions = state.get("versions")
    if isinstance(versions, Mapping):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))))
    return Section("Summary", [cards, Table(None, rows, cls="kv")])


def _ranking_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    # metrics.json files written before ROC-AUC and ECE were added lack these keys.
    rows = []
    for key, title in (("roc_auc", "ROC-AUC"), ("average_precision", "average precision")):
        if isinstance(metrics.get(key), Mapping):
            rows.append(
                (
                    f"{title} (macro / micro)",
                    f"{format_number(metrics[key].get('macro'), AREA_FORMAT)} / "
                    f"{format_number(metrics[key].get('micro'), AREA_FORMAT)}",
                )
            )
    if metrics.get("ece") is not None:
        rows.append((f"ECE ({metrics.get('ece_bins', 15)} bins)", format_number(metrics["ece"])))
    return rows


def _data_source(source: str, dataset: Dataset) -> str:
    # "cache" alone says little: name the file (its arrays were digest-checked on load).
    return f"cache {dataset.cache_path}" if source == "cache" else source


def config_section(config: Mapping[str, Any]) -> Section:
    """Every setting of the run, as saved in ``config.json``."""
    rows = []
    for key, value in config.items():
        if isinstance(value, Mapping):  # model params: hidden=64,32 dropout=0.3
            value = "  ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "—"
        rows.append((key, _plain(value)))
    note = Paragraph("Saved as config.json; re-running it reproduces the run.", "note")
    return Section("Configuration", [Table(["setting", "value"], rows), note])


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def per_class_section(metrics: Mapping[str, Any]) -> Section:
    """Precision, recall, F1 and support per class, with macro and weighted averages."""
    rows = [
        (
            r["label"],
            f"{r['precision']:.4f}",
            f"{r['recall']:.4f}",
            f"{r['f1']:.4f}",
            f"{r['support']:,}",
        )
        for r in metrics["per_class"]
    ]
    foot = [
        (
            title,
            f"{metrics[key]['precision']:.4f}",
            f"{metrics[key]['recall']:.4f}",
            f"{metrics[key]['f1']:.4f}",
            f"{metrics['n_test']:,}",
        )
        for key, title in (("macro_avg", "macro average"), ("weighted_avg", "weighted average"))
    ]
    table = Table(
        ["class", "precision", "recall", "F1", "support"],
        rows,
        foot=foot,
        numeric=[False, True, True, True, True],
    )
    worst = min(metrics["per_class"], key=lambda r: r["f1"])
    note = Paragraph(
        "Precision: of the images predicted as a class, the fraction that are. Recall: of the "
        "images of a class, the fraction found. F1: their harmonic mean. "
        f"Weakest class: {worst['label']} (F1 {worst['f1']:.4f}).",
        "note",
    )
    return Section("Per-class metrics", [table, note])


def members_section(metrics: Mapping[str, Any]) -> Section | None:
    """An ensemble's members: each one's test accuracy, and how their errors overlap.

    None for a run that is not an ensemble (or was evaluated before members were recorded).
    """
    members = metrics.get("members")
    if not isinstance(members, Mapping):
        return None
    runs = members.get("runs") or [None] * members["n_members"]
    rows = [
        (i + 1, Path(r).name if r else "-", f"{acc:.2%}", f"{err:,}")
        for i, (r, acc, err) in enumerate(
            zip(runs, members["accuracy"], members["n_errors"], strict=True)
        )
    ]
    foot = [
        ("", "the ensemble", f"{metrics['test_accuracy']:.2%}", f"{metrics['n_errors']:,}"),
    ]
    table = Table(
        ["member", "run", "test accuracy", "errors"],
        rows,
        foot=foot,
        numeric=[True, False, True, True],
    )
    note = Paragraph(
        f"Of the {metrics['n_test']:,} test images, {members['wrong_in_all']:,} are wrong in every "
        f"member, {members['wrong_in_majority']:,} in a majority of them and "
        f"{members['wrong_in_any']:,} in at least one. Averaging the probabilities got "
        f"{members['fixed']:,} images right that some member gets wrong, and "
        f"{members['missed']:,} wrong that some member gets right. Images wrong in every "
        "member are beyond the reach of averaging: members that share their mistakes make an "
        "ensemble little better than they are.",
        "note",
    )
    return Section("Ensemble members", [table, note])


def figure_sections(figures: Mapping[str, Path], state: Mapping[str, Any]) -> list[Section]:
    """The sections that show the standard figures, with captions that say how to read them."""
    best, kept = state.get("best_epoch"), state.get("kept_epoch")
    if best is None and kept is not None:  # val_size 0
        caption = (
            "Loss and accuracy per epoch on the training batches, averaged over each epoch "
            "with dropout and augmentation active. The run trained on all training images, with "
            f"no validation split; the saved model has the last epoch's weights (epoch {kept})."
        )
    else:
        best_text = f" (epoch {best})" if best is not None else ""
        kept_text = (
            "the saved model has those weights"
            if kept is None or kept == best
            else f"the saved model has the last epoch's weights (epoch {kept})"
        )
        caption = (
            "Loss and accuracy per epoch on the training batches and the held-out "
            "validation split. Training numbers are averaged over each epoch with dropout "
            "and augmentation active, so they can sit below validation. The dotted line marks "
            f"the best validation accuracy{best_text}; {kept_text}."
        )
    history = (
        [Section("Training history", [PngFigure(figures["history"], caption)])]
        if "history" in figures
        else []
    )
    return [
        *history,
        Section(
            "Confusion matrix",
            [
                PngFigure(
                    figures["confusion"],
                    "Test images by true class (rows) and predicted class (columns); the "
                    "diagonal is correct. Colour is on a log scale so that rare confusions "
                    "stand out; blank cells are zero.",
                )
            ],
        ),
        Section(
            "Data",
            [
                PngFigure(
                    figures["class_distribution"],
                    "Images per class in the training set (including the validation split held "
                    "out from it) and the test set.",
                ),
                PngFigure(figures["samples"], "Random training images with their labels (seed 0)."),
            ],
        ),
    ]
