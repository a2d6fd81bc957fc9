"""Report: the figures and one self-contained HTML page for an evaluated run.

    metrics.json (from evaluate), run.json, config.json, history.csv, the dataset
    -> figures/*.png (Matplotlib + Seaborn on Figure objects, no display, no pyplot)
    -> report.html: one file that opens offline, images embedded as data: URIs

Besides the training history, confusion matrix and data, the page shows the
analysis of the saved test predictions (``predictions.npz``, numbers from
:mod:`mnistlab.evaluate`): per-class accuracy, most-confused pairs, a gallery
of the most confident mistakes, ROC and precision-recall curves, and a
reliability diagram (with the temperature of ``calibration.json`` if present).

The package, by concern:

- :mod:`~mnistlab.report.drawing`: the shared look (Seaborn style in an
  ``rc_context``, figures with their own canvas);
- :mod:`~mnistlab.report.figures`: data, training history, confusion matrix;
- :mod:`~mnistlab.report.analysis_figures`: per-class accuracy, error gallery,
  ROC, precision-recall, reliability;
- :mod:`~mnistlab.report.blocks`: sections of paragraphs, tables, figures, cards;
- :mod:`~mnistlab.report.sections`, :mod:`~mnistlab.report.analysis_sections`:
  what each section of the page shows;
- :mod:`~mnistlab.report.robustness_section`: the Robustness section, when
  ``mnistlab robustness`` has measured the run;
- :mod:`~mnistlab.report.read_section`: Reading numbers, the read benchmark's
  scores and annotated example numbers, when the run has been through it;
- :mod:`~mnistlab.report.page`: :func:`write_report`, from the Jinja2 template
  ``templates/report/report.html`` (autoescaped: run names and notes are text).

The page is a list of :class:`Section` objects rendered in order, so a new
analysis is one more section::

    extra = Section("Calibration", [PngFigure(png_path, "Reliability diagram")])
    write_report("latest", extra_sections=[extra])
"""

from mnistlab.files import FIGURE_DPI as DPI
from mnistlab.report.analysis_figures import (
    draw_error_gallery,
    draw_per_class_accuracy,
    draw_pr,
    draw_reliability,
    draw_roc,
    plot_error_gallery,
    plot_per_class_accuracy,
    plot_pr,
    plot_reliability,
    plot_roc,
)
from mnistlab.report.analysis_sections import (
    CONFUSED_PAIRS,
    GALLERY_SIZE,
    GALLERY_TABLE_ROWS,
    analysis_sections,
)
from mnistlab.report.blocks import Block, Cards, Paragraph, PngFigure, Section, Table, render_block
from mnistlab.report.drawing import TRAIN_COLOR, VAL_COLOR
from mnistlab.report.figures import (
    HISTORY_COLUMNS,
    draw_class_distribution,
    draw_confusion,
    draw_history,
    draw_samples,
    plot_class_distribution,
    plot_confusion,
    plot_history,
    plot_samples,
    read_history,
)
from mnistlab.report.page import (
    FIGURE_FILES,
    render_page,
    write_analysis_figures,
    write_figures,
    write_report,
)
from mnistlab.report.robustness_section import robustness_section
from mnistlab.report.sections import (
    AREA_FORMAT,
    config_section,
    figure_sections,
    format_number,
    members_section,
    per_class_section,
    summary_section,
)

__all__ = [
    "AREA_FORMAT",
    "CONFUSED_PAIRS",
    "DPI",
    "FIGURE_FILES",
    "GALLERY_SIZE",
    "GALLERY_TABLE_ROWS",
    "HISTORY_COLUMNS",
    "TRAIN_COLOR",
    "VAL_COLOR",
    "Block",
    "Cards",
    "Paragraph",
    "PngFigure",
    "Section",
    "Table",
    "analysis_sections",
    "config_section",
    "draw_class_distribution",
    "draw_confusion",
    "draw_error_gallery",
    "draw_history",
    "draw_per_class_accuracy",
    "draw_pr",
    "draw_reliability",
    "draw_roc",
    "draw_samples",
    "figure_sections",
    "format_number",
    "members_section",
    "per_class_section",
    "plot_class_distribution",
    "plot_confusion",
    "plot_error_gallery",
    "plot_history",
    "plot_per_class_accuracy",
    "plot_pr",
    "plot_reliability",
    "plot_roc",
    "plot_samples",
    "read_history",
    "render_block",
    "render_page",
    "robustness_section",
    "summary_section",
    "write_analysis_figures",
    "write_figures",
    "write_report",
]
