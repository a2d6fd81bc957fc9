"""The report of a real convnet run, opened in headless Chromium: every section, every image.

Needs Debian's ``chromium`` (``bash .ci/run`` installs it) and the ``playwright``
package (dev extra); Playwright drives the system browser, it downloads none.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from mnistlab.evaluate import ranked_mistakes
from mnistlab.report import FIGURE_FILES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Every <h2> of the page, in order.
SECTIONS = [
    "Summary",
    "Per-class metrics",
    "Training history",
    "Confusion matrix",
    "Data",
    "Per-class accuracy",
    "Most-confused pairs",
    "Error gallery",
    "ROC curves",
    "Precision-recall curves",
    "Calibration",
    "Configuration",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="needs Debian's chromium package (bash .ci/run installs it)",
)


@pytest.fixture(scope="module")
def cnn_report(tmp_path_factory, mnist):
    """A real cnn-fast run: one epoch on 12,000 training images, all 10,000 test images.

    Evaluated, calibrated on its validation split, and reported.
    """
    from mnistlab.config import make_config
    from mnistlab.cv import subset_indices
    from mnistlab.evaluate import calibrate, evaluate
    from mnistlab.report import write_report
    from mnistlab.train import train

    keep = subset_indices(mnist.y_train, 12000, seed=0)
    data = dataclasses.replace(mnist, x_train=mnist.x_train[keep], y_train=mnist.y_train[keep])
    config = make_config("cnn-fast", epochs=1, val_size=2000)
    run = train(config, runs_dir=tmp_path_factory.mktemp("runs"), dataset=data, verbose=0)
    evaluate(run, dataset=data)
    calibrate(run, dataset=data)
    return run, write_report(run, dataset=data)


def _open_in_chromium(path: Path, screenshot: Path) -> dict:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # offline: a page that needed the network would show broken images.
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri(), wait_until="load")
            found = page.evaluate(
                """() => ({
                    headings: Array.from(document.querySelectorAll("h2"), h => h.textContent),
                    images: Array.from(document.images, img => ({
                        alt: img.alt, complete: img.complete,
                        width: img.naturalWidth, height: img.naturalHeight,
                    })),
                    anchors: Array.from(document.querySelectorAll("nav a"),
                        a => document.getElementById(a.getAttribute("href").slice(1)) !== null),
                    galleryRows: Array.from(
                        document.querySelectorAll("#error-gallery tbody tr"),
                        tr => Array.from(tr.cells, td => td.textContent)),
                    calibration: document.querySelector("#calibration").innerText,
                })"""
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    found["requests"] = requests
    return found


@pytest.fixture(scope="module")
def opened(cnn_report, tmp_path_factory):
    """What Chromium found on the page, and where its full-page screenshot is."""
    _, path = cnn_report
    shot = tmp_path_factory.mktemp("browser") / "report.png"
    return _open_in_chromium(path, shot), shot


@pytest.mark.slow
def test_chromium_shows_every_section_and_loads_every_image(opened):
    page, shot = opened

    assert page["headings"] == SECTIONS
    assert len(page["images"]) == len(FIGURE_FILES)
    for image in page["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    assert all(page["anchors"])  # every table-of-contents link has its section
    # One file, nothing fetched: the page itself and its data: URIs only.
    assert all(url.startswith(("file:", "data:")) for url in page["requests"]), page["requests"]
    assert shot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_gallery_and_calibration_show_this_run(cnn_report, opened):
    run, _ = cnn_report
    page, _ = opened

    from mnistlab.evaluate import load_predictions

    y, probs = load_predictions(run)
    first = ranked_mistakes(y, probs, limit=1)[0]
    assert page["galleryRows"][0][:4] == [
        f"{first['index']:,}",
        str(first["true"]),
        str(first["pred"]),
        f"{first['confidence']:.2%}",
    ]
    calibration = json.loads((run.path / "calibration.json").read_text())
    assert f"{calibration['temperature']:.4f}" in page["calibration"]
    assert f"{calibration['test']['ece_after']:.4f}" in page["calibration"]
