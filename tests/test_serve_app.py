"""The FastAPI app in this process (Uvicorn on a thread), with a small quickly trained run.

Fast companions of tests/test_serve.py (which serves the session's real model in
its own process): the OpenAPI document generated from the pydantic schemas, the
422 of a body of the wrong shape, responses that match their schemas, and a
Fashion-MNIST run's classes in ``/v1/model``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from mnistlab.data import CLASS_NAMES
from mnistlab.predict import load_predictor
from mnistlab.serve import create_app, start_in_thread
from mnistlab.serve.schemas import (
    BatchResponse,
    ErrorBody,
    Health,
    ModelInfo,
    PredictResponse,
    Stats,
)

FASHION = list(CLASS_NAMES["fashion-mnist"])


def request(url, method="GET", body=None, content_type=None):
    """(status, parsed JSON or raw bytes) for one HTTP request."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, data, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(data) if "json" in ctype else data


def seven():
    """A 28x28 JSON image of a 7 (white ink on black)."""
    img = [[0.0] * 28 for _ in range(28)]
    for c in range(6, 22):
        img[5][c] = 1.0
    for r in range(6, 24):
        img[r][int(21 - (r - 6) * 0.6)] = 1.0
    return img


@pytest.fixture(scope="module")
def url(fashion_like_run):
    server, base = start_in_thread(create_app(load_predictor(fashion_like_run.path)))
    yield base
    server.should_exit = True


def test_openapi_has_a_schema_for_every_request_and_response_body(url):
    status, spec = request(f"{url}/openapi.json")
    assert status == 200
    schemas = spec["components"]["schemas"]

    def resolve(schema):
        ref = schema.get("$ref", "")
        assert ref.startswith("#/components/schemas/"), schema
        name = ref.rsplit("/", 1)[1]
        assert name in schemas, name
        return name

    expected_requests = {
        ("/v1/predict", "post"): {"ImageJson", "ImageUpload"},
        ("/v1/predict/batch", "post"): {"BatchJson", "BatchUpload"},
        ("/v1/preprocess", "post"): {"ImageJson", "ImageUpload"},
    }
    expected_ok = {
        ("/v1/predict", "post"): "PredictResponse",
        ("/v1/predict/batch", "post"): "BatchResponse",
        ("/v1/model", "get"): "ModelInfo",
        ("/v1/stats", "get"): "Stats",
        ("/healthz", "get"): "Health",
    }
    operations = {(p, m): op for p, methods in spec["paths"].items() for m, op in methods.items()}
    assert set(expected_requests) | set(expected_ok) <= set(operations)
    for key, names in expected_requests.items():
        content = operations[key]["requestBody"]["content"]
        named = {resolve(c["schema"]) for c in content.values() if "$ref" in c["schema"]}
        assert named == names, key
        for error in ("400", "413", "415", "422"):  # the error bodies are documented too
            body = operations[key]["responses"][error]["content"]["application/json"]
            assert resolve(body["schema"]) == "ErrorBody", (key, error)
    for key, name in expected_ok.items():
        body = operations[key]["responses"]["200"]["content"]["application/json"]
        assert resolve(body["schema"]) == name, key
    # The 28x28 grid is described as such, not as "any".
    grid = schemas["ImageJson"]["properties"]["image"]
    assert grid["minItems"] == grid["maxItems"] == 28
    assert grid["items"]["items"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert schemas["BatchJson"]["properties"]["images"]["maxItems"] == 256


def test_docs_page_is_rendered_from_the_spec_offline(url):
    status, page = request(f"{url}/docs")
    assert status == 200
    text = page.decode()
    assert "POST /v1/predict/batch" in text and "top_k" in text and "/openapi.json" in text
    assert 'id="PredictResponse"' in text and 'id="ErrorBody"' in text  # the schemas, listed
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    status, index = request(f"{url}/")
    assert status == 200 and b'<canvas id="pad"' in index and b"<style>" in index


def test_a_body_of_the_wrong_shape_gets_a_422_naming_the_field(url):
    body = json.dumps({"image": [[0.0] * 28] * 27}).encode()
    status, result = request(f"{url}/v1/predict", "POST", body, "application/json")
    assert status == 422
    ErrorBody.model_validate(result)
    assert result["error"].startswith("body.image: ") and "28 rows" in result["error"]
    assert result["detail"] == [
        {
            "loc": ["body", "image"],
            "msg": "image must be 28 rows of 28 numbers in [0, 1]; got 27 rows",
            "type": "mnist_image",
        }
    ]
    status, result = request(f"{url}/v1/predict", "POST", b'{"pixels": []}', "application/json")
    assert status == 422 and result["detail"][0]["loc"] == ["body", "image"]
    assert result["detail"][0]["type"] == "missing"
    batch = json.dumps({"images": [seven(), [[2.0] * 28] * 28]}).encode()
    status, result = request(f"{url}/v1/predict/batch", "POST", batch, "application/json")
    assert status == 422 and "images[1] values must be in [0, 1]" in result["error"]
    # JSON that does not parse stays a 400, in one line.
    status, result = request(f"{url}/v1/predict", "POST", b"{image: [", "application/json")
    assert status == 400 and result["error"].startswith("the body is not valid JSON")


def test_answers_match_their_schemas_and_name_the_runs_classes(url):
    """A Fashion-MNIST run: /v1/model lists its classes, predictions name them."""
    status, info = request(f"{url}/v1/model")
    assert status == 200
    ModelInfo.model_validate(info)
    assert info["output"]["classes"] == FASHION  # not "0".."9"
    assert info["metrics"] == {} and info["input"]["range"] == [0, 1]

    body = json.dumps({"image": seven()}).encode()
    status, result = request(f"{url}/v1/predict?top_k=2", "POST", body, "application/json")
    assert status == 200
    PredictResponse.model_validate(result)
    assert result["class"] == FASHION[result["digit"]] and len(result["top_k"]) == 2
    assert "polarity" not in result and "input" not in result

    batch = json.dumps({"images": [seven(), [[0.0] * 28] * 28]}).encode()
    status, result = request(f"{url}/v1/predict/batch", "POST", batch, "application/json")
    assert status == 200
    BatchResponse.model_validate(result)
    good, blank = result["results"]
    assert good["index"] == 0 and good["class"] == FASHION[good["digit"]]
    assert set(blank) == {"index", "error"} and "blank" in blank["error"]

    status, stats = request(f"{url}/v1/stats")
    Stats.model_validate(stats)
    assert stats["inference"]["n"] >= 1
    status, health = request(f"{url}/healthz")
    assert Health.model_validate(health).status == "ok"
