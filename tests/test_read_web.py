"""The drawing page's number mode in a real headless Chromium (Playwright), on a real server.

Write a number with the mouse on the wide pad, have it read by ``POST /v1/read``,
see the number, one box per digit drawn over the writing, and each digit listed.
The browser set-up is tests/test_web.py's (Debian's Chromium, never
``playwright install``). The screenshot goes to the test's tmp dir; with
MNISTLAB_UPDATE_SCREENSHOT=1 it also replaces docs/serve-read-page.png (docs/serving.md's).
"""

from __future__ import annotations

import os
import shutil

import pytest
from test_read_serve import compose, png
from test_web import CHROMIUM, CHROMIUM_ARGS, ROOT

pytestmark = pytest.mark.slow  # the session's trained model behind a real server

PAD_WIDTH, PAD_HEIGHT = 960, 240  # the pad's drawing area (canvas pixels)


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
    context = browser.new_context(viewport={"width": 820, "height": 700})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{digit_server}/")
    page.wait_for_function("document.getElementById('model').textContent.includes('MNIST')")
    yield page
    context.close()
    assert not errors, errors  # no JavaScript errors on the page


def stroke(page, points, steps=10):
    """Press, drag through ``points`` (pad pixels), release: one stroke of the pen."""
    box = page.locator("#numpad").bounding_box()
    sx, sy = box["width"] / PAD_WIDTH, box["height"] / PAD_HEIGHT
    (x0, y0), rest = points[0], points[1:]
    page.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
    page.mouse.down()
    for x, y in rest:
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=steps)
    page.mouse.up()


def ellipse(cx, cy, rx, ry, n=24):
    import math

    return [
        (cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n))
        for k in range(n + 1)
    ]


def write_170(page):
    """A 1, a 7 and a 0, side by side, in four strokes; returns each digit's x span."""
    stroke(page, [(150, 40), (145, 200)])  # 1
    stroke(page, [(330, 45), (450, 45)])  # 7: the bar
    stroke(page, [(450, 45), (410, 120), (375, 205)])  # 7: the diagonal
    stroke(page, ellipse(640, 122, 55, 80))  # 0
    return [(120, 180), (320, 460), (570, 710)]


def box_pixels(page, x0, x1):
    """How many pixels of the box overlay between pad x0 and x1 are drawn (not clear)."""
    return page.evaluate(
        f"""(() => {{
          const c = document.getElementById('numboxes');
          const d = c.getContext('2d').getImageData({x0}, 0, {x1 - x0}, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n += 1;
          return n;
        }})()"""
    )


def test_writing_a_number_shows_it_with_a_box_per_digit(page, tmp_path):
    assert page.locator("#numpad").is_hidden()
    page.click("#mode-number")
    assert page.locator("#numpad").is_visible() and page.locator("#pad").is_hidden()
    assert page.evaluate("location.hash") == "#number"

    spans = write_170(page)
    page.click("#num-read")
    page.wait_for_function(
        "document.getElementById('num-result').dataset.forStroke === '4'", timeout=60000
    )
    assert page.locator("#num-error").inner_text() == ""
    assert page.locator("#number").inner_text() == "170"
    assert "sure" in page.locator("#num-confidence").inner_text()
    items = page.locator("#num-digits li")
    assert items.count() == 3
    assert [items.nth(i).locator("b").inner_text() for i in range(3)] == ["1", "7", "0"]
    # Each digit's box is drawn over its writing, and nothing between the digits.
    for x0, x1 in spans:
        assert box_pixels(page, x0, x1) > 100, (x0, x1)
    assert box_pixels(page, 800, 960) == 0
    shot = tmp_path / "serve-read-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("MNISTLAB_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "serve-read-page.png")

    page.click("#num-clear")
    assert page.locator("#number").inner_text() == "?"
    assert page.locator("#num-digits li").count() == 0
    assert box_pixels(page, 0, PAD_WIDTH) == 0

    page.click("#mode-digit")
    assert page.locator("#pad").is_visible() and page.locator("#numpad").is_hidden()


def test_the_number_mode_opens_from_its_link_and_reads_when_the_pen_rests(browser, digit_server):
    context = browser.new_context(viewport={"width": 820, "height": 700})
    try:
        page = context.new_page()
        page.goto(f"{digit_server}/#number")
        assert page.locator("#numpad").is_visible()
        stroke(page, [(300, 40), (295, 200)])  # a 1
        stroke(page, [(500, 40), (495, 200)])  # another 1
        # No button: the page reads once the pen has rested.
        page.wait_for_function(
            "document.getElementById('num-result').dataset.forStroke === '2'", timeout=60000
        )
        assert page.locator("#number").inner_text() == "11"
        assert page.locator("#num-digits li").count() == 2
    finally:
        context.close()


def test_an_uploaded_image_is_read_and_its_boxes_drawn_over_it(page, mnist, tmp_path):
    image, _ = compose(mnist, (0, 1, 2, 3, 4))  # 7, 2, 1, 0, 4: MNIST's first test digits
    path = tmp_path / "number.png"
    path.write_bytes(png(image))
    page.click("#mode-number")
    page.set_input_files("#num-file", str(path))
    page.wait_for_function("document.getElementById('number').textContent !== '?'", timeout=60000)
    assert page.locator("#number").inner_text() == "72104"
    assert page.locator("#num-digits li").count() == 5
    # The upload (320 x 96 px) is shown 2.5x on the pad, from x = 80 to 880; the boxes
    # are scaled with it: the first digit's near the left, the last one's near the right.
    assert box_pixels(page, 0, 300) > 100
    assert box_pixels(page, 660, PAD_WIDTH) > 100
    assert box_pixels(page, 0, 70) == 0
