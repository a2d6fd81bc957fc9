"""The report's "Reading numbers" section (mnistlab.report.read_section) on the session's run.

The run directory is copied first: the section writes a figure into the run, and the
other tests' reports of ``digit_run`` must not change.
"""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from mnistlab.errors import MnistlabError
from mnistlab.read.compose import LAYOUTS
from mnistlab.report import render_page
from mnistlab.report.read_section import FIGURE_FILE, READ_BENCHMARK_FILE, read_section
from mnistlab.runs import RunDir

pytestmark = pytest.mark.slow  # the session's trained model reads the examples

SCORES = [
    {
        "reader": "mnistlab",
        "layout": layout,
        "images": 100,
        "exact": 0.96,
        "digit_accuracy": 0.99,
        "images_per_second": 41.5,
    }
    for layout in (*LAYOUTS, "all")
]


@pytest.fixture
def run(digit_run, tmp_path):
    shutil.copytree(digit_run.path, tmp_path / "run")
    return RunDir.open(tmp_path / "run")


def test_a_run_without_the_read_benchmark_has_no_reading_section(run, mnist):
    assert read_section(run, mnist) is None
    assert not (run.figures_dir / FIGURE_FILE).exists()


def test_the_section_shows_the_benchmark_and_annotated_examples(run, mnist):
    command = "mnistlab bench read RUN --per-layout 100"
    (run.path / READ_BENCHMARK_FILE).write_text(json.dumps({"command": command, "scores": SCORES}))
    section = read_section(run, mnist)
    assert section is not None and section.title == "Reading numbers"
    html = render_page("report", [section])
    assert "Reading numbers" in html and command in html
    assert "96.00%" in html and "41.5" in html  # the benchmark's table
    # One annotated example per layout, embedded in the page.
    with Image.open(run.figures_dir / FIGURE_FILE) as figure:
        width, height = figure.size
    assert width > 400 and height > 150 * len(LAYOUTS)
    assert "data:image/png;base64," in html
    assert f"of {len(LAYOUTS)} read exactly" in html


def test_an_unreadable_benchmark_file_is_one_clear_error(run, mnist):
    (run.path / READ_BENCHMARK_FILE).write_text('{"scores": [{"reader": 1}]')
    with pytest.raises(MnistlabError, match="read_benchmark.json") as err:
        read_section(run, mnist)
    assert "\n" not in str(err.value)
