"""Report: figures and a self-contained report.html for a real, evaluated run."""

import base64
import dataclasses
import io
import json
import re
import shutil
from html.parser import HTMLParser

import matplotlib.image
import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.report import (
    FIGURE_FILES,
    Paragraph,
    Section,
    Table,
    plot_history,
    plot_samples,
    render_block,
    write_report,
)
from mnistlab.runs import RunDir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.css = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css += data


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def _embedded_pngs(page: str) -> list[bytes]:
    srcs = [a["src"] for tag, a in _parse(page).tags if tag == "img"]
    prefix = "data:image/png;base64,"
    assert all(s.startswith(prefix) for s in srcs)
    return [base64.b64decode(s[len(prefix) :], validate=True) for s in srcs]


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory, mnist):
    """A real run (one epoch of a small dense net), evaluated and reported once."""
    from mnistlab.config import make_config
    from mnistlab.evaluate import evaluate
    from mnistlab.train import train

    runs_dir = tmp_path_factory.mktemp("runs")
    config = make_config("fnn", epochs=1, params={"hidden": (64, 32)})
    run = train(config, runs_dir=runs_dir, dataset=mnist, verbose=0)
    evaluate(run, dataset=mnist)
    path = write_report(run, dataset=mnist)
    return run, path


@pytest.mark.slow
def test_the_report_is_one_file_that_needs_nothing_from_outside(reported_run):
    run, path = reported_run
    assert path == run.report_path and path.is_file()
    page = path.read_text(encoding="utf-8")
    parsed = _parse(page)

    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:  # only embedded images and in-page anchors
                assert value.startswith(("data:image/png;base64,", "#")), (tag, value)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "url(" not in parsed.css and "@import" not in parsed.css


@pytest.mark.slow
def test_every_figure_is_embedded_as_a_readable_png(reported_run):
    run, path = reported_run
    pngs = _embedded_pngs(path.read_text(encoding="utf-8"))

    # history, confusion, classes, samples + per-class accuracy, gallery, ROC, PR, reliability
    assert len(pngs) == len(FIGURE_FILES) == 9
    for png in pngs:
        assert png.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0  # not a blank canvas
    # The page embeds exactly the figures written to figures/.
    on_disk = {(run.figures_dir / name).read_bytes() for name in FIGURE_FILES.values()}
    assert set(pngs) == on_disk


@pytest.mark.slow
def test_the_page_shows_the_metrics_of_metrics_json(reported_run):
    run, path = reported_run
    page = path.read_text(encoding="utf-8")
    metrics = json.loads(run.metrics_path.read_text())
    state = run.state()

    accuracy = metrics["test_accuracy"]
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert title == f"fnn on mnist: {accuracy:.2%} test accuracy"
    assert f"{accuracy:.4f}" in page
    assert f"{metrics['params_count']:,}" in page
    assert f"{state['best_val_accuracy']:.4f}" in page
    # Every per-class row, and the averages, with the numbers of metrics.json.
    for row in metrics["per_class"]:
        cells = [
            row["label"],
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            f"{row['support']:,}",
        ]
        assert re.search(
            r"<tr>\s*" + r"\s*".join(f"<td[^>]*>{re.escape(c)}</td>" for c in cells), page
        ), row
    assert f"{metrics['macro_avg']['f1']:.4f}" in page
    assert f"{metrics['weighted_avg']['f1']:.4f}" in page
    # The configuration table lists the settings of config.json.
    assert "hidden=64,32" in page and ">learning_rate<" in page


@pytest.mark.slow
def test_extra_sections_are_added_and_every_text_is_escaped(reported_run, mnist, tmp_path):
    run, _ = reported_run
    # A run directory whose name is markup must come out as text, not as tags.
    copy = RunDir(tmp_path / "<em>bold&run")
    shutil.copytree(run.path, copy.path, ignore=shutil.ignore_patterns("logs", "figures"))
    extra = Section("Calibration <draft>", [Paragraph("ECE < 0.01 & falling")])

    page = write_report(copy, dataset=mnist, extra_sections=[extra]).read_text()

    assert "<em>" not in page
    assert "run &lt;em&gt;bold&amp;run" in page
    assert '<a href="#calibration-draft">Calibration &lt;draft&gt;</a>' in page
    assert '<section id="calibration-draft">' in page
    assert "<p>ECE &lt; 0.01 &amp; falling</p>" in page
    assert (copy.figures_dir / FIGURE_FILES["confusion"]).is_file()


def test_a_run_without_metrics_is_refused_with_the_command_to_run(tmp_path):
    from mnistlab.config import make_config

    run = RunDir.create(tmp_path, make_config("fnn"))
    with pytest.raises(MnistlabError, match=r"no metrics\.json; run 'mnistlab evaluate .*' first"):
        write_report(run)
    assert not run.report_path.exists()
    assert not run.figures_dir.exists()


def test_a_table_escapes_cells_and_marks_numeric_columns():
    table = render_block(Table(["name", "n"], [["<i>x</i>", 3]], numeric=[False, True]))
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td>" in table
    assert "<td class=num>3</td>" in table


def test_a_missing_or_malformed_history_is_a_clear_error(tmp_path):
    with pytest.raises(MnistlabError, match="cannot read training history"):
        plot_history(tmp_path / "missing.csv", tmp_path / "h.png")
    bad = tmp_path / "history.csv"
    bad.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(MnistlabError, match="lacks columns"):
        plot_history(bad, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_plot_history_draws_a_one_epoch_run(tmp_path):
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.6,0.8,0.3,0.9,0,2\n")
    out = plot_history(csv, tmp_path / "figures" / "h.png")
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_samples_rejects_an_impossible_count(mnist, tmp_path):
    with pytest.raises(MnistlabError, match="invalid n=0"):
        plot_samples(mnist, tmp_path / "s.png", n=0)
    out = plot_samples(mnist, tmp_path / "s.png", n=7)
    image = matplotlib.image.imread(out)
    assert image.shape[1] > image.shape[0]  # 7 in one row: wider than tall
    assert np.asarray(image).std() > 0


@pytest.mark.slow
def test_the_analysis_sections_show_the_numbers_of_the_predictions(reported_run):
    from mnistlab.evaluate import (
        confused_pairs,
        load_calibration,
        load_predictions,
        ranked_mistakes,
    )

    run, path = reported_run
    page = path.read_text(encoding="utf-8")
    metrics = json.loads(run.metrics_path.read_text())
    y, probs = load_predictions(run)

    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[5:11] == [
        "Per-class accuracy",
        "Most-confused pairs",
        "Error gallery",
        "ROC curves",
        "Precision-recall curves",
        "Calibration",
    ]
    # The most-confused pair, both directions, as the first row of its table.
    top = confused_pairs(y, probs, top=1)[0]
    assert re.search(
        rf"<td>{top['a']} ↔ {top['b']}</td>\s*<td class=num>{top['a_as_b']:,}</td>"
        rf"\s*<td class=num>{top['b_as_a']:,}</td>\s*<td class=num>{top['total']:,}</td>",
        page,
    )
    worst = ranked_mistakes(y, probs, limit=1)[0]
    assert f"<td class=num>{worst['index']:,}</td>" in page
    # ROC-AUC and ECE of metrics.json in the summary and the tables.
    assert f"{metrics['roc_auc']['macro']:.6f} / {metrics['roc_auc']['micro']:.6f}" in page
    assert f"<td class=num>{metrics['roc_auc']['per_class'][0]:.6f}</td>" in page
    assert f"{metrics['ece']:.4f}" in page
    # Not calibrated: the page says how to calibrate.
    assert load_calibration(run) is None
    assert "mnistlab calibrate RUN" in page


# Matplotlib settings that Seaborn's and Optuna's styles change: still the user's after a report.
STYLE_KEYS = ("axes.facecolor", "axes.grid", "axes.prop_cycle", "font.size", "figure.facecolor")


def _synthetic_run(mnist, runs_dir, name):
    """An evaluated run without training: predictions made up from the test labels.

    ``name`` may hold characters a run created by mnistlab cannot (``<``, ``>``):
    the run directory is renamed to it.
    """
    from mnistlab.config import make_config
    from mnistlab.evaluate import metrics_from_probs

    created = RunDir.create(runs_dir, make_config("fnn", epochs=1), name="synthetic")
    run = RunDir(created.path.rename(runs_dir / name))
    rng = np.random.default_rng(0)
    logits = 4.0 * np.eye(10)[mnist.y_test] + rng.normal(size=(len(mnist.y_test), 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # ~97% correct
    run.write_predictions(mnist.y_test, probs)
    metrics = metrics_from_probs(mnist.y_test, probs, [str(c) for c in mnist.class_names])
    run.write_metrics({**metrics, "model": "fnn", "dataset": "mnist", "run": str(run.path)})
    return run


def test_run_names_and_notes_are_escaped_and_matplotlib_is_left_as_it_was(mnist, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    # A test set of 2,000 images keeps the figures quick to draw.
    data = dataclasses.replace(mnist, x_test=mnist.x_test[:2000], y_test=mnist.y_test[:2000])
    run = _synthetic_run(data, tmp_path, "<script>alert(1)<")
    note = Section("Notes <script>", [Paragraph("<script>alert('note')</script> & more")])
    backend = matplotlib.rcParams._get_backend_or_none()
    style = {key: matplotlib.rcParams[key] for key in STYLE_KEYS}
    figures = plt.get_fignums()

    page = write_report(run, dataset=data, extra_sections=[note]).read_text()

    assert "<script" not in page
    assert "run &lt;script&gt;alert(1)&lt;" in page
    assert "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt; &amp; more" in page
    assert '<a href="#notes-script">Notes &lt;script&gt;</a>' in page
    # No pyplot figure left open, no style or backend changed.
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert {key: matplotlib.rcParams[key] for key in STYLE_KEYS} == style
    assert plt.get_fignums() == figures
    assert len(_embedded_pngs(page)) == len(FIGURE_FILES) - 1  # no history.csv: not trained


def test_importing_the_report_and_tune_keeps_the_users_backend():
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import mnistlab.report, mnistlab.tune; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_save_figure_writes_one_png_at_the_project_dpi(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    from mnistlab.files import FIGURE_DPI, save_figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "figures" / "line.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:  # the resolution is recorded in the PNG
        assert [round(d) for d in image.info["dpi"]] == [FIGURE_DPI, FIGURE_DPI]
    assert [p.name for p in path.parent.iterdir()] == ["line.png"]  # no temporary file left
