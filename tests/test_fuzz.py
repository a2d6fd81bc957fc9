"""Property-based tests (Hypothesis) of the two parsers that read files users hand us.

- ``mnistlab.data.read_idx``: random headers, dimensions, truncation, gzip damage.
  Always a clean ``MnistlabError`` or the right array; never another exception,
  and never an allocation sized by what a header claims instead of what the
  file holds.
- ``mnistlab.predict.preprocess``: random sizes, Pillow modes (L, RGB, RGBA, LA, P, I;16,
  CMYK, 1), formats, polarity, alpha, truncation. Always a 28x28 float32 image
  in [0, 1] or a clean ``MnistlabError``.

Each property runs a fixed number of examples from a fixed seed
(``derandomize=True``), so CI runs the same cases every time, with no example
database written to disk.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mnistlab.data import read_idx
from mnistlab.errors import MnistlabError
from mnistlab.predict.preprocess import preprocess_array, preprocess_image

FUZZ = settings(
    deadline=None,  # a loaded CI machine must not turn slowness into failures
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Module-scoped: Hypothesis runs many examples per test call.
    return tmp_path_factory.mktemp("fuzz")


# %% The IDX reader --------------------------------------------------------------------

# Dimension sizes a header may claim: small real ones, and absurd ones (up to 2**32-1).
_SMALL_DIMS = st.integers(0, 12)
_ANY_DIMS = st.one_of(_SMALL_DIMS, st.sampled_from([28, 255, 2**16, 2**31, 2**32 - 1]))
_FLAWS = (
    "magic",  # not 0x0000
    "type",  # not uint8
    "ndim",  # not 1 or 3
    "huge-dims",  # a header claiming far more than the file holds
    "short",  # fewer data bytes than claimed
    "long",  # trailing bytes
    "cut",  # file cut anywhere, header included
    "gzip-cut",
    "gzip-flip",
    "gzip-append",
    "noise",  # random bytes
)


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[bytes, np.ndarray | None]:
    """(file bytes, the array they must decode to, or None if they are invalid).

    Half the files are valid (raw or gzipped); the other half have one flaw each.
    """
    flaw = draw(st.sampled_from((None,) * len(_FLAWS) + _FLAWS))
    if flaw == "noise":
        return draw(st.binary(max_size=200)), None

    magic = b"\x00\x00"
    if flaw == "magic":
        magic = draw(st.sampled_from([b"\x00\x01", b"\x01\x00", b"PK", b"\x1f\x00"]))
    type_code = 0x08
    if flaw == "type":
        type_code = draw(st.sampled_from([0x00, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF]))
    ndim = draw(st.sampled_from([1, 3]))
    if flaw == "ndim":
        ndim = draw(st.sampled_from([0, 2, 4, 5, 255]))
    dims = draw(
        st.lists(
            _ANY_DIMS if flaw == "huge-dims" else _SMALL_DIMS,
            min_size=min(ndim, 6),
            max_size=min(ndim, 6),
        )
    )
    header = magic + bytes([type_code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    claimed = math.prod(dims)
    n = claimed if claimed <= 2000 else draw(st.integers(0, 300))
    if flaw == "short" and claimed:
        n = draw(st.integers(0, min(claimed, 2000) - 1))
    elif flaw == "long":
        n = min(claimed, 2000) + draw(st.integers(1, 50))
    body = draw(st.binary(min_size=n, max_size=n))
    content = header + body
    if flaw == "cut":
        content = content[: draw(st.integers(0, len(content) - 1))]
    valid = (
        flaw is None or (flaw == "huge-dims" and n == claimed) or (flaw == "short" and n == claimed)
    )
    expected = np.frombuffer(body, np.uint8).reshape(dims) if valid else None

    if (flaw is not None and flaw.startswith("gzip")) or draw(st.booleans()):
        packed = gzip.compress(content, compresslevel=1)
        if flaw == "gzip-cut":
            packed = packed[: draw(st.integers(0, len(packed) - 1))]
        elif flaw == "gzip-flip":
            at = draw(st.integers(0, len(packed) - 1))
            packed = (
                packed[:at] + bytes([packed[at] ^ draw(st.integers(1, 255))]) + packed[at + 1 :]
            )
        elif flaw == "gzip-append":
            packed += draw(st.binary(min_size=1, max_size=20))
        content = packed
    return content, expected


# The example the issue names: a header claiming 2**31 rows in a 100-byte file.
_HUGE_CLAIM = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 28, 28) + bytes(84)


@settings(FUZZ, max_examples=300)
@given(case=idx_files())
@example(case=(_HUGE_CLAIM, None))
@example(case=(gzip.compress(_HUGE_CLAIM), None))
def test_read_idx_returns_the_array_or_a_clean_error(
    scratch: Path, case: tuple[bytes, np.ndarray | None]
) -> None:
    content, expected = case
    path = scratch / "fuzz-idx-ubyte"
    path.write_bytes(content)

    tracemalloc.start()
    try:
        try:
            got = read_idx(path)
        except MnistlabError as err:
            got, message = None, str(err)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Memory follows the bytes present (a small file inflates to little), never the
    # header's claim: these files are at most a few kB, so 2 MiB is a generous bound.
    assert peak < 2 * 2**20, f"read_idx used {peak} bytes on a {len(content)}-byte file"
    if got is None:
        assert "\n" not in message and str(path) in message  # one line, naming the file
        assert expected is None, f"a valid IDX file was rejected: {message}"
        event("rejected")  # --hypothesis-show-statistics shows the mix
    else:
        assert got.dtype == np.uint8 and got.ndim in (1, 3)
        assert got.flags.writeable
        if expected is not None:
            np.testing.assert_array_equal(got, expected)
        event("decoded")


# %% Image preprocessing --------------------------------------------------------------

MODES = ("L", "RGB", "RGBA", "LA", "P", "I;16", "CMYK", "1")
# Formats Pillow can write each mode in.
FORMATS = {
    "L": ("PNG", "JPEG", "BMP", "TIFF", "GIF"),
    "RGB": ("PNG", "JPEG", "BMP", "TIFF", "WEBP"),
    "RGBA": ("PNG", "TIFF", "WEBP"),
    "LA": ("PNG", "TIFF"),
    "P": ("PNG", "GIF", "BMP"),
    "I;16": ("PNG", "TIFF"),
    "CMYK": ("JPEG", "TIFF"),
    "1": ("PNG", "BMP", "TIFF"),
}


@st.composite
def image_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """Encoded images of (maybe) a digit: (file bytes, description for failures)."""
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS[mode]))
    # Mostly small; sometimes long and thin or larger than the 512 px working size.
    width = draw(st.one_of(st.integers(1, 64), st.integers(65, 700)))
    height = draw(st.one_of(st.integers(1, 64), st.integers(65, 700)))
    if width * height > 250_000:
        height = max(1, 250_000 // width)
    paper = draw(st.integers(0, 255))
    ink = draw(st.integers(0, 255))  # may equal the paper: a blank page

    gray = Image.new("L", (width, height), paper)
    pen = ImageDraw.Draw(gray)
    for _ in range(draw(st.integers(0, 4))):
        xy = [draw(st.floats(-0.2, 1.2)) * width, draw(st.floats(-0.2, 1.2)) * height]
        xy += [draw(st.floats(-0.2, 1.2)) * width, draw(st.floats(-0.2, 1.2)) * height]
        pen.line(xy, fill=ink, width=draw(st.integers(1, max(1, min(width, height) // 4))))
    arr = np.asarray(gray, dtype=np.float64)
    noise = draw(st.sampled_from([0.0, 0.0, 8.0, 60.0]))
    if noise:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        arr = arr + rng.normal(0, noise, arr.shape)
    arr = np.clip(arr, 0, 255)

    alpha_kind = draw(st.sampled_from(["opaque", "transparent", "ink-only", "gradient"]))
    if alpha_kind == "opaque":
        alpha = np.full(arr.shape, 255.0)
    elif alpha_kind == "transparent":
        alpha = np.zeros(arr.shape)
    elif alpha_kind == "ink-only":  # a drawing exported on a transparent background
        alpha = np.where(np.abs(arr - paper) > 20, 255.0, 0.0)
    else:
        alpha = np.linspace(0, 255, arr.size).reshape(arr.shape)

    u8 = arr.astype(np.uint8)
    rgb = np.stack([u8, np.roll(u8, 1, axis=1), u8], axis=-1)  # a little colour fringe
    if mode == "L":
        im = Image.fromarray(u8)
    elif mode == "RGB":
        im = Image.fromarray(rgb)
    elif mode == "RGBA":
        im = Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8)]))
    elif mode == "LA":
        im = Image.fromarray(np.dstack([u8, alpha.astype(np.uint8)])).convert("LA")
    elif mode == "P":
        im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
        if alpha_kind != "opaque":
            im.info["transparency"] = int(np.asarray(im)[0, 0])
    elif mode == "I;16":
        im = Image.fromarray((arr * 257).astype(np.uint16))
    elif mode == "CMYK":
        im = Image.fromarray(rgb).convert("CMYK")
    else:
        im = Image.fromarray(u8).convert("1")

    buf = io.BytesIO()
    im.save(buf, format=fmt)
    data = buf.getvalue()
    cut = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(data) - 1)))
    if cut is not None:
        data = data[:cut]
    return (
        data,
        f"{mode} {fmt} {width}x{height} paper={paper} ink={ink} alpha={alpha_kind} cut={cut}",
    )


def assert_mnist_form(image: np.ndarray) -> None:
    assert image.shape == (28, 28)
    assert image.dtype == np.float32
    assert np.isfinite(image).all()
    assert image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # truncated TIFFs
@settings(FUZZ, max_examples=150)
@given(case=image_files())
def test_preprocess_image_gives_mnist_form_or_a_clean_error(case: tuple[bytes, str]) -> None:
    data, what = case
    try:
        result = preprocess_image(data)
    except MnistlabError as err:
        assert str(err) and "\n" not in str(err), what
        event("rejected")
        return
    event("preprocessed")
    assert_mnist_form(result.image)
    assert result.polarity in ("dark-on-light", "light-on-dark"), what


@settings(FUZZ, max_examples=150)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 80), st.integers(1, 80)),
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),  # not 2-D
        st.just((0, 5)),
    ),
    dtype=st.sampled_from(["uint8", "float32", "float64"]),
    special=st.sampled_from(["none", "none", "nan", "inf", "out-of-range"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_preprocess_array_gives_mnist_form_or_a_clean_error(
    shape: tuple[int, ...], dtype: str, special: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        gray = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        # A bright blob on a dark field, or plain noise: both are legitimate inputs.
        gray = rng.random(shape).astype(dtype)
        if special == "nan" and gray.size:
            gray.flat[rng.integers(gray.size)] = np.nan
        elif special == "inf" and gray.size:
            gray.flat[rng.integers(gray.size)] = np.inf
        elif special == "out-of-range":
            gray = (gray * 4 - 2).astype(dtype)
    try:
        result = preprocess_array(gray)
    except MnistlabError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert_mnist_form(result.image)
