"""``write_report``: a run's figures in ``figures/`` and its one-file ``report.html``.

    metrics.json, run.json, config.json, history.csv, predictions.npz, the dataset
    -> figures/*.png (:func:`write_figures`, :func:`write_analysis_figures`)
    -> sections (:mod:`~mnistlab.report.sections`, :mod:`~mnistlab.report.analysis_sections`)
    -> report.html from the template ``report/report.html`` (:func:`render_page`)

The page opens offline: inline CSS, figures embedded as ``data:`` URIs, no
scripts or external links.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import __version__, files
from mnistlab.config import RunConfig, TrainConfig
from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import (
    apply_temperature,
    load_calibration,
    load_predictions,
    per_class_accuracy,
    pr_curves,
    ranked_mistakes,
    reliability,
    roc_curves,
    run_dataset,
)
from mnistlab.report.analysis_figures import (
    plot_error_gallery,
    plot_per_class_accuracy,
    plot_pr,
    plot_reliability,
    plot_roc,
)
from mnistlab.report.analysis_sections import GALLERY_SIZE, analysis_sections
from mnistlab.report.blocks import Section
from mnistlab.report.figures import (
    plot_class_distribution,
    plot_confusion,
    plot_history,
    plot_samples,
)
from mnistlab.report.read_section import read_section
from mnistlab.report.robustness_section import robustness_section
from mnistlab.report.sections import (
    config_section,
    figure_sections,
    members_section,
    per_class_section,
    summary_section,
)
from mnistlab.report.trust_section import trust_section
from mnistlab.runs import RunDir
from mnistlab.templating import render

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


def render_page(
    title: str,
    sections: Sequence[Section],
    subtitle: str = "",
    *,
    template: str = "report/report.html",
) -> str:
    """A page of sections from ``template``: header, table of contents, sections, footer.

    Parameters
    ----------
    title : page title and ``<h1>``.
    sections : rendered in order; each gets an entry in the table of contents.
    subtitle : a line under the title.
    template : a template that extends ``sectioned.html`` (the tuning dashboard
        passes ``tune/dashboard.html``).

    Returns
    -------
    A complete, self-contained HTML5 document (inline CSS, no scripts, no
    external links). Every text is escaped by the template engine.
    """
    return render(
        template,
        title=title,
        subtitle=subtitle,
        sections=list(sections),
        version=__version__,
        generated=time.strftime("%Y-%m-%d %H:%M"),
    )


def _uncalibrated_note(run: RunDir, config: RunConfig) -> str | None:
    # What to say instead of "run mnistlab calibrate" where calibrate would refuse.
    if run.kind == "ensemble":
        return (
            "Run 'mnistlab calibrate RUN' to fit a temperature on the validation split; for "
            "an ensemble only when its members share seed and val_size (the same held-out "
            "images), otherwise calibrate the members."
        )
    if isinstance(config, TrainConfig) and config.val_size == 0:
        return (
            "This run trained on all training images: no validation split is left to fit a "
            "temperature on (mnistlab calibrate needs a run trained with --val-size > 0)."
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
    extra_sections : more sections appended after the standard ones, e.g.
        ``Section("Notes", [Paragraph("retrained with more augmentation")])``.

    Returns
    -------
    Path of ``report.html``: one self-contained file (figures embedded, inline
    CSS, no scripts or external links). The PNGs are also in ``figures/``.

    Examples
    --------
    >>> write_report("latest")  # doctest: +SKIP
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

    # The model's own probabilities: the calibration figures draw them before and after.
    y_true, probs = load_predictions(run, uncalibrated=True)
    if len(y_true) != len(dataset.y_test) or not np.array_equal(y_true, dataset.y_test):
        if run.kind == "cv-fold":
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
        *[s for s in (robustness_section(run),) if s is not None],
        *[s for s in (read_section(run, dataset),) if s is not None],
        *[s for s in (trust_section(run, metrics, dataset),) if s is not None],
        config_section(config.to_dict()),
        *extra_sections,
    ]
    title = (
        f"{metrics['model']} on {metrics['dataset']}: {metrics['test_accuracy']:.2%} test accuracy"
    )
    page = render_page(title, sections, subtitle=f"run {run.name}")
    files.write_text(run.report_path, page)
    return run.report_path
