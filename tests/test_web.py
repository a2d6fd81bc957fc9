"""The drawing page in a real headless Chromium (Playwright), against a real server.

Chromium comes from Debian (`chromium`, installed by .ci/run), never from
`playwright install`. The screenshot goes to the test's tmp dir; with
MNISTLAB_UPDATE_SCREENSHOT=1 it also replaces docs/serve-page.png (the README's).
"""

from __future__ import annotations

import os
import shutil
import time
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


def wait_until(page, condition, message, timeout=15.0):
    """Let the page (and Playwright's route handlers) run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        page.wait_for_timeout(20)


def assert_empty_state(page):
    """What a cleared pad shows: no digit, no bars, no error, a black 28x28 view."""
    assert page.locator("#digit").inner_text() == "?"
    assert page.locator("#prob").inner_text() == "draw a digit 0-9"
    assert page.locator(".bar-row.best").count() == 0
    assert page.locator("#error").inner_text() == ""
    lit = page.evaluate(
        "Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 0).length"
    )
    assert lit == 0


def test_a_reply_that_lands_after_clear_is_not_drawn(page):
    """Clear while the prediction is on its way: its late reply must not fill the empty pad."""
    from playwright.sync_api import Error as PlaywrightError

    held = []  # the server stays real: requests are only held back, then sent on
    page.route("**/v1/predict?*", lambda route: held.append(route))
    settled = []
    for event in ("requestfinished", "requestfailed"):
        page.on(event, lambda req: settled.append(req.url) if "/v1/predict" in req.url else None)
    stroke(page, [(140, 50), (140, 230)])
    page.wait_for_function("document.getElementById('result').dataset.forStroke === '0'")
    wait_until(page, lambda: held, "the drawing was never sent")
    page.click("#clear")
    page.unroute("**/v1/predict?*")
    for route in held:
        try:
            route.continue_()
        except PlaywrightError:
            pass  # the page already cancelled it: that is one way to get this right
    wait_until(page, lambda: len(settled) >= len(held), "the held request never settled")
    page.wait_for_timeout(300)  # the reply's JSON parsed and (wrongly) drawn, if it were
    assert_empty_state(page)
    assert page.locator("#result").get_attribute("data-for-stroke") == "0"

    # And the page still works: the next drawing gets its answer.
    stroke(page, [(140, 50), (140, 230)])
    wait_for_stroke(page, 1)
    assert page.locator("#digit").inner_text() in "0123456789"


def test_a_proxy_error_page_shows_the_status_not_a_parse_error(page):
    page.route(
        "**/v1/predict?*",
        lambda route: route.fulfill(
            status=502, body="<html>Bad Gateway</html>", content_type="text/html"
        ),
    )
    page.set_input_files("#file", str(ROOT / "samples" / "3" / "photo.jpg"))
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    error = page.locator("#error").inner_text()
    assert "server error 502" in error, error
    assert "SyntaxError" not in error and "cannot reach" not in error
    assert page.locator("#digit").inner_text() == "?"


def test_upload_is_reachable_and_operable_by_keyboard(page):
    """Tab from Clear reaches "Upload an image..."; Enter, or Space, opens the file chooser."""
    choosers = []
    # Listening first turns on Playwright's interception of the chooser; added inside the
    # key press (expect_file_chooser), it can come too late for Enter, which opens at once.
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.evaluate("0")  # a round trip: the interception is on
    for key in ("Enter", "Space"):
        page.focus("#clear")
        page.keyboard.press("Tab")
        label = page.evaluate(
            "document.activeElement.labels && document.activeElement.labels.length"
            " ? document.activeElement.labels[0].textContent : document.activeElement.textContent"
        )
        assert label.startswith("Upload an image"), label
        before = len(choosers)
        page.keyboard.press(key)
        wait_until(page, lambda n=before: len(choosers) > n, f"{key} opened no file chooser")
        choosers[-1].set_files(str(ROOT / "samples" / "3" / "photo.jpg"))
        page.wait_for_function(
            "document.getElementById('digit').textContent === '3'", timeout=15000
        )
        page.click("#clear")


def test_api_docs_page_works_offline(browser, digit_server):
    """/docs must show the endpoints with no request leaving the machine (no CDN)."""
    context = browser.new_context()
    page = context.new_page()
    outside = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(digit_server)
            else (outside.append(route.request.url), route.abort())
        ),
    )
    page.goto(f"{digit_server}/")
    page.click("text=API docs")
    page.wait_for_load_state("load")
    text = page.locator("body").inner_text()
    context.close()
    assert "POST /v1/predict/batch" in text and "top_k" in text, text[:500]
    assert not outside, outside


def test_an_upload_of_several_digits_shows_the_reason_not_a_digit(page, mnist, tmp_path):
    """Abstention (issue 25): no digit, the reason in words, the bars still drawn."""
    import numpy as np
    from PIL import Image

    strip = np.zeros((28, 28 * 3 + 16), np.uint8)
    for i in range(3):
        strip[:, i * 36 : i * 36 + 28] = mnist.x_test[i]
    path = tmp_path / "number.png"
    Image.fromarray(255 - np.pad(strip, 10)).save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_function(
        "document.getElementById('prob').textContent.includes('not a single digit')",
        timeout=15000,
    )
    assert page.locator("#digit").inner_text() == "\u2014"
    assert "mnistlab read" in page.locator("#prob").inner_text()
    widths = page.eval_on_selector_all(".bar-row .fill", "els => els.map(e => e.style.width)")
    assert len(widths) == 10 and any(w != "0.0%" for w in widths)
