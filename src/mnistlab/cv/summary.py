"""The summary of a cross-validation: per-fold rows, mean +- std, and its files.

``summary.json`` (the record), ``summary.csv``, ``summary.md`` (the table as
Markdown) and ``cv.png`` (every fold's scores with the mean +- std band).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.progress import format_table

SUMMARY_FILES = ("summary.json", "summary.csv", "summary.md", "cv.png")

# Standard deviations over folds are sample standard deviations (ddof=1):
# the folds are a sample of the splits the model could have been trained on.
STD_DDOF = 1


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=STD_DDOF)) if len(v) > STD_DDOF else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
    }


SUMMARY_COLUMNS = (
    "fold",
    "n_train",
    "n_val",
    "n_heldout",
    "epochs_run",
    "best_epoch",
    "accuracy",
    "macro_f1",
    "loss",
    "train_seconds",
)


def summarise(
    records: Sequence[dict[str, Any]], *, config: TrainConfig, dataset: str, n_images: int
) -> dict[str, Any]:
    """Per-fold rows and mean/std/min/max of accuracy and macro-F1.

    Parameters
    ----------
    records : the ``fold_<i>.json`` records, in fold order.
    config : the recipe the folds trained with.
    dataset : dataset name.
    n_images : training images cross-validated.

    Returns
    -------
    The summary dict (``summary.json``).
    """
    return {
        "model": config.model,
        "dataset": dataset,
        "folds": len(records),
        "seed": config.seed,
        "n_images": n_images,
        "config": config.to_dict(),
        "per_fold": [{k: r[k] for k in SUMMARY_COLUMNS} for r in records],
        "accuracy": _stats([r["accuracy"] for r in records]),
        "macro_f1": _stats([r["macro_f1"] for r in records]),
        "std_ddof": STD_DDOF,
        "train_seconds": float(sum(r["train_seconds"] for r in records)),
    }


def format_summary(summary: dict[str, Any], markdown: bool = False) -> str:
    """The per-fold table and the mean +- std line, as text or a Markdown table.

    Parameters
    ----------
    summary : as returned by :func:`cross_validate`.
    markdown : a GitHub-flavoured Markdown table instead of aligned text.

    Returns
    -------
    Multi-line text (no trailing newline).
    """
    acc, f1 = summary["accuracy"], summary["macro_f1"]
    head = (
        f"{summary['folds']}-fold stratified cross-validation of {summary['model']} on "
        f"{summary['n_images']:,} {summary['dataset']} training images (seed {summary['seed']})"
    )
    cols = ["fold", "train", "val", "held-out", "epochs", "accuracy", "macro-F1", "seconds"]
    rows = [
        [
            str(r["fold"]),
            f"{r['n_train']:,}",
            f"{r['n_val']:,}",
            f"{r['n_heldout']:,}",
            str(r["epochs_run"]),
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            f"{r['train_seconds']:.1f}",
        ]
        for r in summary["per_fold"]
    ]
    mean = [
        "mean ± std",
        "",
        "",
        "",
        "",
        f"{acc['mean']:.4f} ± {acc['std']:.4f}",
        f"{f1['mean']:.4f} ± {f1['std']:.4f}",
        f"{summary['train_seconds']:.1f}",
    ]
    if markdown:
        return format_table(
            cols, [*rows, ["**" + mean[0] + "**", *mean[1:]]], markdown=True, title=head
        )
    table = format_table(cols, rows)
    lines = [head, "", table, "-" * max(map(len, table.splitlines()))]
    lines.append(
        f"accuracy  {acc['mean']:.4f} ± {acc['std']:.4f}  (min {acc['min']:.4f}, "
        f"max {acc['max']:.4f})"
    )
    lines.append(
        f"macro-F1  {f1['mean']:.4f} ± {f1['std']:.4f}  (min {f1['min']:.4f}, max {f1['max']:.4f})"
    )
    lines.append(f"(± is the sample standard deviation over the {summary['folds']} folds)")
    return "\n".join(lines)


def write_summary(summary: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write summary.json, summary.csv, summary.md and cv.png into ``out``.

    Parameters
    ----------
    summary : as returned by :func:`summarise`.
    out : the cross-validation directory.

    Returns
    -------
    The four paths by file name.
    """
    out = Path(out)
    paths = {name: out / name for name in SUMMARY_FILES}
    files.write_json(paths["summary.json"], summary)

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(SUMMARY_COLUMNS)
    for r in summary["per_fold"]:
        writer.writerow([r[k] for k in SUMMARY_COLUMNS])
    for stat in ("mean", "std"):
        row = [""] * len(SUMMARY_COLUMNS)
        row[0] = stat
        row[SUMMARY_COLUMNS.index("accuracy")] = summary["accuracy"][stat]
        row[SUMMARY_COLUMNS.index("macro_f1")] = summary["macro_f1"][stat]
        writer.writerow(row)
    files.write_text(paths["summary.csv"], buf.getvalue())
    files.write_text(paths["summary.md"], format_summary(summary, markdown=True) + "\n")
    plot_summary(summary, paths["cv.png"])
    return paths


def plot_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Accuracy and macro-F1 of every fold, with each metric's mean and +- 1 std band.

    Parameters
    ----------
    summary : as returned by :func:`summarise`.
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    from matplotlib.figure import Figure

    folds = [r["fold"] for r in summary["per_fold"]]
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    for key, label, color, shift in (
        ("accuracy", "accuracy", "#1f77b4", -0.08),
        ("macro_f1", "macro-F1", "#ff7f0e", 0.08),
    ):
        values = [r[key] for r in summary["per_fold"]]
        stats = summary[key]
        ax.plot(
            np.array(folds) + shift,
            values,
            "o",
            color=color,
            ms=7,
            label=f"{label}: {stats['mean']:.4f} ± {stats['std']:.4f}",
        )
        ax.axhline(stats["mean"], color=color, lw=1.2)
        ax.axhspan(
            stats["mean"] - stats["std"],
            stats["mean"] + stats["std"],
            color=color,
            alpha=0.12,
            lw=0,
        )
    ax.set_xticks(folds)
    ax.set_xlabel("held-out fold")
    ax.set_ylabel("score on the held-out fold")
    ax.set_title(
        f"{summary['folds']}-fold cross-validation of {summary['model']} "
        f"({summary['n_images']:,} images): mean ± std"
    )
    ax.grid(alpha=0.3)
    # Below the axes, so it never hides a fold.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    return files.save_figure(fig, path)
