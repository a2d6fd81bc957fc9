"""Reading whole numbers (mnistlab.read, `mnistlab read`): spaced, broken, touching, boxed,
blank and digit-less pages, the CLI's --json, --annotate and exit statuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli.app import main
from mnistlab.data.dataset import train_val_split
from mnistlab.data.paper import box_frame, ruled_lines
from mnistlab.predict import ImageError
from mnistlab.read import NumberReader, annotate, read_bytes, read_image
from mnistlab.read.compose import LAYOUTS, compose_set
from mnistlab.read.verifier import (
    NOT_ONE_DIGIT,
    VERIFIER_FILE,
    labelled_crops,
    load_verifier,
    train_verifier,
)

# The verifier trained here is small (mnistlab read trains 1,500 compositions once per
# run): ~20 s instead of ~2 min. Later tests (and modules) find it in the run.
TEST_COMPOSITIONS = 1000


@pytest.fixture(scope="module")
def reader(digit_run, mnist) -> NumberReader:
    if load_verifier(digit_run.path) is None:
        train_verifier(digit_run.path, compositions=TEST_COMPOSITIONS, epochs=4, dataset=mnist)
    return NumberReader.from_run(digit_run.path)


@pytest.fixture(scope="module")
def clear_digits(mnist, reader) -> dict[int, np.ndarray]:
    """One test image per class that the run reads alone with confidence (ink crop, float)."""
    probs = reader.predictor.probabilities(mnist.x_test[:2000] / 255.0)
    out = {}
    for c in range(10):
        ok = np.flatnonzero((mnist.y_test[:2000] == c) & (probs[:, c] > 0.95))
        img = mnist.x_test[ok[0]].astype(np.float32) / 255
        ys, xs = np.nonzero(img > 0.1)
        out[c] = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return out


def _page(inks: list[np.ndarray], gap: int, scale: int = 2) -> tuple[np.ndarray, list[int]]:
    """Inks (scaled up) side by side with ``gap`` px between them (negative: overlap), as
    dark ink on white paper (uint8); and the left edge of each digit."""
    big = [np.kron(i, np.ones((scale, scale), np.float32)) for i in inks]
    height = max(b.shape[0] for b in big)
    width = sum(b.shape[1] for b in big) + gap * (len(big) - 1) + 80
    ink = np.zeros((height + 60, width), np.float32)
    x, lefts = 40, []
    for b in big:
        top = 30 + (height - b.shape[0]) // 2
        region = ink[top : top + b.shape[0], x : x + b.shape[1]]
        np.maximum(region, b, out=region)
        lefts.append(x)
        x += b.shape[1] + gap
    return ink, lefts


def _paper(ink: np.ndarray) -> np.ndarray:
    return np.round((1 - ink) * 255).astype(np.uint8)


def test_spaced_number_is_read_with_a_box_per_digit(reader, clear_digits):
    ink, lefts = _page([clear_digits[c] for c in (2, 0, 2, 4)], gap=20)
    reading = read_image(reader, _paper(ink))
    assert reading.text == "2024"
    assert reading.reason is None and 0.5 < reading.confidence <= 1
    assert [d.digit for d in reading.digits] == [2, 0, 2, 4]
    # Each box holds its digit: it starts near where the digit was put.
    for digit, left in zip(reading.digits, lefts, strict=True):
        assert abs(digit.box[0] - left) <= 4
        assert len(digit.probabilities) == 10 and abs(sum(digit.probabilities) - 1) < 1e-3


def test_light_ink_on_dark_paper_reads_the_same(reader, clear_digits):
    ink, _ = _page([clear_digits[c] for c in (3, 8)], gap=20)
    assert read_image(reader, ink).text == "38"  # white ink on black, float


def test_digit_broken_into_pieces_is_one_digit(reader, clear_digits):
    seven, five = clear_digits[7].copy(), clear_digits[5].copy()
    for d in (seven, five):  # a gap across the middle of each digit
        mid = d.shape[0] // 2
        d[mid - 1 : mid + 2, :] = 0
    ink, _ = _page([clear_digits[1], seven, five], gap=20)
    reading = read_image(reader, _paper(ink))
    assert reading.text == "175"


def test_touching_digits_are_split(reader, clear_digits):
    ink, _ = _page([clear_digits[c] for c in (4, 0)], gap=-3)
    from scipy import ndimage

    assert ndimage.label(ink > 0.2, structure=np.ones((3, 3)))[1] == 1  # one blob of ink
    reading = read_image(reader, _paper(ink))
    assert reading.text == "40"


def test_digits_in_printed_boxes(reader, clear_digits):
    """One printed box per digit, as on a form: each digit centred in its own box, the
    boxes 6 px apart."""
    side, pitch = 54, 60
    ink = np.zeros((side + 40, 3 * pitch + 40), np.float32)
    for i, c in enumerate((6, 1, 9)):
        big = np.kron(clear_digits[c], np.ones((2, 2), np.float32))
        cx, cy = 20 + i * pitch + side // 2, ink.shape[0] // 2
        top, left = cy - big.shape[0] // 2, cx - big.shape[1] // 2
        region = ink[top : top + big.shape[0], left : left + big.shape[1]]
        np.maximum(region, big, out=region)
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        ink = np.maximum(ink, box_frame(ink.shape, box, thickness=2, contrast=0.9))
    assert read_image(reader, _paper(ink)).text == "619"


def test_blank_image_has_no_number(reader):
    reading = read_image(reader, np.full((80, 200), 255, np.uint8))
    assert reading.text is None and reading.confidence == 0
    assert reading.reason is not None and "no ink" in reading.reason


def test_page_without_digits_has_no_number(reader):
    lines = ruled_lines((200, 300), spacing=40, thickness=2, contrast=0.9)
    reading = read_image(reader, _paper(lines))
    assert reading.text is None and reading.reason
    # A scribble of random strokes is not made into a number either.
    rng = np.random.default_rng(0)
    noise = (rng.random((120, 300)) < 0.3).astype(np.float32)
    assert read_image(reader, _paper(noise)).text is None


def test_bad_input_is_refused(reader):
    with pytest.raises(ImageError):
        read_bytes(reader, b"not an image")
    with pytest.raises(ImageError):
        read_bytes(reader, b"")
    from mnistlab.errors import MnistlabError

    with pytest.raises(MnistlabError, match="2-D"):
        read_image(reader, np.zeros((4, 4, 3), np.uint8))


def test_annotate_draws_boxes(reader, clear_digits):
    ink, _ = _page([clear_digits[c] for c in (2, 7)], gap=20)
    page = _paper(ink)
    reading = read_image(reader, page)
    out = np.asarray(annotate(page, reading))
    assert out.shape[1] == page.shape[1] and out.shape[0] > page.shape[0]
    red = (out[..., 0] > 180) & (out[..., 1] < 90) & (out[..., 2] < 90)
    assert red.sum() > 50  # the boxes


def test_cli_read_json_annotate_and_exit_statuses(digit_run, clear_digits, tmp_path, capsys):
    ink, _ = _page([clear_digits[c] for c in (9, 3)], gap=20)
    number = tmp_path / "number.png"
    Image.fromarray(_paper(ink)).save(number)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((60, 120), 255, np.uint8)).save(blank)

    out_dir = tmp_path / "annotated"
    code = main(["read", str(digit_run.path), str(number), "--json", "--annotate", str(out_dir)])
    assert code == 0
    found = json.loads(capsys.readouterr().out)
    assert found["text"] == "93" and found["file"] == str(number)
    assert [d["digit"] for d in found["digits"]] == [9, 3]
    assert all(len(d["box"]) == 4 for d in found["digits"])
    with Image.open(out_dir / "number.read.png") as im:
        assert im.width == ink.shape[1]

    assert main(["read", str(digit_run.path), str(number), str(blank)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("93  (confidence " + lines[0].split("confidence ")[1])
    assert "no number" in lines[1] and "no ink" in lines[1]

    assert main(["read", str(digit_run.path), str(tmp_path / "missing.png")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_the_verifier_tells_whole_digits_from_pieces_and_pairs(reader, mnist):
    """On the reader's own cuts of numbers made of held-out digits (never trained on):
    whole digits pass, halves, pairs and line leftovers are flagged."""
    _, _, x_val, y_val = train_val_split(mnist.x_train, mnist.y_train, val_size=5000, seed=0)
    crops, feats, labels = [], [], []
    for layout in LAYOUTS:
        for item in compose_set(x_val, y_val, layout, 4, seed=3, owners=True):
            c, f, lab = labelled_crops(item)
            crops.append(c)
            feats.append(f)
            labels.append(lab)
    labels_all = np.concatenate(labels)
    assert reader.verifier is not None
    p = reader.verifier.probabilities(np.concatenate(crops), np.concatenate(feats))
    flagged = p[:, NOT_ONE_DIGIT] >= 0.5
    whole = labels_all != NOT_ONE_DIGIT
    assert whole.sum() >= 50 and (~whole).sum() >= 50
    assert (~flagged[whole]).mean() >= 0.8
    assert flagged[~whole].mean() >= 0.85


def test_the_verifier_is_kept_in_the_run_and_can_be_left_out(digit_run, reader):
    assert (digit_run.path / VERIFIER_FILE).is_file()
    again = NumberReader.from_run(digit_run.path)
    assert again.verifier is not None
    assert NumberReader.from_run(digit_run.path, verify=False).verifier is None


def test_upright_box_sides_are_not_read_as_ones(reader, clear_digits):
    """A form whose boxes lost their horizontal sides (or never had them): the straight
    bars taller than the digits between them are not digits."""
    ink, lefts = _page([clear_digits[c] for c in (2, 0, 5)], gap=30)
    for left in [*lefts, lefts[-1] + 70]:
        x = left - 12
        ink[10:-10, x : x + 3] = np.maximum(ink[10:-10, x : x + 3], 0.9)
    assert read_image(reader, _paper(ink)).text == "205"


def test_a_one_squeezed_between_touching_digits(reader, clear_digits):
    ink, _ = _page([clear_digits[c] for c in (4, 1, 6)], gap=-2)
    assert read_image(reader, _paper(ink)).text == "416"
