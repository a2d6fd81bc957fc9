"""The report's Robustness section, from ``robustness.json`` (``mnistlab robustness``).

Shown when the run has been measured: headline numbers, accuracy per MNIST-C
corruption on arrays and through ``predict``, and the two figures the benchmark
wrote into ``figures/``. The numbers are read through :mod:`mnistlab.runs`
(:class:`~mnistlab.runs.RobustnessRecord`); nothing is measured here.
"""

from __future__ import annotations

from mnistlab.report.blocks import Block, Cards, Paragraph, PngFigure, Section, Table
from mnistlab.report.sections import format_number
from mnistlab.runs import RobustnessRecord, RunDir

FIGURE_CAPTIONS = {
    "accuracy": "Accuracy per corruption: the model on arrays, and through predict",
    "examples": "The first test digits under each corruption",
}


def robustness_section(run: RunDir) -> Section | None:
    """The Robustness section of ``run``'s report; None when it has no ``robustness.json``.

    Raises
    ------
    MnistlabError
        A ``robustness.json`` that is unreadable or not a valid record.
    """
    if not run.robustness_path.is_file():
        return None
    record: RobustnessRecord = run.robustness_record()
    worst = min(record.corruptions, key=lambda score: score.arrays)
    cards = Cards(
        [
            ("clean accuracy (arrays)", f"{record.clean.arrays:.2%}"),
            ("mean over corruptions (arrays)", f"{record.mean.arrays:.2%}"),
            ("mean through predict", format_number(record.mean.predict, "{:.2%}")),
            (f"worst: {worst.name} (arrays)", f"{worst.arrays:.2%}"),
        ]
    )
    rows = [
        (
            name,
            f"{score.arrays:.4f}",
            format_number(score.predict),
            format_number(score.predict_failed, "{:,}"),
        )
        for name, score in [("clean", record.clean), *((s.name, s) for s in record.corruptions)]
    ]
    table = Table(
        ["corruption", "on arrays", "through predict", "refused by predict"],
        rows,
        foot=[("mean", f"{record.mean.arrays:.4f}", format_number(record.mean.predict), "")],
        numeric=[False, True, True, True],
    )
    note = Paragraph(
        f"{record.n:,} test images, corruption seed {record.seed}: the 15 corruptions of "
        "MNIST-C (Mu and Gilmer, 2019). On arrays: the model alone on images already in "
        "MNIST form. Through predict: each image as a PNG file through the preprocessing of "
        "'mnistlab predict' (an image it refuses counts as wrong). Measured with "
        f"'mnistlab robustness {run.name} --seed {record.seed}'.",
        cls="note",
    )
    figures: list[Block] = [
        PngFigure(run.path / path, FIGURE_CAPTIONS.get(name, name))
        for name, path in record.figures.items()
        if (run.path / path).is_file()
    ]
    return Section("Robustness", [cards, table, *figures, note])
