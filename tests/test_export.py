"""Export: every format gives the Keras model's probabilities in the runtime that loads it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.export import FORMATS, default_export_path, export_model

pytestmark = pytest.mark.slow  # uses the session's trained model


@pytest.fixture(scope="module")
def reference(digit_run, mnist):
    """1,000 real test images and the Keras model's probabilities for them."""
    import keras

    x = mnist.x_test[:1000].astype(np.float32)[..., np.newaxis] / 255
    model = keras.saving.load_model(digit_run.model_path, compile=False)
    return x, np.asarray(model.predict(x, batch_size=250, verbose=0))


def run_savedmodel(path, x):
    """As TF Serving does: load the SavedModel and call its serving_default signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.shape.as_list() == [None, 28, 28, 1] and spec.dtype == tf.float32
    (out,) = signature(tf.constant(x)).values()
    return out.numpy()


def run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_tflite(path, x):
    try:  # LiteRT is TFLite's home now; TensorFlow's copy is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
        interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


RUNTIMES = {"savedmodel": run_savedmodel, "onnx": run_onnx, "tflite": run_tflite}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_gives_the_keras_probabilities(digit_run, reference, tmp_path, fmt, capsys):
    out = tmp_path / ("savedmodel" if fmt == "savedmodel" else f"model.{fmt}")
    assert main(["export", str(digit_run.path), "--format", fmt, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{fmt}: {out}"
    x, keras_probs = reference
    probs = RUNTIMES[fmt](out, x)
    diff = float(np.abs(probs - keras_probs).max())
    print(f"{fmt}: max |p - p_keras| over 1,000 test images = {diff:.2e}")
    assert probs.shape == (1000, 10)
    assert diff < 1e-4
    # Nothing half-written is left beside the artefact.
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_model_that_deskews_exports_to_every_format(reference, tmp_path, fmt):
    """cnn-best-deskew's first layer is this package's own; each runtime still
    gives the Keras model's probabilities (its BatchNorm statistics moved off their
    start by one training-mode call, its weights otherwise untrained)."""
    from mnistlab.models import build_model

    x = reference[0][:200]
    model = build_model("cnn-best-deskew")
    model(x, training=True)
    keras_probs = np.asarray(model.predict(x, batch_size=100, verbose=0))
    model.save(tmp_path / "m.keras")
    out = tmp_path / ("savedmodel" if fmt == "savedmodel" else f"model.{fmt}")
    export_model(tmp_path / "m.keras", fmt, out)
    assert float(np.abs(RUNTIMES[fmt](out, x) - keras_probs).max()) < 1e-4


def test_default_destinations_are_inside_the_run(digit_run):
    path = export_model(digit_run.path, "onnx")
    assert path == digit_run.path / "export" / "model.onnx" and path.is_file()
    assert default_export_path(digit_run.path, "savedmodel") == (
        digit_run.path / "export" / "savedmodel" / "1"  # TF Serving's <base>/<version>/
    )


def test_exporting_again_replaces_the_savedmodel(digit_run, tmp_path):
    out = tmp_path / "sm"
    export_model(digit_run.path, "savedmodel", out)
    (out / "stale.txt").write_text("from an older export")
    export_model(digit_run.path, "savedmodel", out)
    assert not (out / "stale.txt").exists() and (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_bad_requests_are_one_line_errors(digit_run, tmp_path, capsys):
    with pytest.raises(MnistlabError, match="unknown export format"):
        export_model(digit_run.path, "caffe")
    assert main(["export", str(tmp_path / "no-run"), "--format", "onnx"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    code = main(
        [
            "export",
            str(digit_run.path),
            "--format",
            "onnx",
            "--format",
            "tflite",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1 and "one --format" in capsys.readouterr().err
