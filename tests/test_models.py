"""The model registry: every registered model builds, predicts probabilities and learns."""

import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.models import build_model, get_model_spec, list_models

MODEL_NAMES = [spec.name for spec in list_models()]


def test_registry_has_the_documented_models():
    assert {"fnn", "cnn-fast", "cnn"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_maps_images_to_probabilities(name):
    model = build_model(name)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_fnn_keeps_the_seed_architecture():
    model = build_model("fnn", hidden=(128, 64), dropout=0.2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dense", "Dropout", "Dense"]
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [
        128,
        64,
        10,
    ]
    assert model.layers[3].rate == 0.2


def test_cli_style_strings_are_coerced_to_the_default_types():
    params = get_model_spec("fnn").check_params({"hidden": "256,32", "dropout": "0.1"})
    assert params == {"hidden": (256, 32), "dropout": 0.1}


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("nope", {}, "unknown model 'nope'; choose one of: fnn"),
        ("fnn", {"widht": 3}, "has no setting widht"),
        ("fnn", {"hidden": "a,b"}, "cannot read hidden='a,b'"),
        ("fnn", {"hidden": "1,2,3"}, "two positive hidden widths"),
        ("fnn", {"dropout": 1.5}, "dropout must be in [0, 1)"),
    ],
)
def test_bad_model_settings_name_the_problem(name, params, fragment):
    with pytest.raises(MnistlabError, match=None) as info:
        build_model(name, **params)
    assert fragment in str(info.value)
