"""``POST /v1/read`` over real HTTP: a real `mnistlab serve` (tests/conftest.py ``digit_server``).

A number composed from MNIST test digits is read, with its boxes, whether it comes
as a multipart upload, raw PNG bytes or JSON; the bad-input corpus of
tests/test_serve.py gets the same clear 4xx as ``/v1/predict``, and the server
keeps serving.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from test_serve import BAD_INPUTS, healthy, multipart, request

pytestmark = pytest.mark.slow  # the session's trained model behind a real server

# The first test digits: 7, 2, 1, 0, 4 (MNIST's test set order).
NUMBER = (0, 1, 2, 3)
SCALE = 2  # each 28 px MNIST field becomes 56 px, like a digit written at phone size
MARGIN = 20  # paper around the number, px


def compose(mnist, indices=NUMBER):
    """Dark ink on white paper: the test digits side by side; (uint8 image, digit centres)."""
    side = 28 * SCALE
    digits = [
        np.asarray(Image.fromarray(mnist.x_test[i]).resize((side, side), Image.Resampling.BILINEAR))
        for i in indices
    ]
    ink = np.zeros((side + 2 * MARGIN, len(digits) * side + 2 * MARGIN), dtype=np.uint8)
    centres = []
    for k, digit in enumerate(digits):
        x = MARGIN + k * side
        ink[MARGIN : MARGIN + side, x : x + side] = digit
        ys, xs = np.nonzero(digit > 128)
        centres.append((x + xs.mean(), MARGIN + ys.mean()))
    return 255 - ink, centres


def png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def assert_read(answer, mnist, image, centres, indices=NUMBER):
    expected = "".join(str(int(mnist.y_test[i])) for i in indices)
    assert answer["text"] == expected, answer
    assert answer["reason"] is None and 0 < answer["confidence"] <= 1
    assert (answer["height"], answer["width"]) == image.shape
    assert [d["digit"] for d in answer["digits"]] == [int(c) for c in expected]
    for d, (cx, cy) in zip(answer["digits"], centres, strict=True):
        x0, y0, x1, y1 = d["box"]
        # The box is in the input's pixels and holds its digit's ink.
        assert x0 <= cx <= x1 and y0 <= cy <= y1, (d["box"], cx, cy)
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert sum(d["probabilities"]) == pytest.approx(1, abs=1e-3)
        assert d["confidence"] == pytest.approx(max(d["probabilities"]), abs=1e-4)


def test_a_composed_number_is_read_with_its_boxes_as_upload_raw_bytes_and_json(digit_server, mnist):
    image, centres = compose(mnist)
    body, ctype = multipart(("number.png", png(image)))
    status, answer = request(f"{digit_server}/v1/read", "POST", body, ctype, timeout=120)
    assert status == 200, answer
    assert_read(answer, mnist, image, centres)
    assert answer["read_ms"] > 0

    status, answer = request(f"{digit_server}/v1/read", "POST", png(image), "image/png")
    assert status == 200, answer
    assert_read(answer, mnist, image, centres)

    gray = json.dumps({"image": (image / 255).round(3).tolist()}).encode()
    status, answer = request(f"{digit_server}/v1/read", "POST", gray, "application/json")
    assert status == 200, answer
    assert_read(answer, mnist, image, centres)


def test_light_ink_on_dark_paper_reads_the_same(digit_server, mnist):
    indices = (4, 1, 3)  # 4, 2, 0
    image, centres = compose(mnist, indices)
    status, answer = request(f"{digit_server}/v1/read", "POST", png(255 - image), "image/png")
    assert status == 200, answer
    assert_read(answer, mnist, image, centres, indices)


# Any size is an image for /v1/read: 27 rows of 28 zeros is a blank image (400), where
# /v1/predict, which takes 28x28 only, refuses its shape (422). Every other case of the
# corpus gets the status /v1/predict gives it.
READ_STATUS = {"JSON 27 rows": 400}


@pytest.mark.parametrize("name, body, ctype, expected", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_the_same_4xx_as_predict_and_the_server_keeps_serving(
    digit_server, name, body, ctype, expected
):
    expected = READ_STATUS.get(name, expected)
    status, result = request(f"{digit_server}/v1/read", "POST", body, ctype)
    assert status == expected, (name, status, result)
    assert isinstance(result, dict) and result["status"] == expected
    assert result["error"] and "\n" not in result["error"] and "Traceback" not in result["error"]
    assert healthy(digit_server)


def test_blank_and_oversized_inputs_say_what_to_send(digit_server):
    blank = png(np.full((60, 200), 255, dtype=np.uint8))
    status, result = request(f"{digit_server}/v1/read", "POST", blank, "image/png")
    assert status == 400 and "no number found" in result["error"] and "blank" in result["error"]
    two, ctype = multipart(("a.png", blank), ("b.png", blank))
    status, result = request(f"{digit_server}/v1/read", "POST", two, ctype)
    assert status == 400 and "exactly one file" in result["error"]
    status, result = request(f"{digit_server}/v1/read", "POST", b"12", "text/plain")
    assert status == 415 and "multipart/form-data" in result["error"]
    status, stats = request(f"{digit_server}/v1/stats")
    assert "500" not in stats["errors"], stats


def test_read_is_in_the_api_docs(digit_server):
    status, spec = request(f"{digit_server}/openapi.json")
    assert status == 200
    operation = spec["paths"]["/v1/read"]["post"]
    assert set(operation["requestBody"]["content"]) >= {"multipart/form-data", "image/png"}
    schemas = spec["components"]["schemas"]
    assert {"text", "confidence", "reason", "digits"} <= set(schemas["ReadResponse"]["properties"])
    assert {"box", "digit", "confidence", "probabilities"} <= set(
        schemas["ReadDigit"]["properties"]
    )
    assert "ReadJson" in schemas and "ReadUpload" in schemas
    status, docs = request(f"{digit_server}/docs")
    assert status == 200 and b"/v1/read" in docs


def test_a_model_of_other_classes_refuses_to_read_numbers(fashion_like_run):
    from mnistlab.predict import load_predictor
    from mnistlab.serve import create_app, start_in_thread

    server, url = start_in_thread(create_app(load_predictor(fashion_like_run.path)))
    try:
        line = (np.eye(40) * 255).astype(np.uint8)
        status, result = request(f"{url}/v1/read", "POST", png(line), "image/png")
    finally:
        server.should_exit = True
    assert status == 409 and "serve a run trained on MNIST" in result["error"], result
