"""Make the labelled sample images in samples/<digit>/ (not MNIST; made by this script).

Five kinds of images per digit, each made the way such an image arises in use:

- ``font-*``: the digit typed in a system font (DejaVu / Liberation), then
  printed-and-scanned: slight rotation and perspective, blur, paper grain, JPEG.
- ``canvas-*``: a drawing on an HTML canvas: a hand-like skeleton of the digit
  (polylines and arcs with jitter and slant) stroked with a round pen at one of
  several thicknesses, saved as PNG (some with a transparent background).
- ``chalk-*``: light ink on a dark board (light-on-dark), noisy, blurred.
- ``photo-*``: a phone photo of paper: 800x600, the digit off-centre and small,
  uneven lighting, paper texture, a JPEG whose pixels are stored rotated with an
  EXIF orientation tag that says how to turn them upright.
- a few in formats that trip up naive loaders: 16-bit grayscale PNG, CMYK JPEG,
  an animated GIF (the first frame is the digit).

Deterministic (seeded); run from the repository root::

    .venv/bin/python tools/make_samples.py            # rewrites samples/
    .venv/bin/python tools/make_samples.py --out DIR  # elsewhere

It also writes samples/README.md, listing how each file was made. The typed
digits need Debian's fonts-dejavu-core and fonts-liberation (the committed
samples do not: tests only read them). Same seed, same fonts: same bytes.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
# One font per digit for the typed kind, so ten different faces appear. Fonts whose
# '1' has a base serif or whose '4' is open at the top are legitimate variation.
FONTS = (
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "DejaVuSans-Bold.ttf",
    "LiberationSerif-Regular.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "LiberationSansNarrow-Regular.ttf",
    "DejaVuSans-Oblique.ttf",
    "LiberationSans-Italic.ttf",
)

Point = tuple[float, float]


# %% Digit skeletons: strokes in a unit box (x right, y down), like a person writes them


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24):
    """Points on an elliptical arc from angle a0 to a1 (degrees, y down: 90 = bottom)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(a0, a1, n)
    ]


def skeleton(digit: int, style: int = 0) -> list[list[Point]]:
    """The strokes of a handwritten ``digit`` as polylines in the unit square.

    ``style`` 1 picks another common way of writing some digits: a 7 with a
    crossbar, an open-topped 4, a 1 without a flag, a 9 with a curved tail, a 2
    with a loop.
    """
    if style == 1 and digit in ALTERNATES:
        return ALTERNATES[digit]()
    if digit == 0:
        return [_arc(0.5, 0.5, 0.3, 0.45, -100, 265, 40)]
    if digit == 1:
        return [[(0.38, 0.2), (0.56, 0.04), (0.5, 0.96)]]
    if digit == 2:
        return [
            _arc(0.5, 0.3, 0.3, 0.25, 200, 370, 20)
            + [(0.62, 0.6), (0.38, 0.8), (0.15, 0.95), (0.85, 0.94)]
        ]
    if digit == 3:
        return [
            _arc(0.47, 0.27, 0.28, 0.22, 200, 450, 24) + _arc(0.47, 0.72, 0.31, 0.24, -90, 160, 24)
        ]
    if digit == 4:
        return [[(0.55, 0.04), (0.14, 0.64), (0.9, 0.64)], [(0.66, 0.3), (0.66, 0.97)]]
    if digit == 5:
        return [
            [(0.82, 0.05), (0.32, 0.05), (0.27, 0.45)] + _arc(0.48, 0.68, 0.32, 0.27, -125, 150, 24)
        ]
    if digit == 6:
        return [
            [(0.72, 0.04), (0.48, 0.2), (0.3, 0.45)] + _arc(0.5, 0.72, 0.24, 0.24, 195, 550, 36)
        ]
    if digit == 7:
        return [[(0.12, 0.07), (0.88, 0.07), (0.42, 0.97)]]
    if digit == 8:
        return [
            _arc(0.5, 0.27, 0.22, 0.22, 90, 450, 30),
            _arc(0.5, 0.72, 0.27, 0.24, -90, 270, 30),
        ]
    if digit == 9:
        return [_arc(0.47, 0.3, 0.26, 0.24, 0, 360, 30) + [(0.73, 0.3), (0.68, 0.97)]]
    raise ValueError(digit)


ALTERNATES: dict[int, Callable[[], list[list[Point]]]] = {
    1: lambda: [[(0.52, 0.03), (0.48, 0.97)]],
    2: lambda: [
        _arc(0.5, 0.3, 0.3, 0.25, 200, 370, 20)
        + [(0.55, 0.65), (0.2, 0.92)]
        + _arc(0.27, 0.86, 0.1, 0.08, 90, 330, 10)
        + [(0.5, 0.9), (0.88, 0.95)]
    ],
    4: lambda: [[(0.22, 0.03), (0.15, 0.58), (0.85, 0.58)], [(0.7, 0.05), (0.7, 0.97)]],
    7: lambda: [[(0.1, 0.08), (0.88, 0.06), (0.4, 0.97)], [(0.3, 0.5), (0.8, 0.5)]],
    9: lambda: [_arc(0.45, 0.28, 0.27, 0.23, 0, 360, 30) + _arc(0.3, 0.3, 0.42, 0.67, 0, 100, 14)],
}


def draw_skeleton(
    digit: int,
    rng: np.random.Generator,
    size: tuple[int, int],
    box: tuple[float, float, float, float],
    width: float,
    ink: int | tuple[int, ...],
    paper: int | tuple[int, ...],
    mode: str = "L",
    jitter: float = 0.025,
    style: int = 0,
) -> Image.Image:
    """Stroke the digit's skeleton, jittered, slanted, tilted, into ``box`` (left, top, w, h) px."""
    im = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(im)
    left, top, bw, bh = box
    slant = rng.uniform(-0.3, 0.15)  # x shift per unit of height (italic writing)
    tilt = math.radians(rng.uniform(-12, 12))  # the whole digit turned a little
    wobble = rng.normal(0, jitter, size=(2, 8))  # smooth low-frequency hand tremor
    for stroke in skeleton(digit, style):
        pts = []
        for i, (x, y) in enumerate(stroke):
            t = i / max(len(stroke) - 1, 1)
            dx = sum(wobble[0, k] * math.sin((k + 1) * math.pi * t) for k in range(8)) / 3
            dy = sum(wobble[1, k] * math.sin((k + 1) * math.pi * t) for k in range(8)) / 3
            x2, y2 = x + dx + slant * (0.5 - y) - 0.5, y + dy - 0.5
            # Rotate about the box centre, in pixel units so the aspect ratio is kept.
            px, py = x2 * bw, y2 * bh
            rx = px * math.cos(tilt) - py * math.sin(tilt)
            ry = px * math.sin(tilt) + py * math.cos(tilt)
            pts.append((left + bw / 2 + rx, top + bh / 2 + ry))
        draw.line(pts, fill=ink, width=max(1, round(width)), joint="curve")
        r = width / 2  # round caps: a pen is round
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - r, py - r, px + r, py + r), fill=ink)
    return im


# %% Surfaces and camera effects --------------------------------------------------------


def paper_texture(rng: np.random.Generator, size: tuple[int, int], level: float, grain: float):
    """Float (H, W) paper: ``level`` brightness, fine grain and soft blotches."""
    w, h = size
    fine = rng.normal(0, grain, (h, w))
    coarse = Image.fromarray(rng.normal(0, 1, (max(h // 40, 2), max(w // 40, 2))).astype("f"))
    coarse = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC)) * grain * 1.5
    return level + fine + coarse


def lighting(rng: np.random.Generator, size: tuple[int, int], strength: float) -> np.ndarray:
    """Multiplicative uneven lighting: a linear gradient plus a soft shadow corner."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * math.pi)
    grad = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    grad = (grad - grad.min()) / max(np.ptp(grad), 1e-6)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    shadow = np.exp(-(((xx - cx) / (0.6 * w)) ** 2 + ((yy - cy) / (0.6 * h)) ** 2))
    return 1 - strength * (0.6 * grad + 0.4 * shadow)


def perspective(im: Image.Image, rng: np.random.Generator, amount: float, fill) -> Image.Image:
    """A mild keystone: the four corners moved by up to ``amount`` of the size."""
    w, h = im.size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [
        (x + rng.uniform(-amount, amount) * w, y + rng.uniform(-amount, amount) * h) for x, y in src
    ]
    coeffs = _perspective_coeffs(dst, src)
    return im.transform(
        im.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=fill
    )


def _perspective_coeffs(src: list[Point], dst: list[Point]) -> list[float]:
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=float)
    b = np.array([c for p in dst for c in p], dtype=float)
    return np.linalg.solve(a, b).tolist()


def to_u8(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


def jpeg(im: Image.Image, quality: int, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, **kw)
    return buf.getvalue()


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# %% The five kinds -----------------------------------------------------------------------


def font_image(digit: int, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """Typed in a font, printed and scanned."""
    font_name = FONTS[digit]
    path = next(d / font_name for d in FONT_DIRS if (d / font_name).is_file())
    size = 300
    font = ImageFont.truetype(str(path), 200)
    im = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(im)
    draw.text((size / 2, size / 2), str(digit), font=font, fill=20, anchor="mm")
    im = im.rotate(rng.uniform(-8, 8), Image.Resampling.BICUBIC, fillcolor=255)
    im = perspective(im, rng, 0.04, 255)
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.0)))
    arr = np.asarray(im, float) / 255
    paper = paper_texture(rng, im.size, 235, 6)
    out = to_u8(arr * paper)
    quality = int(rng.integers(40, 80))
    how = (
        f"'{digit}' typed in {font_name}, rotated, keystoned, blurred, on grainy paper, "
        f"JPEG q{quality}"
    )
    return jpeg(out, quality), "jpg", how


def canvas_image(
    digit: int, rng: np.random.Generator, variant: int, alternate: bool = False
) -> tuple[bytes, str, str]:
    """A drawing on a 280x280 canvas with a round pen."""
    width = (8, 16, 26)[variant % 3]
    scale = rng.uniform(0.55, 0.8)
    bh = 280 * scale
    bw = bh * rng.uniform(0.55, 0.75)
    left = rng.uniform(10, 270 - bw)
    top = rng.uniform(10, 270 - bh)
    transparent = variant == 1
    style = 1 if alternate else 0
    if transparent:
        im = draw_skeleton(
            digit,
            rng,
            (280, 280),
            (left, top, bw, bh),
            width,
            (0, 0, 0, 255),
            (0, 0, 0, 0),
            "RGBA",
            style=style,
        )
        how = f"canvas drawing, {width} px round pen, black on a transparent background, PNG"
    else:
        color = tuple(int(c) for c in rng.integers(0, 90, 3))
        im = draw_skeleton(
            digit,
            rng,
            (280, 280),
            (left, top, bw, bh),
            width,
            color,
            (255, 255, 255),
            "RGB",
            style=style,
        )
        how = f"canvas drawing, {width} px round pen, colour {color} on white, PNG"
    if alternate and digit in ALTERNATES:
        how += " (another way of writing it)"
    return png(im), "png", how


def chalk_image(digit: int, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """Light chalk on a dark board."""
    w, h = 400, 320
    bh = rng.uniform(150, 230)
    bw = bh * rng.uniform(0.55, 0.7)
    box = (rng.uniform(20, w - bw - 20), rng.uniform(20, h - bh - 20), bw, bh)
    width = rng.uniform(10, 18)
    im = draw_skeleton(digit, rng, (w, h), box, width, 255, 0)
    im = im.filter(ImageFilter.GaussianBlur(1.5))
    strokes = np.asarray(im, float) / 255
    # Chalk is patchy: the stroke's brightness varies along it.
    patchy = 0.65 + 0.35 * rng.random(strokes.shape)
    board = paper_texture(rng, (w, h), 45, 8)
    arr = board + strokes * patchy * 180
    tint = np.array([0.8, 1.0, 0.85])  # a green board
    rgb = np.clip(arr[..., None] * tint, 0, 255).astype(np.uint8)
    quality = int(rng.integers(60, 85))
    how = (
        f"light-on-dark: chalk ({width:.0f} px, patchy) on a dark green board, noise, "
        f"JPEG q{quality}"
    )
    return jpeg(Image.fromarray(rgb), quality), "jpg", how


def photo_image(digit: int, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """A phone photo of a digit written on paper, stored rotated with an EXIF tag."""
    w, h = 800, 600
    bh = rng.uniform(120, 260)
    bw = bh * rng.uniform(0.55, 0.7)
    # Off-centre: anywhere on the page with a margin.
    box = (rng.uniform(40, w - bw - 40), rng.uniform(40, h - bh - 40), bw, bh)
    pen = rng.uniform(3, 7)  # a ballpoint or felt pen: thin relative to the digit
    im = draw_skeleton(digit, rng, (w, h), box, pen, 255, 0)
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    ink = np.asarray(im, float) / 255
    paper = paper_texture(rng, (w, h), 225, 5) * lighting(rng, (w, h), rng.uniform(0.25, 0.45))
    pen_name, ink_color = (
        ("blue ballpoint", np.array([30, 35, 90])),
        ("black felt pen", np.array([25, 25, 25])),
        ("pencil", np.array([105, 105, 110])),  # grey and low-contrast
    )[digit % 3]
    rgb = paper[..., None] * (1 - ink[..., None]) + ink[..., None] * ink_color
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    # The camera stores the sensor's rows; orientation 6 says "turn 90 degrees clockwise".
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    quality = int(rng.integers(55, 75))
    how = (
        f"phone photo: 800x600, off-centre, {pen:.1f} px {pen_name}, uneven lighting, "
        f"paper texture, stored rotated with EXIF orientation 6, JPEG q{quality}"
    )
    return jpeg(stored, quality, exif=exif), "jpg", how


# Formats that trip up naive loaders, and the digits that get one.
SPECIAL_FORMATS = {0: "png16", 1: "cmyk", 2: "gif", 5: "cmyk", 7: "png16", 9: "gif"}


def special_image(digit: int, rng: np.random.Generator, kind: str) -> tuple[bytes, str, str]:
    """A canvas-style drawing in a tricky format: 16-bit PNG, CMYK JPEG or animated GIF."""
    im = draw_skeleton(digit, rng, (280, 300), (60, 40, 150, 220), 18, 0, 255)
    if kind == "png16":
        out = Image.fromarray((np.asarray(im, np.uint16) * 257).astype(np.uint16))  # I;16
        return png(out), "png", "16-bit grayscale PNG (values 0..65535), canvas-style drawing"
    if kind == "cmyk":
        cmyk = im.convert("RGB").convert("CMYK")
        return (
            jpeg(cmyk, 85),
            "jpg",
            "CMYK JPEG (as print workflows save them), canvas-style drawing",
        )
    frames = [im.convert("P")]
    for _ in range(2):  # later frames: a slash, not the digit
        other = Image.new("L", im.size, 255)
        ImageDraw.Draw(other).line([(20, 20), (260, 280)], fill=0, width=30)
        frames.append(other.convert("P"))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=300, loop=0)
    return (
        buf.getvalue(),
        "gif",
        "animated GIF, 3 frames: the first is the digit, later ones a slash",
    )


def make_samples(out: Path, seed: int = 6) -> list[tuple[Path, str]]:
    """Write every sample under ``out``/<digit>/ and return (path, how) pairs."""
    rng = np.random.default_rng(seed)
    made: list[tuple[Path, str]] = []
    makers: list[tuple[str, Callable[[int], tuple[bytes, str, str]]]] = [
        ("font", lambda d: font_image(d, rng)),
        ("canvas-a", lambda d: canvas_image(d, rng, d)),
        ("canvas-b", lambda d: canvas_image(d, rng, d + 1, alternate=True)),
        ("chalk", lambda d: chalk_image(d, rng)),
        ("photo", lambda d: photo_image(d, rng)),
    ]
    for digit in range(10):
        for name, maker in makers:
            data, ext, how = maker(digit)
            made.append((_write(out, digit, name, ext, data), how))
        if digit in SPECIAL_FORMATS:
            data, ext, how = special_image(digit, rng, SPECIAL_FORMATS[digit])
            made.append((_write(out, digit, "format", ext, data), how))
    return made


def _write(out: Path, digit: int, name: str, ext: str, data: bytes) -> Path:
    path = out / str(digit) / f"{name}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_readme(out: Path, made: list[tuple[Path, str]]) -> None:
    lines = [
        "# Sample digits (not from MNIST)",
        "",
        "Labelled handwritten-style digit images made by `tools/make_samples.py`",
        "(deterministic; rerun it to regenerate this folder). The folder name is the",
        "label, so `mnistlab predict RUN samples/` reports accuracy.",
        "",
        f"{len(made)} images, {sum(p.stat().st_size for p, _ in made) / 1e6:.2f} MB.",
        "",
        "| file | label | how it was made |",
        "| --- | --- | --- |",
    ]
    for path, how in made:
        rel = path.relative_to(out)
        lines.append(f"| `{rel}` | {rel.parts[0]} | {how} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("samples"))
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    made = make_samples(args.out, args.seed)
    write_readme(args.out, made)
    print(f"wrote {len(made)} samples to {args.out}")


if __name__ == "__main__":
    main()
