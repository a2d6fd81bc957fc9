"""TrainConfig: recipes from the registry, overrides, validation, JSON round trip."""

import json

import pytest

from mnistlab.config import EnsembleConfig, TrainConfig, make_config
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


# -- validated when built: one line naming the field --------------------------------------------


@pytest.mark.parametrize("value", ["5", 1.5, True, [5]])
def test_a_wrong_type_for_epochs_is_one_line_naming_epochs(value):
    with pytest.raises(MnistlabError) as info:
        make_config("fnn", epochs=value)
    message = str(info.value)
    assert message.startswith(f"invalid epochs={value!r}: expected an integer >= 1")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", True),  # bool is not an int
        ("batch_size", False),
        ("patience", "3"),
        ("val_size", 500.0),
        ("learning_rate", "0.01"),
        ("learning_rate", True),
        ("deterministic", 1),
        ("schedule", 3),
        ("dataset", 7),
    ],
)
def test_wrong_types_are_refused_naming_the_field(field, value):
    with pytest.raises(MnistlabError) as info:
        TrainConfig(**{field: value})
    assert str(info.value).startswith(f"invalid {field}={value!r}: expected ")
    assert "\n" not in str(info.value)


def test_numbers_of_the_right_kind_are_accepted():
    import numpy as np

    config = make_config("fnn", seed=np.int64(3), learning_rate=1, augment=np.float32(0.5))
    assert (config.seed, config.learning_rate, config.augment) == (3, 1.0, 0.5)
    assert type(config.seed) is int and type(config.learning_rate) is float


def test_models_and_their_settings_are_checked_when_a_config_is_built():
    with pytest.raises(MnistlabError, match="unknown model 'ensemble'; choose one of: fnn"):
        TrainConfig(model="ensemble")  # an ensemble has its own record, EnsembleConfig
    with pytest.raises(MnistlabError, match="model 'fnn' has no setting width"):
        TrainConfig(model="fnn", params={"width": 3})
    with pytest.raises(MnistlabError, match="unknown setting 'epoch'"):
        TrainConfig(epoch=3)


def test_a_config_is_frozen_and_replace_validates_like_a_new_one():
    config = make_config("fnn")
    with pytest.raises(ValueError):
        config.epochs = 3  # type: ignore[misc]
    assert config.replace(epochs=3).epochs == 3 and config.epochs != 3
    with pytest.raises(MnistlabError, match="invalid epochs=0"):
        config.replace(epochs=0)


# -- saved exactly ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["fnn", "cnn", "keras-convnet"])
def test_the_saved_config_round_trips_exactly_through_json(tmp_path, model):
    config = make_config(model, seed=7, warmup_epochs=1, augment=0.25)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    again = TrainConfig.load(path)
    assert again.to_dict() == config.to_dict()  # tuples come back as tuples
    assert again == config
    assert json.dumps(again.to_dict()) == path.read_text()


def test_the_perturbation_settings_round_trip_and_refuse_unknown_names():
    config = make_config("cnn")
    assert config.perturb == 0.35 and config.params["stretch"] is True
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.perturbations, tuple)
    mine = make_config("fnn", perturb=0.3, perturbations=["blur", "strokes"])
    assert mine.perturbations == ("blur", "strokes")
    assert TrainConfig.from_dict(json.loads(json.dumps(mine.to_dict()))) == mine
    for bad, fragment in [
        ({"perturbations": ["fog"]}, "invalid perturbations"),
        ({"perturbations": []}, "perturbations"),
        ({"perturbations": ["blur", "blur"]}, "given twice"),
        ({"perturb": 1.5}, r"perturb=1.5: expected a number in \[0, 1\]"),
    ]:
        with pytest.raises(MnistlabError, match=fragment):
            make_config("cnn", **bad)


def test_fnn_hidden_sizes_stay_a_tuple_after_a_round_trip():
    config = make_config("fnn", params={"hidden": [64, 32]})
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.params["hidden"] == (64, 32) == config.params["hidden"]


def test_a_broken_config_file_is_one_line_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**make_config("fnn").to_dict(), "epochs": "5"}))
    with pytest.raises(MnistlabError) as info:
        TrainConfig.load(path)
    assert str(info.value) == (
        f"cannot read run config {path}: invalid epochs='5': expected an integer >= 1"
    )


# -- an ensemble's record -----------------------------------------------------------------------


def test_an_ensemble_config_names_its_members_and_round_trips():
    config = EnsembleConfig(dataset="mnist", members=["r/a", "r/b"], member_models=["cnn", "fnn"])
    assert config.model == "ensemble"
    assert EnsembleConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "epochs" not in config.to_dict()  # made, not trained: no training settings
    with pytest.raises(MnistlabError, match="invalid members=\\['r/a'\\]: expected two or more"):
        EnsembleConfig(dataset="mnist", members=["r/a"], member_models=["cnn"])
    with pytest.raises(MnistlabError, match="one model name per member"):
        EnsembleConfig(dataset="mnist", members=["r/a", "r/b"], member_models=["cnn"])
    with pytest.raises(MnistlabError, match="unknown config keys \\['epochs'\\]"):
        EnsembleConfig.from_dict({**config.to_dict(), "epochs": 3})
