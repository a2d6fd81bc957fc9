"""Export: every format gives the Keras model's probabilities in the runtime that loads it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.predict.export import FORMATS, default_export_path, export_model

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
    # The model's own probabilities: the run's calibration is left out of this export.
    args = ["export", str(digit_run.path), "--format", fmt, "--out", str(out), "--uncalibrated"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == f"{fmt}: {out}"
    x, keras_probs = reference
    probs = RUNTIMES[fmt](out, x)
    diff = float(np.abs(probs - keras_probs).max())
    print(f"{fmt}: max |p - p_keras| over 1,000 test images = {diff:.2e}")
    assert probs.shape == (1000, 10)
    assert diff < 1e-4
    # Nothing half-written is left beside the artefact.
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_the_default_export_gives_predicts_calibrated_probabilities(
    digit_run, reference, tmp_path, capsys
):
    """Exported without options, a run's model answers with the calibrated
    probabilities `mnistlab predict` gives (not the model's own, which differ)."""
    from mnistlab.predict import load_predictor

    out = tmp_path / "model.onnx"
    assert main(["export", str(digit_run.path), "--format", "onnx", "--out", str(out)]) == 0
    x, keras_probs = reference
    exported = run_onnx(out, x)
    calibrated = load_predictor(digit_run.path, engine="tf").probabilities(x[..., 0])
    assert float(np.abs(exported - calibrated).max()) < 1e-4
    # The calibration changes the probabilities, so the comparison above can fail.
    assert float(np.abs(exported - keras_probs).max()) > 1e-2


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


def tree(path):
    """Every file and folder under ``path`` with its content (None for a folder)."""
    return {
        p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(path.rglob("*"))
    }


def test_exporting_again_replaces_the_savedmodel(digit_run, tmp_path):
    out = tmp_path / "sm"
    export_model(digit_run.path, "savedmodel", out)
    stale = out / "variables" / "variables.data-00001-of-00002"  # an older, bigger model's
    stale.write_bytes(b"from an older export")
    export_model(digit_run.path, "savedmodel", out)
    assert not stale.exists() and (out / "saved_model.pb").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    export_model(digit_run.path, "savedmodel", empty)  # an empty directory is no loss either
    assert (empty / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "sm"]


def test_export_never_deletes_files_that_are_not_an_earlier_export(digit_run, tmp_path, capsys):
    """`--out userdir` with the user's own files in it: refused in one line, nothing touched."""
    user = tmp_path / "userdir"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("precious")
    (user / "sub" / "more.txt").write_text("also precious")
    export_model(digit_run.path, "savedmodel", tmp_path / "sm")
    (tmp_path / "sm" / "README.txt").write_text("how we deploy this")  # an export plus notes
    (tmp_path / "model.keras").write_text("not a directory")
    before = tree(tmp_path)

    for out in ("userdir", "sm", "model.keras"):
        code = main(
            ["export", str(digit_run.path), "--format", "savedmodel", "--out", str(tmp_path / out)]
        )
        out_text, err = capsys.readouterr()
        assert code == 1 and out_text == "" and err.count("\n") == 1
        assert err.startswith(f"mnistlab: error: {tmp_path / out} exists and is not a")
        assert "pass a new --out path" in err
    for fmt in ("onnx", "tflite"):  # a directory where the model file belongs
        assert main(["export", str(digit_run.path), "--format", fmt, "--out", str(user)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{user} is a directory" in err
        assert f"--out {user / f'model.{fmt}'}" in err
    assert tree(tmp_path) == before  # every file as it was, nothing left beside them


def test_an_existing_model_file_is_replaced(digit_run, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"an older export")
    export_model(digit_run.path, "onnx", out)
    assert run_onnx(out, np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


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
