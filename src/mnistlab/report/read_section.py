"""The report's "Reading numbers" section: the read benchmark's scores and annotated examples.

Shown when the run has been through the read benchmark (``read_benchmark.json`` in
the run directory, :data:`READ_BENCHMARK_FILE`), or when asked for
(``read_section(..., always=True)``). The examples are composed at report time
from MNIST **test** digits, one number per layout, the same way and with the same
seed as the benchmark's test set (:func:`mnistlab.read.compose.compose_set`,
:data:`mnistlab.read.benchmark.TEST_SEED`), read with the run's model
(:class:`mnistlab.read.NumberReader`), and drawn with each digit's box
(:func:`mnistlab.read.annotate`) into ``figures/read_examples.png``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pydantic import ValidationError

from mnistlab import files
from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.read import NumberReader, NumberReading, annotate, read_image
from mnistlab.read.benchmark import TEST_SEED, ReadScore
from mnistlab.read.compose import LAYOUTS, NumberImage, compose_set
from mnistlab.report.blocks import Block, Paragraph, PngFigure, Section, Table
from mnistlab.report.drawing import new_figure, style
from mnistlab.runs import RunDir

__all__ = [
    "FIGURE_FILE",
    "READ_BENCHMARK_FILE",
    "draw_read_examples",
    "read_examples",
    "read_section",
]

# In the run directory: the read benchmark's scores, {"command": str, "scores": [ReadScore]}.
READ_BENCHMARK_FILE = "read_benchmark.json"
# In the run's figures/.
FIGURE_FILE = "read_examples.png"
RIGHT, WRONG = "#1a7f37", "#b3261e"

Example = tuple[NumberImage, NumberReading]


def read_examples(
    run: RunDir, dataset: Dataset, *, per_layout: int = 1, layouts: Sequence[str] = LAYOUTS
) -> list[Example]:
    """Numbers composed from ``dataset``'s test digits, each with the run's reading of it.

    Parameters
    ----------
    run : the run whose model reads.
    dataset : MNIST (its test split is composed; the benchmark's seed).
    per_layout : how many numbers of each layout.
    layouts : which layouts (:data:`mnistlab.read.compose.LAYOUTS`).

    Raises
    ------
    MnistlabError
        The run's model does not classify digits.
    """
    reader = NumberReader.from_run(run.path)
    out = []
    for layout in layouts:
        for item in compose_set(dataset.x_test, dataset.y_test, layout, per_layout, seed=TEST_SEED):
            out.append((item, read_image(reader, item.image)))
    return out


def draw_read_examples(examples: Sequence[Example]) -> Figure:
    """One row per example: the annotated image, titled with what was written and read."""
    pictures = [np.asarray(annotate(item.image, reading)) for item, reading in examples]
    # Each row as tall as its image at the figure's width (8 in), within reason.
    heights = [float(np.clip(8 * p.shape[0] / p.shape[1], 0.8, 3.2)) for p in pictures]
    with style("white"):
        fig = new_figure((8, sum(heights) + 0.45 * len(pictures)))
        axes = fig.subplots(len(pictures), 1, squeeze=False, height_ratios=heights)[:, 0]
        for ax, picture, (item, reading) in zip(axes, pictures, examples, strict=True):
            ax.imshow(picture)
            ax.set_axis_off()
            read = reading.text if reading.text is not None else f"nothing ({reading.reason})"
            right = reading.text == item.text
            ax.set_title(
                f"{item.layout}: written {item.text}, read {read}",
                fontsize=9,
                color=RIGHT if right else WRONG,
                loc="left",
                pad=3,
            )
        fig.tight_layout(pad=0.3)
    return fig


def _benchmark(run: RunDir) -> tuple[list[ReadScore], str] | None:
    """The scores and command of the run's ``read_benchmark.json``; None when there is none."""
    path = run.path / READ_BENCHMARK_FILE
    if not path.is_file():
        return None
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8"))
        scores = [ReadScore.model_validate(s) for s in record.get("scores", [])]
    except (OSError, ValueError, AttributeError, ValidationError) as err:
        message = " ".join(str(err).split())[:200]
        raise MnistlabError(
            f"cannot read {path} ({message}); run the read benchmark on the run again"
        ) from err
    return scores, str(record.get("command", ""))


def read_section(run: RunDir, dataset: Dataset, *, always: bool = False) -> Section | None:
    """The "Reading numbers" section; None when the run has no read benchmark (and not ``always``).

    Writes ``figures/read_examples.png`` (:func:`draw_read_examples` of :func:`read_examples`).

    Raises
    ------
    MnistlabError
        An unreadable ``read_benchmark.json``; a run whose model does not classify digits.
    """
    benchmark = _benchmark(run)
    if benchmark is None and not always:
        return None
    examples = read_examples(run, dataset)
    figure = files.save_figure(draw_read_examples(examples), run.figures_dir / FIGURE_FILE)
    right = sum(reading.text == item.text for item, reading in examples)
    blocks: list[Block] = []
    if benchmark is not None and benchmark[0]:
        scores, command = benchmark
        blocks.append(
            Table(
                ["reader", "layout", "images", "exact numbers", "digit accuracy", "images/s"],
                [
                    (
                        s.reader,
                        s.layout,
                        f"{s.images:,}",
                        f"{s.exact:.2%}",
                        f"{s.digit_accuracy:.2%}",
                        f"{s.images_per_second:.1f}",
                    )
                    for s in scores
                ],
                numeric=[False, False, True, True, True, True],
            )
        )
        if command:
            blocks.append(Paragraph(f"Measured with '{command}'.", cls="note"))
    blocks.append(
        PngFigure(
            Path(figure),
            f"Numbers composed from MNIST test digits, one per layout, as the run's model "
            f"read them ({right} of {len(examples)} read exactly): each digit's box and digit",
        )
    )
    blocks.append(
        Paragraph(
            "The examples are drawn from the read benchmark's test set (MNIST test digits, "
            f"seed {TEST_SEED}); exact numbers count only readings with every digit right. "
            "'mnistlab read RUN IMAGE --annotate DIR' draws the same boxes on your images.",
            cls="note",
        )
    )
    return Section("Reading numbers", blocks)
