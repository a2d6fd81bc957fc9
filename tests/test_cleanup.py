"""Clean-up before recognition: lines, boxes and scanner edges go, digit strokes stay.

Also the paper drawings of :mod:`mnistlab.data.paper` (seeded) and the paper
benchmark's command. Digits are MNIST test digits enlarged to photo size.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.data.paper import (
    PAPER_KINDS,
    box_frame,
    draw_paper,
    ruled_lines,
    scanner_edge,
    squared_lines,
)
from mnistlab.predict.cleanup import edge_bands, remove_lines
from mnistlab.robustness.paper import LAYOUTS, render_page


def enlarged(digit: np.ndarray, scale: int = 6, margin: int = 40) -> np.ndarray:
    """An MNIST digit as ink (0-1) on a bigger page, like a photo's digit after _ink."""
    side = 28 * scale
    big = Image.fromarray(digit.astype(np.float32) / 255).resize((side, side), Image.BILINEAR)
    page = np.zeros((side + 2 * margin, side + 2 * margin), np.float32)
    page[margin : margin + side, margin : margin + side] = np.clip(np.asarray(big), 0, 1)
    return page


def ink_box(page: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(page > 0.3)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two inks' masks (> 0.3)."""
    ma, mb = a > 0.3, b > 0.3
    return float((ma & mb).sum() / max((ma | mb).sum(), 1))


def test_an_empty_image_comes_back_empty():
    out = remove_lines(np.zeros((50, 70), np.float32))
    assert out.shape == (50, 70) and out.dtype == np.float32 and not out.any()
    assert remove_lines(np.zeros((3, 3))).shape == (3, 3)  # too small to hold a line


@pytest.mark.parametrize(
    "page",
    [
        ruled_lines((200, 240), spacing=30, thickness=2),
        squared_lines((200, 240), spacing=25, thickness=1.5, contrast=0.9),
        scanner_edge((200, 240), side="top", width=25, tilt=1.5),
    ],
    ids=["ruled", "squared", "edge"],
)
def test_an_image_of_only_lines_comes_back_nearly_empty(page):
    out = remove_lines(page)
    assert out.sum() < 0.03 * page.sum()


def test_a_clean_digit_is_left_as_it_was(mnist):
    for digit in mnist.x_test[:12]:
        page = enlarged(digit)
        out = remove_lines(page)
        assert np.abs(out - page).sum() <= 0.01 * page.sum()


@pytest.mark.parametrize("kind", PAPER_KINDS)
@pytest.mark.parametrize("touching", [False, True], ids=["apart", "touching"])
def test_the_digit_is_what_is_left_of_a_page(mnist, kind, touching):
    """Over six digits, the cleaned page matches the digit alone (IoU of the ink).

    Touching, the frame or line merges with the stroke over its own width, and a
    bit of it may stay where it runs along the stroke.
    """
    scores = []
    for i, digit in enumerate(mnist.x_test[:6]):
        page = enlarged(digit)
        rng = np.random.default_rng(i)
        lines = draw_paper(page.shape, kind, rng, digit_box=ink_box(page), touching=touching)
        cleaned = remove_lines(np.maximum(page, lines))
        scores.append(overlap(cleaned, page))
    assert np.median(scores) > (0.8 if touching else 0.9), scores
    assert min(scores) > 0.6, scores


def test_a_box_around_a_digit_goes():
    page = np.zeros((200, 200), np.float32)
    page[50:150, 94:106] = 1  # a 1
    boxed = np.maximum(page, box_frame(page.shape, (70, 30, 130, 170), thickness=3))
    assert overlap(remove_lines(boxed), page) > 0.95


def test_a_stroke_crossing_a_line_keeps_its_ink_there():
    ink = ruled_lines((120, 160), spacing=40, thickness=2, offset=60)
    ink[15:105, 70:82] = 1  # a bar as wide as a pen stroke, across the line at y = 60
    out = remove_lines(ink)
    assert out[55:66, 70:82].min() == 1  # the crossing is kept
    assert out[58:63, 5:60].max() < 0.1  # the line beside it is gone


def test_remove_lines_refuses_a_non_image():
    with pytest.raises(ValueError, match="2-D"):
        remove_lines(np.zeros((2, 28, 28)))


def test_edge_bands_finds_a_band_and_not_a_digit_touching_the_border():
    mask = np.zeros((100, 80), bool)
    mask[:, :12] = True  # a scanner's edge along the left side
    mask[30:70, 40:46] = True  # a digit's stroke, touching nothing
    mask[0:30, 60:66] = True  # a stroke cut by the top of the picture
    bands = edge_bands(mask)
    assert bands[:, :12].all() and not bands[:, 12:].any()


def test_paper_is_deterministic_for_a_seed():
    def draw(seed: int, kind: str) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return draw_paper((90, 120), kind, rng, digit_box=(40, 20, 80, 70), touching=True)

    for kind in PAPER_KINDS:
        first = draw(3, kind)
        assert first.dtype == np.float32 and first.shape == (90, 120)
        assert 0 < first.max() <= 1
        np.testing.assert_array_equal(first, draw(3, kind))
        assert not np.array_equal(first, draw(4, kind))
    with pytest.raises(ValueError, match="kind"):
        draw_paper((9, 9), "lined", np.random.default_rng(0), digit_box=(1, 1, 5, 5))


def test_paper_pages_are_deterministic_and_share_everything_but_the_lines(mnist):
    digit = mnist.x_test[0]
    for layout in LAYOUTS:
        np.testing.assert_array_equal(
            render_page(digit, layout, 0, 5), render_page(digit, layout, 0, 5)
        )
    plain, boxed = render_page(digit, "plain", 0, 5), render_page(digit, "box", 0, 5)
    assert plain.shape == boxed.shape
    changed = plain.astype(int) - boxed.astype(int) > 40  # darker: the printed frame
    assert 0.005 < changed.mean() < 0.2


@pytest.mark.slow
def test_the_paper_benchmark_command_writes_its_results(digit_run, capsys):
    assert main(["robustness", str(digit_run.path), "--paper", "--limit", "12", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in record["layouts"]] == list(LAYOUTS)
    assert record["n"] == 12 and (digit_run.path / "paper.json").exists()
    assert (digit_run.path / "figures" / "paper_examples.png").exists()
    # Clean-up is what reads the lined pages: far better with it than without.
    assert record["mean"]["cleanup"] > record["mean"]["no_cleanup"] + 0.2


def test_a_fine_pen_on_mottled_paper_keeps_its_straight_strokes():
    """A photo of a narrow 0 in a fine pen on blotchy paper (samples/0/photo.jpg): the
    paper's faint blotches once set the 'pen width', so the 0's own straight sides
    looked thin next to it and were removed as printed lines, leaving two arcs."""
    from pathlib import Path

    from mnistlab.predict import preprocess_image

    photo = Path(__file__).resolve().parents[1] / "samples" / "0" / "photo.jpg"
    image = preprocess_image(photo.read_bytes()).image
    for row in (10, 14, 18):  # across the middle of the 0: ink on the left and the right
        inked = np.flatnonzero(image[row] > 0.3)
        assert len(inked) and inked.max() - inked.min() >= 6, (row, inked)
