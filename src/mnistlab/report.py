"""Report: the figures and one self-contained HTML page for an evaluated run.

    metrics.json (from evaluate), run.json, config.json, history.csv, the dataset
    -> figures/*.png (Matplotlib + Seaborn, no display needed)
    -> report.html: one file that opens offline, images embedded as data: URIs

Besides the training history, confusion matrix and data, the page shows the
analysis of the saved test predictions (``predictions.npz``, numbers from
:mod:`mnistlab.analysis`): per-class accuracy, most-confused pairs, a gallery
of the most confident mistakes, ROC and precision-recall curves, and a
reliability diagram (with the temperature of ``calibration.json`` if present).

The page is a list of :class:`Section` objects rendered in order, so a new
analysis is one more section::

    extra = Section("Calibration", figure_html(png_path, "Reliability diagram"))
    write_report("latest", extra_sections=[extra])

Every piece of text that reaches the page goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # render to files only; must come before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mnistlab import __version__, files  # noqa: E402
from mnistlab.analysis import (  # noqa: E402
    Curve,
    Reliability,
    apply_temperature,
    average_precision,
    confused_pairs,
    load_calibration,
    negative_log_likelihood,
    per_class_accuracy,
    pr_curves,
    ranked_mistakes,
    reliability,
    roc_auc,
    roc_curves,
)
from mnistlab.config import TrainConfig  # noqa: E402
from mnistlab.data import Dataset  # noqa: E402
from mnistlab.errors import MnistlabError  # noqa: E402
from mnistlab.evaluate import load_predictions, run_dataset  # noqa: E402
from mnistlab.runs import RunDir  # noqa: E402

# Screen resolution: sharp in a browser, small enough that the page stays ~1 MB.
DPI = 110

# File names inside run.figures_dir.
FIGURE_FILES = {
    "history": "history.png",
    "confusion": "confusion_matrix.png",
    "class_distribution": "class_distribution.png",
    "samples": "samples.png",
    # the analysis figures (write_analysis_figures)
    "per_class_accuracy": "per_class_accuracy.png",
    "error_gallery": "error_gallery.png",
    "roc": "roc_curves.png",
    "pr": "pr_curves.png",
    "reliability": "reliability.png",
}

GALLERY_SIZE = 40  # misclassified images in the error gallery
GALLERY_TABLE_ROWS = 10  # of which listed in the table under it
CONFUSED_PAIRS = 10  # rows of the most-confused pairs table
# ROC-AUC and average precision with six decimals: a good convnet's are 0.99998.
AREA_FORMAT = "{:.6f}"

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"  # train vs validation / test, in every plot


# -- figures -----------------------------------------------------------------------------


@contextmanager
def _style(style: str = "whitegrid") -> Iterator[None]:
    # A local style: importing mnistlab must not change a user's global Matplotlib settings.
    rc = {**sns.axes_style(style), **sns.plotting_context("notebook", font_scale=0.9)}
    with plt.rc_context(rc):
        yield


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        with files.atomic_path(path, suffix=".png") as tmp:
            # No "Software" tag: the same data gives the same bytes across Matplotlib versions.
            fig.savefig(
                tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}
            )
    finally:
        plt.close(fig)  # figures are not garbage-collected while pyplot tracks them
    return path


def plot_class_distribution(dataset: Dataset, path: str | Path) -> Path:
    """Bar chart of images per class, training and test sets side by side.

    Parameters
    ----------
    dataset : a loaded dataset (``y_train``, ``y_test``, ``class_names``).
    path : PNG file to write (parent directories are created).

    Returns
    -------
    ``path`` as a Path.

    Examples
    --------
    >>> plot_class_distribution(load_dataset("mnist"), "figures/classes.png")
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
    with _style():
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.barplot(
            counts, x="class", y="images", hue="set", palette=[TRAIN_COLOR, VAL_COLOR], ax=ax
        )
        for bars in ax.containers:
            ax.bar_label(bars, fmt="{:,.0f}", fontsize=7, padding=2)
        ax.set_title(f"{dataset.name}: images per class")
        ax.set_xlabel("class")
        ax.set_ylabel("images")
        ax.margins(y=0.1)  # room for the count labels above the tallest bar
        ax.legend(title=None, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if max(len(n) for n in names) > 3:  # Fashion-MNIST's "Ankle boot" and friends
            _slant_xticklabels(ax, 30)
    return _save(fig, path)


def _slant_xticklabels(ax: plt.Axes, degrees: float) -> None:
    # Anchored at the label's right end so each slanted label ends under its own tick.
    plt.setp(ax.get_xticklabels(), rotation=degrees, ha="right", rotation_mode="anchor")


def plot_samples(dataset: Dataset, path: str | Path, n: int = 40, seed: int = 0) -> Path:
    """A grid of ``n`` random training images, each titled with its label.

    Parameters
    ----------
    dataset : a loaded dataset (``x_train`` uint8 (N, 28, 28), ``y_train``, ``class_names``).
    path : PNG file to write.
    n : number of images, 1 to the training-set size; 10 per row.
    seed : which images (the same seed draws the same images).

    Returns
    -------
    ``path`` as a Path.
    """
    if not 1 <= n <= len(dataset.x_train):
        raise MnistlabError(f"invalid n={n!r}: expected 1 to {len(dataset.x_train)} images")
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(dataset.x_train), size=n, replace=False))
    cols = min(10, n)
    rows = math.ceil(n / cols)
    with _style("white"):
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0, rows * 1.25), squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, i in zip(axes.flat, index, strict=False):
            # gray_r: dark ink on white paper, as the digits were written.
            ax.imshow(dataset.x_train[i], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(str(dataset.class_names[dataset.y_train[i]]), fontsize=9, pad=2)
        fig.suptitle(f"{dataset.name}: {n} random training images with their labels", y=1.0)
        fig.tight_layout(pad=0.3)
    return _save(fig, path)


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def plot_history(history_csv_path: str | Path, path: str | Path) -> Path:
    """Loss and accuracy per epoch, training vs validation, in two panels.

    Parameters
    ----------
    history_csv_path : a run's ``history.csv`` (columns epoch, loss, accuracy,
        val_loss, val_accuracy, ...).
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path. A dotted line marks the epoch with the best validation
    accuracy (a run with ``keep="best"`` kept its weights). A run trained
    without a validation set (``val_size=0``) has training curves alone.
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
    validated = history["val_accuracy"].notna().any()
    best = history.loc[history["val_accuracy"].idxmax()] if validated else None
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
            ax.plot(
                history["epoch"], history[metric], "o-", color=TRAIN_COLOR, ms=4, label="training"
            )
            if best is not None:
                ax.plot(
                    history["epoch"],
                    history[f"val_{metric}"],
                    "o-",
                    color=VAL_COLOR,
                    ms=4,
                    label="validation",
                )
                ax.axvline(
                    best["epoch"],
                    color="grey",
                    ls=":",
                    lw=1.2,
                    label=f"best epoch ({int(best['epoch'])})",
                )
            ax.set_title(title if best is not None else f"{title} (no validation set)")
            ax.set_xlabel("epoch")
            # Whole epochs only; the half-epoch margins keep a one-epoch run from
            # collapsing the axis to a sliver with fractional ticks.
            ax.set_xlim(0.5, history["epoch"].max() + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes[0].set_ylabel("cross-entropy")
        axes[1].set_ylabel("fraction correct")
        axes[1].legend(loc="lower right")
        fig.tight_layout()
    return _save(fig, path)


def plot_confusion(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Annotated heatmap of the test-set confusion matrix (counts).

    Colours are on a log scale so a handful of errors stands out next to
    a diagonal of ~1,000; cells with no images are left blank.

    Parameters
    ----------
    metrics : a metrics dict (``confusion_matrix``, ``class_names``, ``test_accuracy``).
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    cm = np.asarray(metrics["confusion_matrix"], dtype=int)
    names = [str(c) for c in metrics["class_names"]]
    with _style("white"):
        fig, ax = plt.subplots(figsize=(8, 6.6))
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
            _slant_xticklabels(ax, 45)
        ax.set_title(
            f"confusion matrix: {int(cm.sum()) - int(np.trace(cm)):,} errors in "
            f"{int(cm.sum()):,} test images ({metrics['test_accuracy']:.2%} correct)"
        )
        # The mask leaves zero cells uncoloured; a frame keeps the matrix readable as a grid.
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color("#cccccc")
    return _save(fig, path)


# -- HTML building blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One section of the report page.

    Attributes
    ----------
    title : heading text (escaped when rendered).
    html : the body, already HTML: build it with :func:`html_table`,
        :func:`figure_html` and :func:`paragraph`, or escape text yourself.
    anchor : ``id`` for the table of contents; derived from the title if empty.
    """

    title: str
    html: str
    anchor: str = ""

    @property
    def id(self) -> str:
        return self.anchor or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def paragraph(text: str, cls: str = "") -> str:
    """``<p>`` with escaped text."""
    attr = f' class="{html.escape(cls)}"' if cls else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def html_table(
    columns: Sequence[str] | None,
    rows: Sequence[Sequence[Any]],
    *,
    foot: Sequence[Sequence[Any]] = (),
    numeric: Sequence[bool] | None = None,
    cls: str = "",
) -> str:
    """An HTML table of escaped cells.

    Parameters
    ----------
    columns : header cells; None for a table without a header row.
    rows : body rows; each cell is converted with ``str`` then escaped.
    foot : summary rows (e.g. averages), shown after the body in bold.
    numeric : per column, right-align it (numbers line up on the decimal point).
    cls : CSS class of the table (``"kv"``: a key/value table).

    Returns
    -------
    The ``<table>`` element as a string.
    """
    width = len(columns) if columns is not None else len(rows[0]) if rows else 0
    numeric = list(numeric) if numeric is not None else [False] * width

    def tr(cells: Sequence[Any], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=num' if num else ''}>{html.escape(str(c))}</{tag}>"
                for c, num in zip(cells, numeric, strict=True)
            )
            + "</tr>"
        )

    parts = [f'<table class="{html.escape(cls)}">' if cls else "<table>"]
    if columns is not None:
        parts += ["<thead>", tr(columns, "th"), "</thead>"]
    parts.append("<tbody>")
    parts += [tr(r, "td") for r in rows]
    parts.append("</tbody>")
    if foot:
        parts += ["<tfoot>", *(tr(r, "td") for r in foot), "</tfoot>"]
    parts.append("</table>")
    return "\n".join(parts)


def figure_html(png_path: str | Path, caption: str, alt: str = "") -> str:
    """A ``<figure>`` with the PNG embedded as a base64 ``data:`` URI and a caption.

    Embedding keeps the report one file that opens offline and can be mailed.
    """
    png = Path(png_path).read_bytes()
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt or caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _cards(items: Sequence[tuple[str, str]]) -> str:
    # Headline numbers in large type above the summary table.
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{html.escape(v)}</div>'
            f'<div class="label">{html.escape(k)}</div></div>'
            for k, v in items
        )
        + "</div>"
    )


CSS = """
:root { --fg: #1d2430; --muted: #5b6575; --line: #dde2ea; --bg-alt: #f6f8fb; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
.sub, figcaption, footer, .note { color: var(--muted); }
nav { margin: 16px 0 8px; padding: 8px 0; border-top: 1px solid var(--line);
  border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; white-space: nowrap; }
section { margin-top: 32px; }
h2 { font-size: 19px; margin: 0 0 12px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
table { border-collapse: collapse; margin: 8px 0 4px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 14px 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
tfoot td { font-weight: 600; border-top: 2px solid var(--line); }
.num { text-align: right; }
table.kv td:first-child { width: 220px; color: var(--muted); }
td code, td.code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 16px; }
.card { flex: 1 1 150px; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
figcaption { font-size: 14px; margin-top: 6px; }
footer { margin-top: 40px; font-size: 13px; border-top: 1px solid var(--line); padding-top: 8px; }
"""


def render_page(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """The whole HTML document: header, table of contents, sections, footer.

    Parameters
    ----------
    title : page title and ``<h1>`` (escaped).
    sections : rendered in order; each gets an entry in the table of contents.
    subtitle : a line under the title (escaped).

    Returns
    -------
    A complete, self-contained HTML5 document (inline CSS, no scripts, no external links).
    """
    # Newline-separated: the links need a break opportunity between them to wrap.
    nav = "\n".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{html.escape(s.id)}">\n<h2>{html.escape(s.title)}</h2>\n{s.html}\n</section>'
        for s in sections
    )
    generated = time.strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(subtitle)}</p>
</header>
<nav>{nav}</nav>
{body}
<footer>Generated by mnistlab {html.escape(__version__)} on {html.escape(generated)}.</footer>
</main>
</body>
</html>
"""


# -- the report's sections --------------------------------------------------------------------


def _num(value: Any, fmt: str = "{:.4f}") -> str:
    # run.json fields may be absent in runs from older versions: show a dash, not "None".
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
    cards = _cards(
        [
            ("test accuracy", f"{metrics['test_accuracy']:.2%}"),
            ("test errors", f"{metrics['n_errors']:,} of {metrics['n_test']:,}"),
            ("test loss (cross-entropy)", f"{metrics['test_loss']:.4f}"),
            ("parameters", _num(metrics.get("params_count"), "{:,}")),
        ]
    )
    rows = [
        ("model", metrics["model"]),
        ("dataset", metrics["dataset"]),
        ("data source", _data_source(state.get("data_source") or dataset.source, dataset)),
        ("parameters", _num(metrics.get("params_count"), "{:,}")),
        ("epochs run", f"{_num(state.get('epochs_run'), '{}')} of {config.get('epochs', '—')}"),
        ("best epoch", _num(state.get("best_epoch"), "{}")),
        ("best validation accuracy", _num(state.get("best_val_accuracy"), "{:.4f}")),
        ("training time", _num(state.get("train_seconds"), "{:,.1f} s")),
        ("test accuracy", f"{metrics['test_accuracy']:.4f}"),
        ("test loss", f"{metrics['test_loss']:.4f}"),
        ("macro F1", f"{metrics['macro_avg']['f1']:.4f}"),
        *_ranking_rows(metrics),
        ("evaluation time", _num(metrics.get("eval_seconds"), "{:,.2f} s")),
        ("run directory", metrics.get("run", "—")),
    ]
    versions = state.get("versions")
    if isinstance(versions, Mapping):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))))
    return Section("Summary", cards + html_table(None, rows, cls="kv"))


def _ranking_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    # metrics.json files written before ROC-AUC and ECE were added lack these keys.
    rows = []
    for key, title in (("roc_auc", "ROC-AUC"), ("average_precision", "average precision")):
        if isinstance(metrics.get(key), Mapping):
            rows.append(
                (
                    f"{title} (macro / micro)",
                    f"{_num(metrics[key].get('macro'), AREA_FORMAT)} / "
                    f"{_num(metrics[key].get('micro'), AREA_FORMAT)}",
                )
            )
    if metrics.get("ece") is not None:
        rows.append((f"ECE ({metrics.get('ece_bins', 15)} bins)", _num(metrics["ece"])))
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
    note = paragraph("Saved as config.json; re-running it reproduces the run.", "note")
    return Section("Configuration", html_table(["setting", "value"], rows) + note)


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
    table = html_table(
        ["class", "precision", "recall", "F1", "support"],
        rows,
        foot=foot,
        numeric=[False, True, True, True, True],
    )
    worst = min(metrics["per_class"], key=lambda r: r["f1"])
    note = paragraph(
        "Precision: of the images predicted as a class, the fraction that are. Recall: of the "
        "images of a class, the fraction found. F1: their harmonic mean. "
        f"Weakest class: {worst['label']} (F1 {worst['f1']:.4f}).",
        "note",
    )
    return Section("Per-class metrics", table + note)


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
    table = html_table(
        ["member", "run", "test accuracy", "errors"],
        rows,
        foot=foot,
        numeric=[True, False, True, True],
    )
    note = paragraph(
        f"Of the {metrics['n_test']:,} test images, {members['wrong_in_all']:,} are wrong in every "
        f"member, {members['wrong_in_majority']:,} in a majority of them and "
        f"{members['wrong_in_any']:,} in at least one. Averaging the probabilities got "
        f"{members['fixed']:,} images right that some member gets wrong, and "
        f"{members['missed']:,} wrong that some member gets right. Images wrong in every "
        "member are beyond the reach of averaging: members that share their mistakes make an "
        "ensemble little better than they are.",
        "note",
    )
    return Section("Ensemble members", table + note)


def write_figures(run: RunDir, metrics: Mapping[str, Any], dataset: Dataset) -> dict[str, Path]:
    """Write the four standard figures to ``run.figures_dir``; return them by name."""
    out = run.figures_dir
    # An ensemble run was not trained itself, so it has no history.csv.
    history = (
        {"history": plot_history(run.history_path, out / FIGURE_FILES["history"])}
        if run.history_path.is_file()
        else {}
    )
    return {
        **history,
        "confusion": plot_confusion(metrics, out / FIGURE_FILES["confusion"]),
        "class_distribution": plot_class_distribution(
            dataset, out / FIGURE_FILES["class_distribution"]
        ),
        "samples": plot_samples(dataset, out / FIGURE_FILES["samples"]),
    }


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
        [Section("Training history", figure_html(figures["history"], caption))]
        if "history" in figures
        else []
    )
    return [
        *history,
        Section(
            "Confusion matrix",
            figure_html(
                figures["confusion"],
                "Test images by true class (rows) and predicted class (columns); the diagonal "
                "is correct. Colour is on a log scale so that rare confusions stand out; blank "
                "cells are zero.",
            ),
        ),
        Section(
            "Data",
            figure_html(
                figures["class_distribution"],
                "Images per class in the training set (including the validation split held out "
                "from it) and the test set.",
            )
            + figure_html(
                figures["samples"],
                "Random training images with their labels (seed 0).",
            ),
        ),
    ]


# -- analysis: per-class accuracy, confusions, mistakes, ROC/PR, calibration --------------------


def plot_per_class_accuracy(
    accuracy: Sequence[float], class_names: Sequence[str], overall: float, path: str | Path
) -> Path:
    """Bar chart of the fraction of each class's test images predicted correctly.

    Parameters
    ----------
    accuracy : K per-class accuracies (:func:`mnistlab.analysis.per_class_accuracy`).
    class_names : K names.
    overall : overall test accuracy, drawn as a dashed line.
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path. The y-axis starts near the weakest class, not at 0
    (the caption says so), so that differences of a few tenths of a percent show.
    """
    acc = np.asarray(accuracy, dtype=float)
    names = [str(c) for c in class_names]
    lowest = float(np.nanmin(acc)) if np.any(np.isfinite(acc)) else 0.0
    bottom = max(0.0, 1.0 - 2.0 * (1.0 - lowest) - 0.005)
    with _style():
        fig, ax = plt.subplots(figsize=(9, 3.8))
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
            _slant_xticklabels(ax, 30)
    return _save(fig, path)


def plot_error_gallery(
    mistakes: Sequence[Mapping[str, Any]],
    images: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """A grid of misclassified images, each titled true -> predicted and the confidence.

    Parameters
    ----------
    mistakes : :func:`mnistlab.analysis.ranked_mistakes` records, in the order to show.
    images : uint8 (N, 28, 28), the evaluated images that ``index`` refers to.
    class_names : K names.
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    names = [str(c) for c in class_names]
    n = len(mistakes)
    cols = 10
    rows = max(1, math.ceil(n / cols))
    with _style("white"):
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.05, rows * 1.45), squeeze=False)
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
    return _save(fig, path)


def _curve_colors(k: int) -> list[Any]:
    return sns.color_palette("tab10" if k <= 10 else "husl", k)


def plot_roc(curves: Sequence[Curve], path: str | Path) -> Path:
    """One-vs-rest ROC curves: full view, and the false-positive rate on a log scale.

    Parameters
    ----------
    curves : :func:`mnistlab.analysis.roc_curves` (per class, then micro).
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    per_class, micro = curves[:-1], curves[-1]
    drawn = [c for c in per_class if c.area is not None]
    positive = np.concatenate([c.x[c.x > 0] for c in [*drawn, micro]] or [np.array([1e-4])])
    x_low = max(float(positive.min()) if positive.size else 1e-4, 1e-5)
    y_low = min(float(np.interp(x_low, c.x, c.y)) for c in [*drawn, micro])
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        for ax, log in zip(axes, (False, True), strict=True):
            for curve, color in zip(per_class, _curve_colors(len(per_class)), strict=True):
                if curve.area is not None:
                    ax.plot(
                        curve.x,
                        curve.y,
                        color=color,
                        lw=1.2,
                        label=f"{curve.label}: {curve.area:.6f}",
                    )
            ax.plot(micro.x, micro.y, "k--", lw=1.4, label=f"micro: {micro.area:.6f}")
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
    return _save(fig, path)


def plot_pr(curves: Sequence[Curve], path: str | Path) -> Path:
    """One-vs-rest precision-recall curves: full view, and the top-right corner.

    Parameters
    ----------
    curves : :func:`mnistlab.analysis.pr_curves` (per class, then micro).
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    per_class, micro = curves[:-1], curves[-1]
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        for ax, zoom in zip(axes, (False, True), strict=True):
            for curve, color in zip(per_class, _curve_colors(len(per_class)), strict=True):
                if curve.area is not None:
                    ax.plot(
                        curve.x,
                        curve.y,
                        color=color,
                        lw=1.2,
                        label=f"{curve.label}: {curve.area:.6f}",
                    )
            ax.plot(micro.x, micro.y, "k--", lw=1.4, label=f"micro: {micro.area:.6f}")
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
    return _save(fig, path)


def plot_reliability(
    before: Reliability,
    path: str | Path,
    after: Reliability | None = None,
    temperature: float | None = None,
) -> Path:
    """Reliability diagram (accuracy against confidence per bin) and the images per bin.

    Parameters
    ----------
    before : :func:`mnistlab.analysis.reliability` of the model's probabilities.
    path : PNG file to write.
    after : the same after temperature scaling, drawn over it when given.
    temperature : the temperature of ``after``, for the legend.

    Returns
    -------
    ``path`` as a Path.
    """
    width = np.diff(before.edges)
    left = before.edges[:-1]
    used = before.count > 0
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
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
    return _save(fig, path)


def write_analysis_figures(
    run: RunDir,
    y_true: np.ndarray,
    probs: np.ndarray,
    dataset: Dataset,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the per-class accuracy, error gallery, ROC, PR and reliability figures.

    Parameters
    ----------
    run : the run whose ``figures/`` to write to.
    y_true, probs : the test labels and probabilities (``predictions.npz``).
    dataset : the run's dataset (the gallery shows its test images).
    calibration : the run's ``calibration.json``, if any (drawn on the reliability diagram).

    Returns
    -------
    The figure paths by name (keys of :data:`FIGURE_FILES`).
    """
    out = run.figures_dir
    names = [str(c) for c in dataset.class_names]
    after = temperature = None
    if calibration is not None:
        temperature = float(calibration["temperature"])
        after = reliability(y_true, apply_temperature(probs, temperature))
    return {
        "per_class_accuracy": plot_per_class_accuracy(
            per_class_accuracy(y_true, probs),
            names,
            float(np.mean(probs.argmax(axis=1) == y_true)),
            out / FIGURE_FILES["per_class_accuracy"],
        ),
        "error_gallery": plot_error_gallery(
            ranked_mistakes(y_true, probs, limit=GALLERY_SIZE),
            dataset.x_test,
            names,
            out / FIGURE_FILES["error_gallery"],
        ),
        "roc": plot_roc(roc_curves(y_true, probs, names), out / FIGURE_FILES["roc"]),
        "pr": plot_pr(pr_curves(y_true, probs, names), out / FIGURE_FILES["pr"]),
        "reliability": plot_reliability(
            reliability(y_true, probs), out / FIGURE_FILES["reliability"], after, temperature
        ),
    }


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
    figures : from :func:`write_analysis_figures`.
    y_true, probs : the test labels and probabilities.
    class_names : K names.
    calibration : the run's ``calibration.json``, if any.

    Returns
    -------
    Sections "Per-class accuracy", "Most-confused pairs", "Error gallery",
    "ROC curves", "Precision-recall curves" and "Calibration", in that order.
    """
    names = [str(c) for c in class_names]
    acc = per_class_accuracy(y_true, probs)
    worst = int(np.nanargmin(acc))
    sections = [
        Section(
            "Per-class accuracy",
            figure_html(
                figures["per_class_accuracy"],
                "Fraction of each class's test images predicted correctly (the per-class "
                f"recall); the weakest class, {names[worst]} ({acc[worst]:.2%}), is orange. "
                "The axis starts near the weakest class, not at zero.",
            ),
        )
    ]

    pairs = confused_pairs(y_true, probs, top=CONFUSED_PAIRS)
    if pairs:
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
        body = html_table(
            ["pair (a ↔ b)", "a predicted as b", "b predicted as a", "errors", "share of errors"],
            rows,
            numeric=[False, True, True, True, True],
        ) + paragraph(
            f"The {len(pairs)} pairs of classes the model mixes up most, both directions "
            "counted, from the confusion matrix.",
            "note",
        )
    else:
        body = paragraph("No test image is misclassified, so no pair is confused.", "note")
    sections.append(Section("Most-confused pairs", body))

    mistakes = ranked_mistakes(y_true, probs)
    table_rows = [
        (
            f"{m['index']:,}",
            names[m["true"]],
            names[m["pred"]],
            f"{m['confidence']:.2%}",
            f"{m['p_true']:.2%}",
        )
        for m in mistakes[:GALLERY_TABLE_ROWS]
    ]
    gallery = figure_html(
        figures["error_gallery"],
        f"The {min(len(mistakes), GALLERY_SIZE)} misclassified test images the model was most "
        f"sure about, of {len(mistakes):,} mistakes in all. Each is titled true class → "
        "predicted class and the probability given to the (wrong) prediction.",
    )
    if table_rows:
        gallery += html_table(
            ["test image", "true", "predicted", "confidence", "p(true class)"],
            table_rows,
            numeric=[True, False, False, True, True],
        ) + paragraph(
            f"The first {len(table_rows)} of them; 'test image' is the index into the test set.",
            "note",
        )
    sections.append(Section("Error gallery", gallery))

    auc, ap = roc_auc(y_true, probs), average_precision(y_true, probs)
    area_rows = [
        (names[i], _num(auc["per_class"][i], AREA_FORMAT), _num(ap["per_class"][i], AREA_FORMAT))
        for i in range(len(names))
    ]
    area_foot = [
        ("micro average", _num(auc["micro"], AREA_FORMAT), _num(ap["micro"], AREA_FORMAT)),
        ("macro average", _num(auc["macro"], AREA_FORMAT), _num(ap["macro"], AREA_FORMAT)),
    ]
    sections.append(
        Section(
            "ROC curves",
            figure_html(
                figures["roc"],
                "Each class against the other nine: true-positive rate against false-positive "
                "rate as the probability threshold falls. The dashed black line pools every "
                "(image, class) decision (micro average). The right panel spreads out the "
                "low false-positive rates, where a good model's curves differ.",
            )
            + html_table(
                ["class", "ROC-AUC", "average precision"],
                area_rows,
                foot=area_foot,
                numeric=[False, True, True],
            ),
        )
    )
    sections.append(
        Section(
            "Precision-recall curves",
            figure_html(
                figures["pr"],
                "Each class against the rest: precision against recall as the threshold falls; "
                "the legend gives the average precision (area under the curve). The right panel "
                "zooms into recall and precision above 0.8.",
            ),
        )
    )

    rel = reliability(y_true, probs)
    calib_rows = [
        ("ECE (15 equal-width bins)", f"{rel.ece:.4f}"),
        ("negative log-likelihood", f"{negative_log_likelihood(y_true, probs):.4f}"),
        ("mean confidence", f"{float(probs.max(axis=1).mean()):.4f}"),
        ("accuracy", f"{float(np.mean(probs.argmax(axis=1) == y_true)):.4f}"),
    ]
    if calibration is not None:
        test = calibration.get("test", {})
        calib_rows += [
            ("temperature (fitted on validation)", f"{float(calibration['temperature']):.4f}"),
            ("ECE after temperature scaling", _num(test.get("ece_after"))),
            ("NLL after temperature scaling", _num(test.get("nll_after"))),
        ]
        note = (
            f"Temperature scaling divides the logits by T = "
            f"{float(calibration['temperature']):.3f},"
            f" fitted on {calibration.get('n_fit', 0):,} validation images "
            "(calibration.json); predictions and accuracy do not change."
        )
    else:
        note = uncalibrated_note or (
            "Run 'mnistlab calibrate RUN' to fit a temperature on the validation split, "
            "then 'mnistlab report RUN' again to see its effect here."
        )
    sections.append(
        Section(
            "Calibration",
            figure_html(
                figures["reliability"],
                "Left: test images binned by the probability of their predicted class; bars "
                "show how often the prediction was right. A calibrated model's bars reach the "
                "diagonal; bars below it mean over-confidence. Right: how many images fall in "
                "each bin (most are near 1).",
            )
            + html_table(None, calib_rows, cls="kv")
            + paragraph(note, "note"),
        )
    )
    return sections


def _uncalibrated_note(run: RunDir, config: TrainConfig) -> str | None:
    # What to say instead of "run mnistlab calibrate" where calibrate would refuse.
    if config.val_size == 0:
        return (
            "This run trained on all training images: no validation split is left to fit a "
            "temperature on (mnistlab calibrate needs a run trained with --val-size > 0)."
        )
    if run.is_ensemble():
        return (
            "Run 'mnistlab calibrate RUN' to fit a temperature on the validation split; for "
            "an ensemble only when its members share seed and val_size (the same held-out "
            "images), otherwise calibrate the members."
        )
    return None


def write_report(
    run: RunDir | str | Path,
    *,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    extra_sections: Sequence[Section] = (),
) -> Path:
    """Write the figures and ``report.html`` for an evaluated run.

    Parameters
    ----------
    run : a :class:`RunDir`, a run directory path, a run name inside
        ``runs_dir``, or ``"latest"``.
    runs_dir : where run names are looked up.
    dataset : the run's dataset if already loaded (for the data figures);
        loaded from the cache if None.
    extra_sections : more sections appended after the standard ones.

    Returns
    -------
    Path of ``report.html``: one self-contained file (figures embedded, inline
    CSS, no scripts or external links). The PNGs are also in ``figures/``.

    Examples
    --------
    >>> write_report("latest")
    PosixPath('.../runs/20250101-120000-fnn-s0/report.html')
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    if not run.metrics_path.is_file():
        raise MnistlabError(
            f"run {run.path} has no metrics.json; run 'mnistlab evaluate {run.path}' first"
        )
    metrics = run.metrics()
    config = run.config()
    state = run.state()
    dataset = run_dataset(run, dataset)

    y_true, probs = load_predictions(run)
    if len(y_true) != len(dataset.y_test) or not np.array_equal(y_true, dataset.y_test):
        if run.is_cv_fold():
            raise MnistlabError(
                f"run {run.name} is a cross-validation fold: its predictions are for its "
                "held-out fold, not the test set; see the cross-validation's summary.md and "
                "cv.png in its --out directory"
            )
        raise MnistlabError(
            f"the predictions of run {run.name} are not for the {dataset.name} test set; "
            f"run 'mnistlab evaluate {run.path}' again"
        )
    calibration = load_calibration(run)

    figures = write_figures(run, metrics, dataset)
    analysis_figures = write_analysis_figures(run, y_true, probs, dataset, calibration)
    sections = [
        summary_section(metrics, state, config.to_dict(), dataset),
        per_class_section(metrics),
        *[s for s in (members_section(metrics),) if s is not None],
        *figure_sections(figures, state),
        *analysis_sections(
            analysis_figures,
            y_true,
            probs,
            dataset.class_names,
            calibration,
            _uncalibrated_note(run, config),
        ),
        config_section(config.to_dict()),
        *extra_sections,
    ]
    title = (
        f"{metrics['model']} on {metrics['dataset']}: {metrics['test_accuracy']:.2%} test accuracy"
    )
    page = render_page(title, sections, subtitle=f"run {run.name}")
    files.write_text(run.report_path, page)
    return run.report_path
