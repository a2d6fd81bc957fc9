"""The drawing page in a real headless Chromium (Playwright), against a real server.

Chromium comes from Debian (`chromium`, installed by .ci/run), never from
`playwright install`. The screenshot goes to the test's tmp dir; with
MNISTLAB_UPDATE_SCREENSHOT=1 it also replaces docs/serve-page.png (the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MNISTLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow  # starts a server with the session's trained model


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, digit_server):
    context = browser.new_context(viewport={"width": 820, "height": 560})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{digit_server}/")
    page.wait_for_function("document.getElementById('model').textContent.includes('MNIST')")
    yield page
    context.close()
    assert not errors, errors  # no JavaScript errors on the page


def stroke(page, points, steps=12):
    """Press, drag through ``points`` (canvas pixels), release: one stroke of the pen."""
    box = page.locator("#pad").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    (x0, y0), rest = points[0], points[1:]
    page.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
    page.mouse.down()
    for x, y in rest:
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=steps)
    page.mouse.up()


def wait_for_stroke(page, n):
    """Wait until the prediction shown belongs to the drawing after stroke ``n``."""
    page.wait_for_function(
        f"document.getElementById('result').dataset.forStroke === '{n}'", timeout=15000
    )


def test_drawing_a_seven_shows_seven(page, tmp_path):
    stroke(page, [(70, 60), (210, 58)])  # the bar
    wait_for_stroke(page, 1)
    stroke(page, [(210, 58), (170, 140), (130, 235)])  # the diagonal
    wait_for_stroke(page, 2)

    assert page.locator("#digit").inner_text() == "7"
    assert "% sure" in page.locator("#prob").inner_text()
    best = page.locator(".bar-row.best span").first.inner_text()
    assert best == "7"
    # The 28x28 view shows what the model saw: ink (white) on black.
    lit = page.evaluate(
        "Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert 30 < lit < 400

    shot = tmp_path / "serve-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("MNISTLAB_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "serve-page.png")


def test_clear_and_upload(page):
    stroke(page, [(140, 50), (140, 230)])
    wait_for_stroke(page, 1)
    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"

    page.set_input_files("#file", str(ROOT / "samples" / "3" / "photo.jpg"))
    page.wait_for_function("document.getElementById('digit').textContent === '3'", timeout=15000)
    assert page.locator("#error").inner_text() == ""


def test_upload_of_a_non_image_shows_the_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "not an image" in page.locator("#error").inner_text()
