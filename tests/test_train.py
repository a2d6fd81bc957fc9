"""Training on real MNIST: a short run learns, its run directory is complete, and an
interrupted run resumes to the same end (in-process; tests/test_resume.py kills processes)."""

import csv
import dataclasses
import json
import os
import signal

import numpy as np
import pytest

from mnistlab.config import make_config
from mnistlab.data import to_float
from mnistlab.errors import MnistlabError
from mnistlab.models import list_models
from mnistlab.train import (
    PERTURBATIONS,
    TrainingInterrupted,
    augment_batch,
    epoch_order,
    make_pipeline,
    perturb_batch,
    train,
)


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
def test_keep_last_saves_the_final_epochs_weights_not_the_best(mnist, tmp_path):
    import keras

    # A learning rate this large wrecks the net after its first epoch: the second
    # does not improve on it, and patience 1 stops there.
    config = make_config(
        "fnn",
        params={"hidden": (64, 32)},
        epochs=6,
        patience=1,
        schedule="constant",
        learning_rate=5.0,
        keep="last",
    )
    run = train(config, runs_dir=tmp_path, dataset=mnist, verbose=0)
    state = run.state()
    last, best = state["epochs_run"], state["best_epoch"]
    assert best < last and state["kept_epoch"] == last

    def weights(path):
        return keras.saving.load_model(path).get_weights()

    saved = weights(run.model_path)
    for a, b in zip(saved, weights(run.checkpoints_dir / f"epoch-{last:04d}.keras"), strict=True):
        np.testing.assert_array_equal(a, b)
    best_weights = weights(run.checkpoints_dir / f"epoch-{best:04d}.keras")
    assert any(not np.array_equal(a, b) for a, b in zip(saved, best_weights, strict=True))
    assert make_config("cnn-best").keep == "last"  # its one-cycle schedule ends at 0
    assert make_config("fnn").keep == "best"


@pytest.mark.slow
def test_val_size_zero_trains_on_every_image_and_keeps_the_last_epoch(mnist, tmp_path):
    """No validation split: all 60,000 images train, nothing stops early, the last
    epoch's weights are saved, and the report draws training curves alone."""
    import keras

    from mnistlab.evaluate import calibrate, evaluate
    from mnistlab.report import write_report

    config = make_config(
        "fnn", params={"hidden": (128, 64)}, epochs=2, patience=1, keep="last", val_size=0
    )
    run = train(config, runs_dir=tmp_path, dataset=mnist, verbose=0)
    state = run.state()
    assert state["epochs_run"] == 2 and state["kept_epoch"] == 2
    assert state.get("best_epoch") is None and state.get("best_val_accuracy") is None
    rows = history_of(run, ("accuracy", "val_accuracy"))
    assert all(np.isnan(float(row["val_accuracy"])) for row in rows)
    assert float(rows[-1]["accuracy"]) > 0.9
    # Optimiser steps for 60,000 images an epoch, not 55,000.
    model = keras.saving.load_model(run.model_path)
    assert int(model.optimizer.iterations) == 2 * -(-60000 // config.batch_size)
    assert np.mean(model.predict(to_float(mnist.x_test[:2000]), verbose=0).argmax(1)
                   == mnist.y_test[:2000]) > 0.9  # fmt: skip
    evaluate(run, dataset=mnist)
    report = write_report(run, dataset=mnist)
    assert "no validation split" in report.read_text()
    # ...and it does not advise `mnistlab calibrate`, which would refuse this run.
    assert "Run 'mnistlab calibrate RUN'" not in report.read_text()
    with pytest.raises(MnistlabError, match="val_size 0"):  # nothing held out to fit T on
        calibrate(run, dataset=mnist)


@pytest.mark.slow
@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_learns_from_a_few_real_steps(mnist, name):
    """A few hundred real optimiser steps on every model lift accuracy far above chance.

    300 steps, not 100: set when cnn-best's BatchNorm used Keras's momentum 0.99,
    whose moving averages (which inference uses) needed a few hundred steps to
    forget their initial values; at today's 0.9 fewer would do.
    """
    import keras

    from mnistlab.data import to_float
    from mnistlab.models import build_model
    from mnistlab.train import compile_model

    config = make_config(name, epochs=3, batch_size=64)
    model = build_model(name)
    x, y = to_float(mnist.x_train[:6400]), keras.utils.to_categorical(mnist.y_train[:6400], 10)
    compile_model(model, config, steps_per_epoch=100)
    keras.utils.set_random_seed(0)
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    probs = model.predict(to_float(mnist.x_test[:2000]), verbose=0)
    assert np.mean(probs.argmax(1) == mnist.y_test[:2000]) > 0.8


# %% Resuming: everything random is a function of (seed, epoch) ------------------------


def subset(mnist, n: int):
    """The first ``n`` real training images (and the real test set), as a Dataset."""
    return dataclasses.replace(
        mnist, x_train=mnist.x_train[:n], y_train=mnist.y_train[:n], source=f"first {n} images"
    )


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    first = epoch_order(7, 2, 1000)
    assert sorted(first.tolist()) == list(range(1000))  # a permutation
    np.testing.assert_array_equal(first, epoch_order(7, 2, 1000))
    assert not np.array_equal(first, epoch_order(7, 3, 1000))  # each epoch reshuffles
    assert not np.array_equal(first, epoch_order(8, 2, 1000))  # and each seed


def test_a_pipeline_resumed_at_epoch_k_yields_exactly_the_batches_of_the_full_one(mnist):
    # With augmentation on: shuffle order and the random affine transforms both continue.
    x, y = mnist.x_train[:1000], mnist.y_train[:1000]
    config = make_config("fnn", epochs=3, batch_size=256, augment=1.0, seed=4)
    full = [(a.numpy(), b.numpy()) for a, b in make_pipeline(x, y, config, training=True)]
    resumed = [
        (a.numpy(), b.numpy())
        for a, b in make_pipeline(x, y, config, training=True, initial_epoch=1)
    ]
    steps = 4  # ceil(1000 / 256), the last batch of each epoch holding 232 images
    assert len(full) == 3 * steps and len(resumed) == 2 * steps
    assert [len(a) for a, _ in full[:steps]] == [256, 256, 256, 232]
    for (xa, ya), (xb, yb) in zip(full[steps:], resumed, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Each epoch has its own order and its own augmentation.
    assert not np.array_equal(full[0][1], full[steps][1])
    plain = make_config("fnn", epochs=3, batch_size=256, augment=0.0, seed=4)
    unaugmented = next(iter(make_pipeline(x, y, plain, training=True)))
    np.testing.assert_array_equal(unaugmented[1].numpy(), full[0][1])  # same images...
    assert not np.allclose(unaugmented[0].numpy(), full[0][0])  # ...moved


def test_fit_returns_when_its_last_epoch_ends(mnist):
    """No idle wait after training: with tf.data's autotuner on, deleting the
    pipeline's iterator often waited for the autotuner's next wake-up (fit
    returned 0.5-2.5 s late in three of six such runs, and up to a minute late
    in longer ones).

    Checked on its cause, not on a stopwatch: that wait was idle time, which a
    bound on seconds cannot tell from a busy machine (a 0.2 s bound flaked on
    2 shared cores). Every pipeline fit reads, training (augmented or not) and
    validation, has the autotuner off, so nothing is left to wait for."""
    x, y = mnist.x_train[:512], mnist.y_train[:512]
    for augment in (0.0, 0.5):
        config = make_config("cnn-fast", epochs=2, augment=augment)
        for training in (True, False):
            options = make_pipeline(x, y, config, training=training).options()
            assert options.autotune.enabled is False, (augment, training)


def test_augmentation_is_seeded_and_keeps_digits_recognisable(mnist):
    import tensorflow as tf

    images = tf.constant(to_float(mnist.x_train[:64]))
    seed = tf.constant([3, 17], tf.int64)
    once, again = augment_batch(images, seed, 1.0), augment_batch(images, seed, 1.0)
    np.testing.assert_array_equal(once.numpy(), again.numpy())
    other = augment_batch(images, tf.constant([3, 18], tf.int64), 1.0)
    assert not np.array_equal(once.numpy(), other.numpy())
    # Strength 0 is the identity transform.
    np.testing.assert_allclose(augment_batch(images, seed, 0.0).numpy(), images.numpy(), atol=1e-6)
    # Small moves: values stay in [0, 1] and most of each digit's ink stays in the frame.
    out = once.numpy()
    assert out.min() >= 0 and out.max() <= 1
    ink_kept = out.sum(axis=(1, 2, 3)) / images.numpy().sum(axis=(1, 2, 3))
    assert ink_kept.min() > 0.6 and 0.85 < np.median(ink_kept) < 1.25


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_each_perturbation_is_seeded_keeps_shape_and_range_and_changes_digits(mnist, name):
    import tensorflow as tf

    images = tf.constant(to_float(mnist.x_train[:32]))
    seed = tf.constant([5, 26], tf.int64)
    once = PERTURBATIONS[name](images, seed).numpy()
    np.testing.assert_array_equal(once, PERTURBATIONS[name](images, seed).numpy())
    other = PERTURBATIONS[name](images, tf.constant([5, 27], tf.int64)).numpy()
    assert not np.array_equal(once, other)  # another seed, other draws
    assert once.shape == (32, 28, 28, 1) and once.dtype == np.float32
    assert once.min() >= 0 and once.max() <= 1
    changed = np.abs(once - images.numpy()).max(axis=(1, 2, 3)) > 0.05
    assert changed.mean() >= 0.75, changed.mean()  # a band may miss the field, rarely


def test_perturb_batch_perturbs_the_share_asked_for_one_family_each(mnist):
    import tensorflow as tf

    images = tf.constant(to_float(mnist.x_train[:512]))
    seed = tf.constant([1, 2], tf.int64)
    np.testing.assert_array_equal(perturb_batch(images, seed, 0.0).numpy(), images.numpy())
    half = perturb_batch(images, seed, 0.5).numpy()
    np.testing.assert_array_equal(half, perturb_batch(images, seed, 0.5).numpy())
    changed = np.abs(half - images.numpy()).max(axis=(1, 2, 3)) > 0.05
    assert 0.35 < changed.mean() < 0.6, changed.mean()
    # With one family, the perturbed digits are exactly that family's output.
    only = perturb_batch(images, seed, 1.0, ["invert_band"]).numpy()
    bands = PERTURBATIONS["invert_band"](images, tf.random.experimental.stateless_split(seed, 3)[2])
    np.testing.assert_allclose(only, bands.numpy(), atol=1e-6)
    with pytest.raises(MnistlabError, match="invalid perturbations"):
        perturb_batch(images, seed, 0.5, ["fog"])


# The label survives: the cnn-fast reference run, never trained on any perturbation,
# still reads most digits it read clean under these families (measured on validation
# digits, tools/perturbation_validation.py: 91-98% of all digits right). The others
# (salt and pepper, gray backgrounds, occlusion, outlines, inverted bands) keep the
# digit where it is by construction, but need a model trained to read them.
READABLE_TO_THE_REFERENCE = ["gamma", "gaussian_noise", "blur", "elastic", "strokes"]


@pytest.mark.parametrize("name", READABLE_TO_THE_REFERENCE)
def test_perturbed_digits_keep_their_label_for_the_reference_model(digit_run, mnist, name):
    import tensorflow as tf

    from mnistlab.predict import load_predictor

    predictor = load_predictor(digit_run.path)
    x, y = to_float(mnist.x_train[:300]), mnist.y_train[:300]  # the train split: no test digit
    right = predictor.probabilities(x[..., 0]).argmax(axis=1) == y
    perturbed = PERTURBATIONS[name](tf.constant(x), tf.constant([7, 7], tf.int64)).numpy()
    kept = np.mean(predictor.probabilities(perturbed[..., 0]).argmax(axis=1)[right] == y[right])
    assert kept >= 0.85, kept


def test_a_pipeline_with_perturbations_is_seeded_and_resumes_to_the_same_batches(mnist):
    x, y = mnist.x_train[:600], mnist.y_train[:600]
    config = make_config("cnn", epochs=2, batch_size=300, seed=3)
    assert config.perturb > 0 and config.augment > 0  # the default model's recipe
    full = [a.numpy() for a, _ in make_pipeline(x, y, config, training=True)]
    resumed = [a.numpy() for a, _ in make_pipeline(x, y, config, training=True, initial_epoch=1)]
    np.testing.assert_array_equal(full[2], resumed[0])
    unperturbed = next(iter(make_pipeline(x, y, config.replace(perturb=0.0), training=True)))
    same = np.isclose(unperturbed[0].numpy(), full[0]).all(axis=(1, 2, 3))
    assert 0.2 < 1 - same.mean() < 0.5  # about 35% of the digits perturbed, the rest as before


@pytest.mark.slow
def test_ctrl_c_mid_epoch_then_resume_ends_like_an_uninterrupted_run(mnist, tmp_path):
    """Early stopping must carry over too: interrupt during the run's last epoch, when
    its wait counter is 1 of 2; a resume that forgot it would train on past that epoch."""
    import keras

    data = subset(mnist, 6000)
    config = make_config(
        "fnn",
        params={"hidden": (64, 32)},
        epochs=12,
        patience=2,
        schedule="constant",
        learning_rate=3e-3,
        val_size=1000,
        seed=5,
    )
    whole = train(config, runs_dir=tmp_path / "whole", dataset=data, verbose=0)
    ended = whole.state()
    assert ended["epochs_run"] < config.epochs, "precondition: early stopping ended the run"
    last = ended["epochs_run"]  # 1-based; this epoch ran with wait == 1

    class CtrlCDuring(keras.callbacks.Callback):
        """Sends this process SIGINT in the middle of epoch ``last``."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == last and batch == 10:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stopped:
        train(
            config,
            runs_dir=tmp_path / "cut",
            dataset=data,
            verbose=0,
            callbacks=[CtrlCDuring()],
            run_name="cut",
        )
    run = stopped.value.run
    assert stopped.value.epochs_done == last - 1  # the epoch in progress is not kept
    assert f"resume with: mnistlab train --resume {run.path}" in str(stopped.value)
    assert run.state()["state"] == "interrupted"
    assert json.loads(run.resume_path.read_text())["wait"] == 1

    resumed = train(resume=run, dataset=data, verbose=0)
    state = resumed.state()
    assert state["state"] == "finished"
    assert state["resumed"][0]["epoch"] == last - 1
    assert (state["epochs_run"], state["best_epoch"]) == (ended["epochs_run"], ended["best_epoch"])
    assert state["best_val_accuracy"] == ended["best_val_accuracy"]
    columns = ("epoch", "loss", "val_loss", "val_accuracy", "lr")
    assert history_of(resumed, columns) == history_of(whole, columns)
    a, b = load_weights(whole), load_weights(resumed)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-6)


def history_of(run, columns):
    with open(run.history_path) as fh:
        return [{k: row[k] for k in columns} for row in csv.DictReader(fh)]


def load_weights(run):
    import keras

    return keras.saving.load_model(run.model_path).get_weights()


def test_resume_refuses_a_finished_run_a_busy_run_and_other_data(mnist, tmp_path):
    data = subset(mnist, 3000)
    config = make_config("fnn", params={"hidden": (16, 16)}, epochs=1, val_size=500)
    run = train(config, runs_dir=tmp_path, dataset=data, verbose=0)
    with pytest.raises(MnistlabError, match="already finished"):
        train(resume=run, dataset=data, verbose=0)

    run.write_state(state="interrupted")
    with pytest.raises(MnistlabError, match="other training images"):
        train(resume=run, dataset=subset(mnist, 3001), verbose=0)
    with pytest.raises(MnistlabError, match="another config"):
        train(make_config("fnn", epochs=2), resume=run, dataset=data, verbose=0)
    with run.training_lock(), pytest.raises(MnistlabError, match="being trained by another"):
        train(resume=run, dataset=data, verbose=0)


def test_a_run_records_the_kind_it_was_trained_as(mnist, tmp_path):
    data = subset(mnist, 3000)
    config = make_config("fnn", params={"hidden": (16, 16)}, epochs=1, val_size=500)
    fold = train(config, runs_dir=tmp_path / "cv", dataset=data, verbose=0, kind="cv-fold")
    assert fold.kind == "cv-fold"
    assert json.loads((fold.path / "run.json").read_text())["kind"] == "cv-fold"
    assert train(config, runs_dir=tmp_path / "plain", dataset=data, verbose=0).kind == "train"
    # An ensemble is made from runs, never trained; refused before any data is touched.
    with pytest.raises(MnistlabError, match="invalid kind='ensemble'"):
        train(config, runs_dir=tmp_path / "bad", dataset=data, verbose=0, kind="ensemble")
    assert not (tmp_path / "bad").exists()


def test_a_run_whose_loss_diverges_fails_instead_of_finishing(mnist, tmp_path):
    data = subset(mnist, 3000)
    # A learning rate this large drives the weights, then the loss, to NaN in epoch 1.
    config = make_config(
        "fnn", params={"hidden": (16, 8)}, epochs=2, val_size=500, learning_rate=1e30
    )
    with pytest.raises(MnistlabError, match="training diverged in epoch 1") as info:
        train(config, runs_dir=tmp_path, dataset=data, verbose=0)
    assert "lower learning rate" in str(info.value) and "resume" not in str(info.value)
    (path,) = [p for p in tmp_path.iterdir() if p.name != "latest"]
    assert json.loads((path / "run.json").read_text())["state"] == "failed"
    assert not (path / "model.keras").exists()  # nothing for evaluate, predict or ensemble


def test_a_run_killed_after_its_last_commit_resumes_by_writing_its_model(mnist, tmp_path):
    # Killed between the last epoch's checkpoint and model.keras: nothing left to train.
    data = subset(mnist, 3000)
    config = make_config("fnn", params={"hidden": (16, 16)}, epochs=2, val_size=500)
    run = train(config, runs_dir=tmp_path, dataset=data, verbose=0)
    finished = load_weights(run)
    run.model_path.unlink()
    run.write_state(state="running")

    train(resume=run, dataset=data, verbose=0)
    assert run.state()["state"] == "finished" and run.state()["epochs_run"] == 2
    for a, b in zip(finished, load_weights(run), strict=True):
        np.testing.assert_array_equal(a, b)  # the best epoch's weights, as before
