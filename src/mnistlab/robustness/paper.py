"""The paper benchmark: single test digits in boxes, on ruled and squared paper, by scanner edges.

::

    the run's test digits (the first N with ``limit``)
    -> each digit enlarged to photo size (4-8x, bilinear) at a random place on a page
    -> each layout of LAYOUTS: the same page with nothing printed ("plain"), or with
       a printed box, ruled or squared lines, a scanner edge (mnistlab.data.paper),
       clear of the digit or touching it ("-touching")
    -> rendered like a photo: dark ink on light paper, uneven light, sensor noise,
       saved as a PNG file's bytes
    -> mnistlab.predict's preprocessing with clean-up and without
       (``preprocess_image(..., cleanup=False)``) -> the model -> accuracy
    -> paper.json in the run, figures/paper_examples.png

Every page is drawn from its own generator, seeded by ``(seed, index of the
digit)``: the same digit gets the same page whatever ``limit`` is, and every
layout of a digit shares its size, place, light and noise, so "plain" and a
layout differ only in what is printed. Test digits only; nothing is chosen here.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnistlab.data import Dataset
from mnistlab.data.paper import draw_paper
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import run_dataset
from mnistlab.files import save_figure, write_json
from mnistlab.predict import ImageError, Predictor, load_predictor, preprocess_image
from mnistlab.progress import ProgressLine, format_table, reporter
from mnistlab.runs import RunDir

# Layout name -> (paper kind or None, touching).
LAYOUTS: dict[str, tuple[str | None, bool]] = {
    "plain": (None, False),
    "box": ("box", False),
    "box-touching": ("box", True),
    "ruled": ("ruled", False),
    "ruled-touching": ("ruled", True),
    "squared": ("squared", False),
    "edge": ("edge", False),
    "edge-touching": ("edge", True),
}
DEFAULT_LIMIT = 1000
EXAMPLES = 6  # digits per layout in the examples figure


def render_page(digit: np.ndarray, layout: str, seed: int, index: int) -> np.ndarray:
    """A test digit on a photographed page of ``layout``, as 8-bit grayscale (H, W).

    Parameters
    ----------
    digit : uint8 (28, 28), MNIST polarity.
    layout : a name of :data:`LAYOUTS`.
    seed, index : the page's generator is seeded by ``(seed, index)``.

    Returns
    -------
    uint8 (H, W): dark ink on light paper, 150-400 px a side.

    Examples
    --------
    >>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
    >>> page = render_page(digit, "ruled", seed=0, index=3)
    >>> page.dtype, page.ndim, bool((render_page(digit, "ruled", 0, 3) == page).all())
    (dtype('uint8'), 2, True)
    """
    if layout not in LAYOUTS:
        raise MnistlabError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    rng = np.random.default_rng([seed, index])
    scale = float(rng.uniform(4, 8))
    side = round(28 * scale)
    big = Image.fromarray(np.asarray(digit, np.float32) / np.float32(255))
    ink = np.clip(np.asarray(big.resize((side, side), Image.Resampling.BILINEAR)), 0, 1)
    margin = rng.uniform(0.15, 0.6, size=4) * side  # left, top, right, bottom
    left, top = round(margin[0]), round(margin[1])
    shape = (top + side + round(margin[3]), left + side + round(margin[2]))
    page = np.zeros(shape, np.float32)
    page[top : top + side, left : left + side] = ink
    ys, xs = np.nonzero(page > 0.3)
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    # The paper's draws come from their own generator, so that every layout of one
    # digit shares the light and noise drawn below.
    paper_rng = np.random.default_rng([seed, index, 1])
    kind, touching = LAYOUTS[layout]
    if kind is not None:
        page = np.maximum(
            page, draw_paper(shape, kind, paper_rng, digit_box=box, touching=touching)
        )

    # A photo: light paper, ink not quite black, light falling off across the page.
    paper_level = float(rng.uniform(0.75, 0.95))
    darkness = float(rng.uniform(0.65, 0.9))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    angle = float(rng.uniform(0, 2 * np.pi))
    slope = float(rng.uniform(0, 0.15))
    light = 1 - slope * (np.cos(angle) * xx / shape[1] + np.sin(angle) * yy / shape[0])
    gray = paper_level * light * (1 - darkness * page)
    gray = gray + rng.normal(0, 0.015, size=shape)
    return np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)


def paper_benchmark(
    run: RunDir | str | Path,
    *,
    limit: int | None = DEFAULT_LIMIT,
    seed: int = 0,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    progress: bool | ProgressLine | None = False,
) -> dict[str, Any]:
    """Accuracy through ``predict`` on paper layouts, with clean-up and without.

    Parameters
    ----------
    run : a :class:`RunDir`, a run directory, a run name in ``runs_dir`` or ``"latest"``.
    limit : the first ``limit`` test digits (all 10,000 if None).
    seed : seed of the pages (the same seed, the same images).
    runs_dir : where run names are looked up.
    dataset : the run's dataset if already loaded.
    progress : True: a line per layout on stderr; a callable receives them.

    Returns
    -------
    What ``paper.json`` holds: ``n``, ``seed``, ``layouts`` (a list of ``name``,
    ``cleanup``, ``no_cleanup``, their ``failed`` counts, ``seconds``), the
    ``mean`` over the layouts with lines, ``gap`` (plain minus that mean, with
    clean-up), ``model``, ``run``, ``figure`` and ``seconds``.

    Raises
    ------
    MnistlabError
        A bad ``limit`` or ``seed``, no such run, or a run that did not finish.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise MnistlabError(f"invalid limit={limit!r}: expected an integer >= 1 (test digits)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MnistlabError(f"invalid seed={seed!r}: expected an integer >= 0")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    dataset = run_dataset(run, dataset)
    if dataset.name != "mnist":
        raise MnistlabError(f"the paper benchmark needs a run on MNIST digits, not {dataset.name}")
    images, labels = dataset.x_test[:limit], dataset.y_test[:limit]
    predictor = load_predictor(run.path)
    say = reporter(progress)
    started = time.perf_counter()

    scores: list[dict[str, Any]] = []
    examples: dict[str, list[np.ndarray]] = {}
    for i, layout in enumerate(LAYOUTS, 1):
        begun = time.perf_counter()
        pages = [render_page(image, layout, seed, k) for k, image in enumerate(images)]
        examples[layout] = pages[:EXAMPLES]
        score: dict[str, Any] = {"name": layout}
        for key, cleanup in (("cleanup", True), ("no_cleanup", False)):
            correct, failed = _through_predict(predictor, pages, labels, cleanup)
            score[key] = round(float(np.mean(correct)), 6)
            score[f"{key}_failed"] = failed
        score["seconds"] = round(time.perf_counter() - begun, 2)
        scores.append(score)
        say(
            f"[{i}/{len(LAYOUTS)}] {layout}: with clean-up {score['cleanup']:.4f}, "
            f"without {score['no_cleanup']:.4f} ({score['seconds']:.1f} s)"
        )

    lined = [s for s in scores if s["name"] != "plain"]
    mean = {
        key: round(float(np.mean([s[key] for s in lined])), 6) for key in ("cleanup", "no_cleanup")
    }
    plain = scores[0]["cleanup"]
    record: dict[str, Any] = {
        "model": run.config().model,
        "run": str(run.path),
        "n": int(len(images)),
        "seed": seed,
        "layouts": scores,
        "mean": mean,
        "gap": round(plain - mean["cleanup"], 6),
        "worst_gap": round(plain - min(s["cleanup"] for s in lined), 6),
    }
    record["figure"] = str(_draw_examples(examples, run.path / "figures" / "paper_examples.png"))
    record["seconds"] = round(time.perf_counter() - started, 1)
    write_json(run.path / "paper.json", record)
    return record


def format_paper(record: dict[str, Any]) -> str:
    """The table ``mnistlab robustness --paper`` prints.

    >>> record = {"n": 10, "seed": 0, "mean": {"cleanup": 0.9, "no_cleanup": 0.5},
    ...           "layouts": [{"name": "box", "cleanup": 0.9, "no_cleanup": 0.5}],
    ...           "gap": 0.01, "worst_gap": 0.01}
    >>> print(format_paper(record))
    layout   with clean-up   without
    ────────────────────────────────
    box             0.9000    0.5000
    mean            0.9000    0.5000
    <BLANKLINE>
    10 test digits per layout, seed 0
    plain minus the mean with clean-up: 1.00 points (worst layout: 1.00)
    """
    rows = [*record["layouts"], {"name": "mean", **record["mean"]}]
    table = format_table(
        ["layout", "with clean-up", "without"],
        [[s["name"], f"{s['cleanup']:.4f}", f"{s['no_cleanup']:.4f}"] for s in rows],
    )
    return (
        f"{table}\n\n{record['n']:,} test digits per layout, seed {record['seed']}\n"
        f"plain minus the mean with clean-up: {100 * record['gap']:.2f} points "
        f"(worst layout: {100 * record['worst_gap']:.2f})"
    )


def _through_predict(
    predictor: Predictor, pages: list[np.ndarray], labels: np.ndarray, cleanup: bool
) -> tuple[np.ndarray, int]:
    """Which pages ``mnistlab predict`` reads right, each given as a PNG file's bytes."""
    prepared = np.zeros((len(pages), 28, 28), np.float32)
    readable = np.ones(len(pages), bool)
    for i, page in enumerate(pages):
        buffer = io.BytesIO()
        Image.fromarray(page).save(buffer, format="PNG")
        try:
            prepared[i] = preprocess_image(buffer.getvalue(), cleanup=cleanup).image
        except ImageError:  # no ink found: predict answers with an error, not a digit
            readable[i] = False
    predicted = predictor.probabilities(prepared).argmax(axis=1)
    return readable & (predicted == labels), int((~readable).sum())


def _draw_examples(examples: dict[str, list[np.ndarray]], path: Path) -> Path:
    """A grid: a row per layout, the first pages as rendered (matplotlib Figure, no pyplot)."""
    from matplotlib.figure import Figure

    columns = max(len(pages) for pages in examples.values())
    fig = Figure(figsize=(1.6 * columns + 1.4, 1.6 * len(examples)))
    for row, (layout, pages) in enumerate(examples.items()):
        for col, page in enumerate(pages):
            ax = fig.add_subplot(len(examples), columns, row * columns + col + 1)
            ax.imshow(page, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(layout, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
