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


def test_fused_batchnorm_trains_exactly_like_keras_batchnorm():
    """cnn-best's BatchNorm uses TensorFlow's fused kernel when training: same
    output, gradients and moving statistics as Keras's own layer."""
    import keras
    import tensorflow as tf

    from mnistlab.models import fused_batchnorm_class

    x = tf.constant(np.random.default_rng(0).normal(1.0, 3.0, (16, 6, 6, 5)), tf.float32)
    layers = [keras.layers.BatchNormalization(momentum=0.9), fused_batchnorm_class()(momentum=0.9)]
    results = []
    for layer in layers:
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 5))
        layer.beta.assign(np.linspace(-1.0, 1.0, 5))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(x))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    for ours, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-4)
    assert not np.allclose(np.asarray(layers[1].moving_mean), 0.0)  # the statistics moved


def _skew(images):
    """Each image's shear cov(row, col) / var(row) of its pixel intensities."""
    img = images[..., 0].astype(np.float64)
    total = img.sum(axis=(1, 2))
    rows, cols = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    d_r = rows - (img * rows).sum(axis=(1, 2))[:, None, None] / total[:, None, None]
    d_c = cols - (img * cols).sum(axis=(1, 2))[:, None, None] / total[:, None, None]
    return (img * d_r * d_c).sum(axis=(1, 2)) / (img * d_r * d_r).sum(axis=(1, 2))


def test_deskew_stands_a_slanted_stroke_upright():
    from mnistlab.models import deskew_images

    images = np.zeros((3, 28, 28, 1), np.float32)
    for row in range(4, 25):  # a stroke leaning right by 0.4 px per row, anti-aliased ...
        col = 10 + 0.4 * (row - 4)
        left = int(col)
        images[0, row, left : left + 2, 0] = (1 - (col - left), col - left)
    images[1, 4:25, 13, 0] = 1.0  # ... an upright one, and a blank image
    out = np.asarray(deskew_images(images))
    assert abs(_skew(images[:1])[0]) > 0.35
    # The leaning stroke: every row's ink now sits in the same column, and no ink is
    # lost or gained.
    ink_rows = out[0, 4:25, :, 0]
    centres = (ink_rows * np.arange(28)).sum(axis=1) / ink_rows.sum(axis=1)
    assert np.ptp(centres) < 0.05, centres
    assert abs(_skew(out[:1])[0]) < 0.01
    np.testing.assert_allclose(out[0].sum(), images[0].sum(), rtol=1e-5)
    # What is already upright, or blank, comes back as it was.
    np.testing.assert_allclose(out[1:], images[1:], atol=1e-6)


def test_deskew_stands_real_digits_upright(mnist):
    from mnistlab.models import deskew_images

    x = mnist.x_test[:2000, :, :, None].astype(np.float32) / 255
    out = np.asarray(deskew_images(x))
    assert np.abs(_skew(x)).mean() > 0.1  # MNIST's digits lean (0.19 on these)
    assert np.abs(_skew(out)).mean() < 0.01
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.01)


def test_cnn_best_deskew_deskews_in_training_and_inference():
    model = build_model("cnn-best-deskew")
    assert type(model.layers[1]).__name__ == "Deskew"
    assert model.count_params() == build_model("cnn-best").count_params()
    assert get_model_spec("cnn-best-deskew").recipe == get_model_spec("cnn-best").recipe


def test_the_default_cnn_sees_a_digit_on_gray_paper_as_on_black(mnist):
    model = build_model("cnn")
    assert type(model.layers[1]).__name__ == "ContrastStretch"
    x = mnist.x_train[:8, ..., None].astype(np.float32) / 255
    gray = 0.4 + 0.5 * x  # gray background, ink at 90% white: the same digit
    np.testing.assert_allclose(model(gray), model(x), atol=1e-5)
    assert "stretch" not in get_model_spec("cnn-fast").defaults  # the speed recipe as it was


@pytest.mark.parametrize("name", ["cnn", "cnn-best", "cnn-best-deskew"])
def test_a_saved_model_with_our_layers_predicts_alike_in_a_fresh_process(tmp_path, name):
    import subprocess
    import sys

    model = build_model(name)
    x = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    model(x, training=True)  # moves the BatchNorm statistics away from their start
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", np.asarray(model(x, training=False)))
    model.save(tmp_path / "m.keras")
    code = (
        "import numpy as np; from mnistlab.predict import load_keras_model; "
        f"m = load_keras_model({str(tmp_path / 'm.keras')!r}); "
        f"p = np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}), training=False)); "
        f"np.testing.assert_allclose(p, np.load({str(tmp_path / 'p.npy')!r}), atol=1e-5)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_unreadable_model_file_is_one_clear_error(tmp_path):
    from mnistlab.models import load_saved_model

    path = tmp_path / "m.keras"
    build_model("cnn-fast").save(path)
    path.write_bytes(path.read_bytes()[:5000])  # cut short, as by a full disk
    with pytest.raises(MnistlabError) as info:
        load_saved_model(path, hint="retrain the run")
    message = str(info.value)
    assert "m.keras" in message and "not a complete .keras archive" in message
    assert message.endswith("; retrain the run") and "\n" not in message
    with pytest.raises(MnistlabError, match="no such file"):
        load_saved_model(tmp_path / "gone.keras")
