"""Training on real MNIST: a short run learns, and its run directory is complete."""

import csv
import json

import numpy as np
import pytest

from mnistlab.config import make_config
from mnistlab.models import list_models
from mnistlab.train import train


@pytest.mark.slow
def test_a_short_real_run_learns_and_records_everything(mnist, tmp_path):
    config = make_config("fnn", params={"hidden": (128, 64)}, epochs=2, seed=1)
    run = train(config, runs_dir=tmp_path, dataset=mnist, verbose=0)

    state = run.state()
    assert state["state"] == "finished"
    assert state["epochs_run"] == 2
    # Two epochs of a small feed-forward net already classify most digits.
    assert state["best_val_accuracy"] > 0.95

    with open(run.history_path) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])
    assert max(float(r["val_accuracy"]) for r in rows) == pytest.approx(state["best_val_accuracy"])

    saved = json.loads(run.config_path.read_text())
    assert saved["model"] == "fnn" and saved["seed"] == 1 and saved["params"]["hidden"] == [128, 64]
    assert run.model_path.is_file() and run.checkpoint_path.is_file()
    assert any(run.logs_dir.rglob("events.out.tfevents.*"))
    assert (tmp_path / "latest").resolve() == run.path.resolve()


@pytest.mark.slow
def test_early_stopping_restores_the_best_validation_weights(mnist, tmp_path):
    import keras

    from mnistlab.data import to_float, train_val_split

    # patience 1 with a large constant learning rate: stops early, keeps the best epoch.
    config = make_config(
        "fnn", params={"hidden": (64, 32)}, epochs=6, patience=1, schedule="constant"
    )
    run = train(config, runs_dir=tmp_path, dataset=mnist, verbose=0)
    model = keras.saving.load_model(run.model_path)
    _, _, x_val, y_val = train_val_split(mnist.x_train, mnist.y_train, seed=config.seed)
    val_acc = np.mean(model.predict(to_float(x_val), verbose=0).argmax(1) == y_val)
    assert val_acc == pytest.approx(run.state()["best_val_accuracy"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_learns_from_a_few_real_steps(mnist, name):
    """A few hundred real optimiser steps on every model lift accuracy far above chance."""
    import keras

    from mnistlab.data import to_float
    from mnistlab.models import build_model
    from mnistlab.train import compile_model

    config = make_config(name, epochs=1, batch_size=64)
    model = build_model(name)
    x, y = to_float(mnist.x_train[:6400]), keras.utils.to_categorical(mnist.y_train[:6400], 10)
    compile_model(model, config, steps_per_epoch=100)
    keras.utils.set_random_seed(0)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    probs = model.predict(to_float(mnist.x_test[:2000]), verbose=0)
    assert np.mean(probs.argmax(1) == mnist.y_test[:2000]) > 0.8
