"""The HTTP API: a real `mnistlab serve` (Uvicorn) on 127.0.0.1, real HTTP requests.

The server (tests/conftest.py ``digit_server``) runs the session's trained model in
its own process with a 2 MiB upload limit.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistlab.serve import LatencyStats, benchmark, to_mnist_array

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

pytestmark = pytest.mark.slow  # starts a server with the session's trained model


# -- a tiny HTTP client (urllib: what any user has) -------------------------------------


def request(url, method="GET", body=None, content_type=None, timeout=30):
    """(status, parsed JSON or raw bytes) for one HTTP request."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, data, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(data) if "json" in ctype else data


def multipart(*files, field="file"):
    """A multipart/form-data body with the given (filename, bytes) files; (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def healthy(url):
    status, body = request(f"{url}/healthz", timeout=10)
    return status == 200 and body == {"status": "ok"}


def png_claiming(width, height):
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1), 255).save(buf, format="PNG")
    data = buf.getvalue()
    ihdr = bytearray(data[8:33])
    ihdr[8:16] = struct.pack(">II", width, height)
    ihdr[21:25] = struct.pack(">I", zlib.crc32(bytes(ihdr[4:21])))
    return data[:8] + bytes(ihdr) + data[33:]


def mnist_json(image_uint8):
    return json.dumps({"image": (image_uint8 / 255).round(4).tolist()}).encode()


# -- good requests --------------------------------------------------------------------------


def test_a_run_of_other_classes_answers_with_their_names(digit_run, mnist):
    # The model is MNIST's; what matters here is that the server names the classes the
    # predictor was given (a Fashion-MNIST run's), as `mnistlab predict` does.
    from mnistlab.data import CLASS_NAMES
    from mnistlab.models import load_saved_model
    from mnistlab.predict import Predictor
    from mnistlab.serve import create_app, start_in_thread

    names = CLASS_NAMES["fashion-mnist"]
    predictor = Predictor(load_saved_model(digit_run.model_path), class_names=names)
    server, url = start_in_thread(create_app(predictor))
    try:
        body = mnist_json(mnist.x_test[0])
        status, data = request(f"{url}/v1/predict", "POST", body, "application/json")
    finally:
        server.should_exit = True
    assert status == 200
    assert data["class"] == names[data["digit"]]
    assert [t["class"] for t in data["top_k"]] == [names[t["digit"]] for t in data["top_k"]]


def test_multipart_upload_of_a_photo(digit_server):
    body, ctype = multipart(("photo.jpg", (SAMPLES / "3" / "photo.jpg").read_bytes()))
    status, result = request(f"{digit_server}/v1/predict?include_input=true", "POST", body, ctype)
    assert status == 200, result
    assert result["digit"] == 3 and result["polarity"] == "dark-on-light"
    assert len(result["top_k"]) == 3 and result["top_k"][0]["digit"] == 3
    assert sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
    seen = np.array(result["input"])
    assert seen.shape == (28, 28) and 0 <= seen.min() and seen.max() <= 1
    assert result["inference_ms"] > 0


@pytest.mark.parametrize(
    "path, ctype",
    [
        ("1/format.jpg", "image/jpeg"),  # CMYK JPEG
        ("7/format.png", "image/png"),  # 16-bit grayscale
        ("2/format.gif", "image/gif"),  # animated: the first frame is the digit
        ("5/chalk.jpg", "application/octet-stream"),  # light on dark
    ],
)
def test_raw_image_bodies_in_awkward_formats(digit_server, path, ctype):
    status, result = request(
        f"{digit_server}/v1/predict", "POST", (SAMPLES / path).read_bytes(), ctype
    )
    assert status == 200, result
    assert result["digit"] == int(path[0])


def test_json_28x28_of_real_mnist_test_digits(digit_server, mnist):
    right = 0
    for image, label in zip(mnist.x_test[:50], mnist.y_test[:50], strict=True):
        status, result = request(
            f"{digit_server}/v1/predict?top_k=10", "POST", mnist_json(image), "application/json"
        )
        assert status == 200 and len(result["top_k"]) == 10
        right += result["digit"] == label
    assert right >= 48


def test_batch_json_and_multipart_with_one_bad_file(digit_server, mnist):
    body = json.dumps({"images": [(x / 255).tolist() for x in mnist.x_test[:20]]}).encode()
    status, result = request(f"{digit_server}/v1/predict/batch", "POST", body, "application/json")
    assert status == 200 and result["count"] == 20
    digits = [r["digit"] for r in result["results"]]
    assert np.mean(np.array(digits) == mnist.y_test[:20]) >= 0.95

    body, ctype = multipart(
        ("a.png", (SAMPLES / "4" / "canvas-a.png").read_bytes()),
        ("b.txt", b"not an image"),
        ("c.jpg", (SAMPLES / "9" / "photo.jpg").read_bytes()),
        field="files",
    )
    status, result = request(f"{digit_server}/v1/predict/batch", "POST", body, ctype)
    assert status == 200
    a, b, c = result["results"]
    assert (a["index"], a["digit"]) == (0, 4) and (c["index"], c["digit"]) == (2, 9)
    assert b["index"] == 1 and "not an image" in b["error"]


def test_model_info_docs_and_page(digit_server, digit_run):
    status, info = request(f"{digit_server}/v1/model")
    assert status == 200
    assert info["name"] == digit_run.name and info["architecture"] == "cnn-fast"
    assert info["metrics"]["test_accuracy"] > 0.97
    assert info["input"]["shape"] == [28, 28] and info["limits"]["max_upload_bytes"] == 2 * 2**20
    status, spec = request(f"{digit_server}/openapi.json")
    assert status == 200 and {"/v1/predict", "/v1/predict/batch", "/healthz"} <= set(spec["paths"])
    status, docs = request(f"{digit_server}/docs")
    assert status == 200 and b"/v1/predict/batch" in docs and b"/openapi.json" in docs
    # Offline: nothing on the page comes from another host (Swagger UI's CDN did).
    assert not re.search(rb"""(src|href)=["']?(https?:)?//""", docs), docs[:500]
    status, page = request(f"{digit_server}/")
    assert status == 200 and b'<canvas id="pad"' in page
    status, js = request(f"{digit_server}/static/app.js")
    assert status == 200 and b"/v1/predict" in js


# -- bad requests: each gets its 4xx with a JSON error, and the server keeps serving -----------


def _bad_inputs():
    png = (SAMPLES / "7" / "canvas-a.png").read_bytes()
    jpg = (SAMPLES / "7" / "photo.jpg").read_bytes()
    empty_mp, empty_mp_type = multipart(("empty.png", b""))
    junk_mp, junk_mp_type = multipart(("junk.png", b"\x00\x01 definitely not an image"))
    row = [0.0] * 28
    return [
        ("empty multipart", b"", "multipart/form-data; boundary=x", 400),
        ("empty file in form", empty_mp, empty_mp_type, 400),
        ("empty raw body", b"", "image/png", 400),
        ("empty JSON body", b"", "application/json", 400),
        ("not an image", junk_mp, junk_mp_type, 400),
        ("not an image, raw", b"GIF89a but no more", "image/gif", 400),
        ("truncated PNG", png[: len(png) // 2], "image/png", 400),
        ("truncated JPEG", jpg[: len(jpg) // 3], "image/jpeg", 400),
        ("blank white image", _png(Image.new("L", (64, 64), 255)), "image/png", 400),
        ("decompression bomb", png_claiming(50000, 50000), "image/png", 413),
        ("bomb under 2x the limit", png_claiming(8000, 8000), "image/png", 413),
        ("text/plain", b"7", "text/plain", 415),
        ("form-urlencoded", png, "application/x-www-form-urlencoded", 415),
        ("application/xml", b"<digit>7</digit>", "application/xml", 415),
        ("invalid JSON", b"{image: [", "application/json", 400),
        ("JSON without image", b'{"pixels": []}', "application/json", 422),
        ("JSON not an object", b"[1, 2, 3]", "application/json", 422),
        ("JSON 27 rows", json.dumps({"image": [row] * 27}).encode(), "application/json", 422),
        (
            "JSON ragged row",
            json.dumps({"image": [row] * 27 + [row[:5]]}).encode(),
            "application/json",
            422,
        ),
        ("JSON 3-D", json.dumps({"image": [[row]] * 28}).encode(), "application/json", 422),
        (
            "JSON strings",
            json.dumps({"image": [["a"] * 28] * 28}).encode(),
            "application/json",
            422,
        ),
        (
            "JSON booleans",
            json.dumps({"image": [[True] * 28] * 28}).encode(),
            "application/json",
            422,
        ),
        ("JSON NaN", _json_with("NaN"), "application/json", 422),
        ("JSON Infinity", _json_with("Infinity"), "application/json", 422),
        ("JSON -Infinity", _json_with("-Infinity"), "application/json", 422),
        ("JSON 1e999 (overflows to inf)", _json_with("1e999"), "application/json", 422),
        ("JSON integer 10**400", _json_with("1" + "0" * 400), "application/json", 422),
        # Hostile JSON: too deep for the parser, an integer past Python's 4,300 digits.
        ("JSON nested 100,000 deep", _deep_json("image"), "application/json", 400),
        ("JSON 5,000-digit integer", b'{"image": ' + b"1" * 5000 + b"}", "application/json", 400),
        # No ink: the model would name a digit for any uniform grid.
        ("JSON blank (zeros)", json.dumps({"image": [row] * 28}).encode(), "application/json", 400),
        (
            "JSON blank (uniform 0.5)",
            json.dumps({"image": [[0.5] * 28] * 28}).encode(),
            "application/json",
            400,
        ),
        (
            "JSON values 0-255",
            json.dumps({"image": [[255] * 28] * 28}).encode(),
            "application/json",
            422,
        ),
    ]


def _png(im):
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _deep_json(key, depth=100_000):
    return b'{"' + key.encode() + b'": ' + b"[" * depth + b"]" * depth + b"}"


def _json_with(token):
    rows = [", ".join(["0"] * 28)] * 28
    rows[3] = ", ".join(["0"] * 27 + [token])
    return ('{"image": [' + ", ".join(f"[{r}]" for r in rows) + "]}").encode()


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("name, body, ctype, expected", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_its_4xx_and_the_server_keeps_serving(
    digit_server, name, body, ctype, expected
):
    status, result = request(f"{digit_server}/v1/predict", "POST", body, ctype)
    assert status == expected, (name, status, result)
    assert isinstance(result, dict) and result["status"] == expected
    assert result["error"] and "\n" not in result["error"] and "Traceback" not in result["error"]
    assert healthy(digit_server)


def test_hostile_json_and_blank_images_get_clear_messages(digit_server):
    status, result = request(
        f"{digit_server}/v1/predict", "POST", _deep_json("image"), "application/json"
    )
    assert status == 400 and result["error"].startswith("the body is not valid JSON (nested")
    big = b'{"image": ' + b"1" * 5000 + b"}"
    status, result = request(f"{digit_server}/v1/predict", "POST", big, "application/json")
    assert status == 400 and "not valid JSON" in result["error"]
    assert "set_int_max_str_digits" not in result["error"]  # no advice meant for Python code
    blank = json.dumps({"image": [[0.0] * 28] * 28}).encode()
    status, result = request(f"{digit_server}/v1/predict", "POST", blank, "application/json")
    assert status == 400 and "no digit found" in result["error"] and "blank" in result["error"]
    # The same path serves batches.
    for body in (_deep_json("images"), b'{"images": [' + b"1" * 5000 + b"]}"):
        status, result = request(
            f"{digit_server}/v1/predict/batch", "POST", body, "application/json"
        )
        assert status == 400 and "not valid JSON" in result["error"], result
    assert healthy(digit_server)
    status, stats = request(f"{digit_server}/v1/stats")
    assert "500" not in stats["errors"]


def test_a_blank_image_in_a_json_batch_is_reported_in_its_place(digit_server, mnist):
    """Like an unreadable file in a multipart batch: the others are still answered."""
    images = [(mnist.x_test[0] / 255).tolist(), [[0.0] * 28] * 28, [[0.3] * 28] * 28]
    body = json.dumps({"images": images}).encode()
    status, result = request(f"{digit_server}/v1/predict/batch", "POST", body, "application/json")
    assert status == 200 and result["count"] == 3, result
    first, blank, grey = result["results"]
    assert first["digit"] == mnist.y_test[0]
    for index, item in ((1, blank), (2, grey)):
        assert item["index"] == index and "digit" not in item
        assert f"images[{index}] is blank" in item["error"] and "no digit found" in item["error"]


@pytest.mark.parametrize("side", [7000, 10000])
def test_too_many_pixels_is_our_message_with_the_documented_limit(digit_server, side):
    """Pillow refuses 2x its limit itself; the user still reads this project's message."""
    status, result = request(
        f"{digit_server}/v1/predict", "POST", png_claiming(side, side), "image/png"
    )
    assert status == 413, result
    assert f"{side * side:,} pixels, over the limit of 40,000,000" in result["error"]
    assert "send a smaller image" in result["error"]
    assert "decompression bomb" not in result["error"].lower()


def test_a_client_that_hangs_up_mid_upload_is_no_server_error(digit_server, tmp_path_factory):
    """Content-Length 100,000, 40 bytes sent, then the socket closes: no 500, no traceback."""
    from urllib.parse import urlsplit

    url = urlsplit(digit_server)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = (
            f"POST /v1/predict HTTP/1.1\r\nHost: {url.hostname}\r\n"
            "Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x89PNG\r\n\x1a\n" * 5)
        time.sleep(0.3)  # the server is now waiting for the rest
    # The log of conftest's digit_server (tmp_path_factory.mktemp("digit-server")).
    logs = tmp_path_factory.getbasetemp().glob("digit-server[0-9]*/serve.log")
    log = max(logs, key=lambda path: path.stat().st_mtime)
    deadline = time.monotonic() + 20
    while "client disconnected" not in (text := log.read_text(errors="replace")):
        assert "unexpected error" not in text, text[-2000:]
        assert time.monotonic() < deadline, "the server never noticed the hang-up"
        time.sleep(0.1)
    assert "Traceback" not in text and "ClientDisconnect" not in text, text[-2000:]
    status, stats = request(f"{digit_server}/v1/stats")
    assert "500" not in stats["errors"], stats
    assert healthy(digit_server)


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(digit_server):
    """Content-Length over the 2 MiB limit: 413 at once, the body is never read."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(digit_server)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = (
            f"POST /v1/predict HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {3 * 2**20}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\xff" * 1000)  # a little of the body, not 3 MiB
        reply = b""
        while b"}" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.split()[1] == b"413"
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == 413 and "over the limit" in body["error"]
    assert healthy(digit_server)


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(digit_server):
    """No Content-Length to check up front: the server counts bytes as they arrive."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(digit_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    chunks = (b"\xff" * 65536 for _ in range(48))  # 3 MiB in 64 KiB chunks, limit 2 MiB
    try:
        try:
            conn.request(
                "POST",
                "/v1/predict",
                body=chunks,
                headers={"Content-Type": "image/png"},
                encode_chunked=True,
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before we finished sending: read its answer
        resp = conn.getresponse()
        status, result = resp.status, json.loads(resp.read())
    finally:
        conn.close()
    assert status == 413 and "over the limit" in result["error"]
    assert healthy(digit_server)


@pytest.mark.parametrize(
    "path, status",
    [("/v1/predict?top_k=0", 422), ("/v1/predict?top_k=abc", 422), ("/no/such/path", 404)],
)
def test_bad_query_and_paths_are_json_errors(digit_server, mnist, path, status):
    got, result = request(
        f"{digit_server}{path}", "POST", mnist_json(mnist.x_test[0]), "application/json"
    )
    assert got == status and result["status"] == status and result["error"]
    assert healthy(digit_server)


def test_batch_limits(digit_server):
    body = json.dumps({"images": []}).encode()
    status, result = request(f"{digit_server}/v1/predict/batch", "POST", body, "application/json")
    assert status == 422 and "1 to" in result["error"]
    status, _ = request(f"{digit_server}/v1/predict/batch", "POST", b"x", "text/csv")
    assert status == 415
    # 257 files: over the documented limit of 256, so 413 saying so (not a parse error).
    tiny = png_claiming(1, 1)
    body, ctype = multipart(*[(f"{i}.png", tiny) for i in range(257)], field="files")
    status, result = request(f"{digit_server}/v1/predict/batch", "POST", body, ctype)
    assert status == 413 and "256" in result["error"], result
    assert "cannot parse" not in result["error"]
    assert healthy(digit_server)


@pytest.mark.parametrize(
    "name, body, ctype, status, says, never",
    [
        # A raw image: the batch endpoint takes no image types, so it must not suggest one.
        ("raw PNG", png_claiming(1, 1), "image/png", 415, "'files'", "an image type"),
        (
            "multipart without files",
            b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            400,
            "'files'",
            "'file'",
        ),
        ("empty multipart", b"", "multipart/form-data; boundary=x", 400, "'files'", "'file'"),
        ("empty JSON", b"", "application/json", 400, '{"images": [', '{"image":'),
    ],
)
def test_batch_errors_speak_of_the_batch(digit_server, name, body, ctype, status, says, never):
    got, result = request(f"{digit_server}/v1/predict/batch", "POST", body, ctype)
    assert got == status, (name, result)
    assert says in result["error"] and never not in result["error"], (name, result["error"])


# -- startup mistakes: one line on stderr, no "serving ... on" announcement -------------------

# TensorFlow's C++ runtime writes these to stderr itself (absl), not mnistlab.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )")


def _serve(digit_run, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "mnistlab", "serve", str(digit_run.path), "--engine", "tf"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.parametrize("problem", ["port in use", "unresolvable host", "foreign address"])
def test_serve_that_cannot_listen_says_so_in_one_line(digit_run, problem):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        host, expected = {
            "port in use": ("127.0.0.1", f"cannot listen on 127.0.0.1:{port}: address already"),
            "unresolvable host": ("no-such-host.invalid", "does not resolve"),
            "foreign address": ("192.0.2.1", "cannot listen on 192.0.2.1"),  # TEST-NET-1
        }[problem]
        result = _serve(digit_run, "--host", host, "--port", str(port))
    lines = [line for line in result.stderr.splitlines() if not TF_NOISE.match(line)]
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("mnistlab: error: "), result.stderr
    assert expected in lines[0]
    assert "serving" not in result.stdout, result.stdout  # it never served


def test_port_0_serves_on_a_free_port_and_says_which(digit_run):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "mnistlab", "serve", str(digit_run.path), "--engine", "tf"]
    proc = subprocess.Popen(
        [*cmd, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        line = proc.stdout.readline()  # "serving NAME (tf) on http://127.0.0.1:PORT/"
        url = re.search(r"on (http://127\.0\.0\.1:(\d+)/)", line)
        assert url and url.group(2) != "0", line
        with urllib.request.urlopen(url.group(1) + "healthz", timeout=30) as response:
            assert response.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- load: 2,000 requests, 32 at a time, zero errors -------------------------------------------


def test_load_2000_requests_32_at_a_time(digit_server, mnist):
    result = benchmark(
        digit_server, requests=2000, concurrency=32, body=mnist_json(mnist.x_test[0])
    )
    status, stats = request(f"{digit_server}/v1/stats")
    print(
        f"\nload test: {result['requests']} requests, {result['concurrency']} at a time, "
        f"{result['errors']} errors, {result['rps']} req/s, HTTP round trip "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; in-server inference "
        f"({stats['engine']}) p50 {stats['inference']['p50_ms']} ms, "
        f"p99 {stats['inference']['p99_ms']} ms"
    )
    assert result["errors"] == 0, result["first_error"]
    assert stats["inference"]["n"] >= 2000
    assert healthy(digit_server)


# -- pieces ------------------------------------------------------------------------------


def test_latency_stats_percentiles():
    stats = LatencyStats(window=100)
    assert stats.summary()["p50_ms"] is None
    for ms in range(1, 201):  # only the last 100 (101..200) are kept
        stats.add(float(ms))
    summary = stats.summary()
    assert summary["n"] == 100 and summary["p50_ms"] == pytest.approx(150.5)
    assert summary["p99_ms"] == pytest.approx(199.01)


def test_to_mnist_array_accepts_exactly_28x28_in_range():
    assert to_mnist_array([[0.5] * 28] * 28).shape == (28, 28)
    with pytest.raises(ValueError, match="28 rows"):
        to_mnist_array([[0.5] * 28] * 3)


def _png_bytes(ink):
    """Dark ink on white paper as PNG bytes (``ink``: float, 1 = ink)."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_abstention_over_http_gives_the_reason_and_still_the_scores(digit_server, mnist):
    # Three test digits side by side: a number, not a single digit (issue 25).
    strip = np.zeros((28, 28 * 3 + 16), np.float32)
    for i in range(3):
        strip[:, i * 36 : i * 36 + 28] = mnist.x_test[i] / 255
    body = _png_bytes(np.pad(strip, 10))
    status, result = request(f"{digit_server}/v1/predict", "POST", body, "image/png")
    assert status == 200, result
    assert result.get("digit") is None and result["reason"] == "not a single digit"
    assert "mnistlab read" in result["explanation"]
    assert len(result["probabilities"]) == 10 and len(result["top_k"]) == 3

    # Turned off per request: a digit again.
    status, result = request(f"{digit_server}/v1/predict?abstain=false", "POST", body, "image/png")
    assert status == 200 and isinstance(result["digit"], int) and result["reason"] is None

    # Noise is not a digit; a real digit at a demanding operating point is "unsure".
    noise = (np.random.default_rng(0).random((60, 60)) > 0.5).astype(np.float32)
    status, result = request(f"{digit_server}/v1/predict", "POST", _png_bytes(noise), "image/png")
    assert status == 200 and result["reason"] == "not a digit"
    status, result = request(
        f"{digit_server}/v1/predict?min_confidence=1",
        "POST",
        mnist_json(mnist.x_test[0]),
        "application/json",
    )
    assert status == 200 and result["reason"] == "unsure" and result.get("digit") is None
    status, result = request(
        f"{digit_server}/v1/predict?min_confidence=2",
        "POST",
        mnist_json(mnist.x_test[0]),
        "application/json",
    )
    assert status == 422  # a bad operating point is bad input, not an abstention
