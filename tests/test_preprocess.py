"""Preprocessing: any image of a digit into MNIST form, and every bad input refused clearly."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistlab.cli import main
from mnistlab.predict.preprocess import (
    ImageError,
    load_image,
    preprocess_array,
    preprocess_image,
    to_png,
)


def draw_seven(size=(280, 280), width=18, ink=0, paper=255, mode="L") -> Image.Image:
    """A 7 drawn like on a canvas: asymmetric, so rotations and flips show."""
    im = Image.new(mode, size, paper)
    w, h = size
    pts = [(0.25 * w, 0.2 * h), (0.75 * w, 0.2 * h), (0.45 * w, 0.85 * h)]
    ImageDraw.Draw(im).line(pts, fill=ink, width=width, joint="curve")
    return im


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    data = encode(Image.new("L", (1, 1), 255))
    ihdr = bytearray(data[8 : 8 + 25])  # length(4) type(4) data(13) crc(4)
    ihdr[8:16] = struct.pack(">II", width, height)
    ihdr[21:25] = struct.pack(">I", zlib.crc32(bytes(ihdr[4:21])))
    return data[:8] + bytes(ihdr) + data[33:]


def best_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images, best over shifts of up to one pixel."""
    return max(
        np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def test_output_has_mnist_geometry():
    pre = preprocess_image(encode(draw_seven((400, 300))))
    img = pre.image
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert img.min() == 0 and img.max() == pytest.approx(1, abs=0.05)
    ys, xs = np.nonzero(img > 0.01)
    # The ink's bounding box: longer side 20 px (anti-aliasing may touch one more).
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (20, 21)
    # Centre of mass at the centre of the field, to within the half-pixel of an integer shift.
    yy, xx = np.mgrid[0:28, 0:28]
    cy, cx = (yy * img).sum() / img.sum(), (xx * img).sum() / img.sum()
    assert abs(cy - 13.5) <= 0.75 and abs(cx - 13.5) <= 0.75
    assert pre.polarity == "dark-on-light"


def test_real_mnist_digits_survive_a_round_trip(mnist):
    """An MNIST digit printed large, dark on light, off-centre, comes back as it was.

    Compared up to a one-pixel shift: centring by an integer shift (as MNIST did)
    may round the other way on a re-rendered copy.
    """

    corr = []
    for digit in mnist.x_test[:100]:
        big = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)
        page = Image.new("L", (500, 400), 255)
        page.paste(big, (150, 40))
        back = preprocess_image(encode(page)).image
        corr.append(best_corr(back, digit.astype(np.float32) / 255))
    assert np.median(corr) > 0.9, np.median(corr)
    assert np.min(corr) > 0.7, np.min(corr)


def test_both_polarities_give_the_same_image():
    dark_on_light = preprocess_image(encode(draw_seven()))
    light_on_dark = preprocess_image(encode(draw_seven(ink=255, paper=0)))
    assert light_on_dark.polarity == "light-on-dark"
    np.testing.assert_allclose(dark_on_light.image, light_on_dark.image, atol=0.02)


def test_exif_orientation_is_applied():
    upright = preprocess_image(encode(draw_seven((320, 240)), "JPEG", quality=95)).image
    # A camera stores the sensor's rows and a tag saying "turn 90 degrees clockwise".
    stored = draw_seven((320, 240)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = preprocess_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes())).image
    untagged = preprocess_image(encode(stored, "JPEG", quality=95)).image
    assert np.abs(tagged - upright).mean() < 0.02
    assert np.abs(untagged - upright).mean() > 0.05  # the tag made the difference


def test_transparent_16bit_cmyk_and_animated_images_are_handled():
    reference = preprocess_image(encode(draw_seven())).image
    rgba = draw_seven(ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA")  # ink on nothing
    sixteen = Image.fromarray((np.asarray(draw_seven(), np.uint16) * 257).astype(np.uint16))
    assert sixteen.mode.startswith("I;16")
    cmyk = draw_seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)).convert("CMYK")
    frames = [draw_seven().convert("P"), Image.new("P", (280, 280), 0)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    for data in (encode(rgba), encode(sixteen), encode(cmyk, "JPEG", quality=95), gif.getvalue()):
        np.testing.assert_allclose(preprocess_image(data).image, reference, atol=0.08)


def test_hairline_strokes_are_thickened_to_mnist_pen_width():
    thick = preprocess_image(encode(draw_seven((800, 800), width=70))).image
    hairline = preprocess_image(encode(draw_seven((800, 800), width=3))).image
    # A 3 px line on 800 px would shrink to a 0.1 px trace; thickened, it carries about
    # as much ink as a bold stroke does and is as bright.
    assert hairline.max() > 0.9
    assert 0.5 < hairline.sum() / thick.sum() < 2


def test_marks_inside_the_drawing_are_kept_and_specks_are_not():
    """A smiley keeps its eyes (without them it is a "0" to any digit model); a
    one-pixel speck inside a digit's box is still noise."""
    from scipy import ndimage

    smiley = Image.new("L", (224, 224), 255)
    draw = ImageDraw.Draw(smiley)
    draw.ellipse((20, 20, 204, 204), outline=0, width=10)
    for x in (80, 144):
        draw.ellipse((x - 9, 80, x + 9, 98), fill=0)
    draw.arc((70, 90, 154, 170), 20, 160, fill=0, width=10)
    image = preprocess_image(encode(smiley)).image
    assert ndimage.label(image > 0.3)[1] >= 3  # the face and its eyes (alone: 1)

    seven = draw_seven()
    ImageDraw.Draw(seven).point([(110, 150), (111, 150)], fill=0)
    with_speck = preprocess_image(encode(seven)).image
    assert ndimage.label(with_speck > 0.3)[1] == 1
    assert np.abs(with_speck - preprocess_image(encode(draw_seven())).image).max() < 0.05


def test_uneven_lighting_and_paper_texture_are_suppressed():
    rng = np.random.default_rng(0)
    seven = np.asarray(draw_seven((600, 450), width=8), np.float32) / 255
    shade = np.linspace(0.45, 1.0, 600)[np.newaxis, :]  # dark on the left, lit on the right
    photo = np.clip(200 * shade * seven + rng.normal(0, 6, seven.shape), 0, 255)
    pre = preprocess_image(encode(Image.fromarray(photo.astype(np.uint8)), "JPEG", quality=70))
    clean = preprocess_image(encode(draw_seven((600, 450), width=8))).image
    # The shadowed paper is not mistaken for ink: the result matches the clean drawing.
    assert best_corr(pre.image, clean) > 0.9


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (encode(draw_seven())[:300], "cannot decode"),  # truncated PNG
        (encode(draw_seven(), "JPEG")[:400], "cannot decode"),  # truncated JPEG
        (encode(Image.new("L", (100, 100), 255)), "blank"),
        (encode(Image.new("L", (100, 100), 0)), "blank"),
    ],
    ids=["empty", "not-image", "truncated-png", "truncated-jpeg", "white", "black"],
)
def test_bad_images_raise_one_clear_error(data, words):
    with pytest.raises(ImageError, match=words) as info:
        preprocess_image(data)
    assert "\n" not in str(info.value)
    assert not info.value.too_large


@pytest.mark.parametrize("side", [7000, 8000, 10000, 50000])
def test_decompression_bombs_are_refused_before_decoding(side):
    """In this project's words with its limit, not Pillow's (whose limit is 2x ours)."""
    with pytest.raises(ImageError, match="pixels") as info:
        load_image(png_claiming(side, side))
    assert info.value.too_large
    message = str(info.value)
    assert f"{side * side:,} pixels, over the limit of 40,000,000; send a smaller image" in message
    assert "decompression bomb" not in message


@pytest.mark.parametrize("pillow_limit", [None, 10**12])
def test_the_pixel_limit_holds_per_call_whatever_pillows_global_says(monkeypatch, pillow_limit):
    """The limit is this project's, checked on each call: Pillow's global guard may be
    off or raised by the user, and the bomb is still refused before decoding."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(ImageError, match="over the limit of 40,000,000") as info:
        load_image(png_claiming(50000, 50000))
    assert info.value.too_large
    with pytest.raises(ImageError, match="over the limit of 1,000"):
        load_image(png_claiming(100, 100), max_pixels=1000)


def test_importing_mnistlab_changes_no_pillow_setting():
    import subprocess
    import sys

    code = (
        "from PIL import Image; before = Image.MAX_IMAGE_PIXELS; "
        "import mnistlab.predict, mnistlab.predict.preprocess, mnistlab.serve; "
        "print(Image.MAX_IMAGE_PIXELS == before, before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    assert out.split()[0] == "True", out


def test_preprocess_array_validates_its_input():
    with pytest.raises(ImageError, match="2-D"):
        preprocess_array(np.zeros((3, 28, 28)))
    with pytest.raises(ImageError, match="NaN"):
        preprocess_array(np.full((28, 28), np.nan))


def test_to_png_round_trips():
    img = preprocess_image(encode(draw_seven())).image
    back = np.asarray(Image.open(io.BytesIO(to_png(img))), np.float32) / 255
    np.testing.assert_allclose(back, img, atol=1 / 255)
    assert Image.open(io.BytesIO(to_png(img, scale=4))).size == (112, 112)


def test_cli_preprocess_writes_the_28x28_png(tmp_path, capsys):
    src = tmp_path / "seven.png"
    src.write_bytes(encode(draw_seven()))
    out = tmp_path / "small.png"
    assert main(["preprocess", str(src), "--out", str(out)]) == 0
    assert Image.open(out).size == (28, 28)
    assert "dark-on-light" in capsys.readouterr().out
    assert set(tmp_path.iterdir()) == {src, out}  # no temporary files left behind


def test_cli_preprocess_reports_a_bad_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    assert main(["preprocess", str(bad), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an image" in err
    assert not (tmp_path / "x.png").exists()


# %% Clean-up before recognition ---------------------------------------------------------


def _png(page: np.ndarray) -> bytes:
    return encode(Image.fromarray(page))


def test_cleanup_leaves_ordinary_photos_of_digits_alone(mnist):
    """No lines on the page: the same 28x28 image with clean-up as without (nearly)."""
    from mnistlab.robustness.paper import render_page

    diffs = []
    for i, digit in enumerate(mnist.x_test[:12]):
        data = _png(render_page(digit, "plain", seed=0, index=i))
        with_cleanup = preprocess_image(data).image
        without = preprocess_image(data, cleanup=False).image
        diffs.append(np.abs(with_cleanup - without).sum() / without.sum())
    assert np.median(diffs) < 0.01 and max(diffs) < 0.1, diffs
    seven = encode(draw_seven((800, 800), width=3))  # a hairline 7: its bar is not a line
    assert (
        best_corr(preprocess_image(seven).image, preprocess_image(seven, cleanup=False).image)
        > 0.95
    )


@pytest.mark.parametrize("layout", ["box-touching", "ruled-touching", "squared", "edge-touching"])
def test_a_digit_on_paper_is_read_as_without_the_lines(digit_run, mnist, layout):
    """Boxed, on ruled or squared paper, by a scanner's edge, touching the line:
    the model reads what it reads on the same page with nothing printed."""
    from mnistlab.predict import load_predictor
    from mnistlab.robustness.paper import render_page

    predictor = load_predictor(digit_run.path)
    digits = range(8)
    pages = {
        name: [_png(render_page(mnist.x_test[i], name, 0, i)) for i in digits]
        for name in ("plain", layout)
    }

    def read(name: str, cleanup: bool = True) -> np.ndarray:
        images = [preprocess_image(p, cleanup=cleanup).image for p in pages[name]]
        return predictor.probabilities(np.stack(images)).argmax(axis=1)

    plain = read("plain")
    assert (read(layout) == plain).sum() >= 7
    assert (read(layout, cleanup=False) == plain).sum() <= 6  # the lines did matter


def test_light_bands_at_the_sides_do_not_turn_the_polarity(digit_run, mnist):
    """MNIST-C's stripe: the outer quarters inverted (light bands on a dark page)."""
    from mnistlab.predict import load_predictor
    from mnistlab.robustness import corrupt

    digits, labels = mnist.x_test[:20], mnist.y_test[:20]
    striped = corrupt(digits, "stripe", seed=0)
    pre = [preprocess_image(to_png(image / 255)) for image in striped]
    assert all(p.polarity == "light-on-dark" for p in pre)
    predicted = load_predictor(digit_run.path).probabilities(np.stack([p.image for p in pre]))
    assert (predicted.argmax(axis=1) == labels).mean() >= 0.6


def test_a_line_across_a_28x28_digit_does_not_shrink_it(digit_run, mnist):
    """MNIST-C's zigzag: lines across the whole 28x28 field, touching the digit.
    Through predict the digit is read about as well as the model reads the array
    (cropping to the lines' extent had shrunk the digit: ~55% right)."""
    from mnistlab.predict import load_predictor
    from mnistlab.robustness import corrupt

    digits, labels = mnist.x_test[:200], mnist.y_test[:200]
    crossed = corrupt(digits, "zigzag", seed=0)
    predictor = load_predictor(digit_run.path)
    on_arrays = (predictor.probabilities(crossed / 255).argmax(axis=1) == labels).mean()
    pre = np.stack([preprocess_image(to_png(image / 255)).image for image in crossed])
    through_predict = (predictor.probabilities(pre).argmax(axis=1) == labels).mean()
    assert through_predict >= on_arrays - 0.05, (through_predict, on_arrays)
    # An MNIST digit with nothing across it is still brought to MNIST's geometry.
    plain = preprocess_image(to_png(digits[0] / 255)).image
    ys, xs = np.nonzero(plain > 0.1)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 21
