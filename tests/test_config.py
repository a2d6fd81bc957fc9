"""TrainConfig: recipes from the registry, overrides, validation, JSON round trip."""

import pytest

from mnistlab.config import TrainConfig, make_config
from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec


def test_make_config_takes_the_models_recipe_and_explicit_overrides():
    recipe = get_model_spec("cnn-fast").recipe
    config = make_config("cnn-fast", epochs=7, seed=None)
    assert config.epochs == 7
    assert config.seed == 0  # None means "not given": the default stays
    assert config.batch_size == recipe["batch_size"]
    assert config.schedule == recipe["schedule"]
    assert config.params == get_model_spec("cnn-fast").defaults


def test_config_survives_a_json_round_trip():
    config = make_config("fnn", params={"hidden": "64,32"}, seed=3, label_smoothing=0.1)
    again = TrainConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert again.params["hidden"] in ((64, 32), [64, 32])


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"epochs": 0}, "invalid epochs=0"),
        ({"learning_rate": -1.0}, "invalid learning_rate=-1.0"),
        ({"schedule": "linear"}, "constant | cosine | onecycle"),
        ({"val_size": 60000}, "invalid val_size"),
        ({"val_size": -5}, "invalid val_size"),
        ({"val_size": 0}, "also pass keep='last'"),
        ({"label_smoothing": 1.0}, "invalid label_smoothing"),
        ({"learning_rate": float("inf")}, "expected a finite number > 0"),
        ({"learning_rate": float("nan")}, "invalid learning_rate=nan"),
        ({"augment": float("inf")}, "invalid augment=inf"),
        ({"seed": -1}, "invalid seed=-1: expected an integer 0..4294967295"),
        ({"seed": 2**32}, "invalid seed=4294967296"),
    ],
)
def test_invalid_settings_are_rejected_with_the_accepted_values(overrides, fragment):
    with pytest.raises(MnistlabError) as info:
        make_config("fnn", **overrides)
    assert fragment in str(info.value)


def test_unknown_keys_in_a_saved_config_are_an_error():
    d = make_config("fnn").to_dict() | {"lerning_rate": 1}
    with pytest.raises(MnistlabError, match="unknown config keys"):
        TrainConfig.from_dict(d)
