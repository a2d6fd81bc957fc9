"""Evaluation: metrics checked by hand and against scikit-learn, then on a real trained run."""

import dataclasses
import io
import json
import math
import shutil
import zipfile

import numpy as np
import pytest
from sklearn.metrics import classification_report, log_loss

from mnistlab.errors import MnistlabError
from mnistlab.evaluate import (
    EPSILON,
    evaluate,
    format_metrics,
    load_predictions,
    metrics_from_probs,
    predictions_path,
)
from mnistlab.runs import RunDir

# -- a 3-class case small enough to work out by hand ---------------------------------------
#
# true:      0    0    0    1    1    2
# predicted: 0    0    1    1    2    2      (argmax of each row below)
#
# confusion [[2, 1, 0], [0, 1, 1], [0, 0, 1]], accuracy 4/6
# class 0: precision 2/2, recall 2/3, F1 0.8
# class 1: precision 1/2, recall 1/2, F1 0.5
# class 2: precision 1/2, recall 1/1, F1 2/3
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.6, 0.3, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.4, 0.5],
        [0.0, 0.0, 1.0],
    ]
)
NAMES = ["zero", "one", "two"]


def test_metrics_match_the_hand_computed_values():
    m = metrics_from_probs(Y_TRUE, PROBS, NAMES)

    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["test_accuracy"] == pytest.approx(4 / 6)
    assert (m["n_test"], m["n_errors"]) == (6, 2)
    assert [r["label"] for r in m["per_class"]] == NAMES
    assert [r["precision"] for r in m["per_class"]] == pytest.approx([1, 1 / 2, 1 / 2])
    assert [r["recall"] for r in m["per_class"]] == pytest.approx([2 / 3, 1 / 2, 1])
    assert [r["f1"] for r in m["per_class"]] == pytest.approx([0.8, 0.5, 2 / 3])
    assert [r["support"] for r in m["per_class"]] == [3, 2, 1]
    assert m["macro_avg"] == pytest.approx(
        {"precision": 2 / 3, "recall": (2 / 3 + 1 / 2 + 1) / 3, "f1": (0.8 + 0.5 + 2 / 3) / 3}
    )
    # Weighted by support 3, 2, 1; weighted recall is always the accuracy.
    assert m["weighted_avg"] == pytest.approx(
        {"precision": 4.5 / 6, "recall": 4 / 6, "f1": (3 * 0.8 + 2 * 0.5 + 2 / 3) / 6}
    )
    # Mean cross-entropy: minus the mean log probability given to the true class.
    p_true = [0.8, 0.6, 0.2, 0.8, 0.4, 1.0]
    assert m["test_loss"] == pytest.approx(-np.mean(np.log(p_true)))


def test_metrics_agree_with_scikit_learn_on_a_random_10_class_case():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, size=500)
    logits = rng.normal(size=(500, 10)) + 2.0 * np.eye(10)[y_true]  # better than chance
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = [str(i) for i in range(10)]

    m = metrics_from_probs(y_true, probs, names)
    ref = classification_report(y_true, probs.argmax(1), output_dict=True, zero_division=0)

    assert 0.3 < m["test_accuracy"] < 0.95  # a case with errors in every direction
    assert m["test_accuracy"] == pytest.approx(ref["accuracy"])
    assert m["test_loss"] == pytest.approx(log_loss(y_true, probs))
    for row in m["per_class"]:
        r = ref[row["label"]]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (r["precision"], r["recall"], r["f1-score"])
        )
        assert row["support"] == r["support"]
    for key, ref_key in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        assert m[key]["f1"] == pytest.approx(ref[ref_key]["f1-score"])
    assert np.sum(m["confusion_matrix"]) == 500


def test_a_class_never_predicted_gives_zero_precision_and_valid_json():
    # Everything predicted as class 0: classes 1 and 2 have no predictions at all.
    probs = np.array([[1.0, 0.0, 0.0]] * 3)
    m = metrics_from_probs(np.array([0, 1, 2]), probs, NAMES)
    assert [r["precision"] for r in m["per_class"]] == [1 / 3, 0.0, 0.0]
    json.dumps(m, allow_nan=False)  # metrics.json must stay strict JSON


def test_a_confident_mistake_costs_a_clipped_finite_loss():
    m = metrics_from_probs(np.array([1]), np.array([[1.0, 0.0]]), ["a", "b"])
    assert math.isfinite(m["test_loss"])
    assert m["test_loss"] == pytest.approx(-math.log(EPSILON))


@pytest.mark.parametrize(
    ("y_true", "probs", "match"),
    [
        (np.array([0, 1]), np.ones((2, 4)) / 4, r"shape \(N, 3\)"),
        (np.array([0, 1, 2]), np.ones((2, 3)) / 3, "y_true must have shape"),
        (np.array([0, 5]), np.ones((2, 3)) / 3, "labels in 0..2"),
        (np.array([0, 1]), np.full((2, 3), np.nan), "diverge"),
    ],
)
def test_bad_inputs_are_refused_with_a_message_naming_the_problem(y_true, probs, match):
    with pytest.raises(MnistlabError, match=match):
        metrics_from_probs(y_true, probs, NAMES)


def test_format_metrics_prints_the_numbers_and_a_readable_confusion_matrix():
    text = format_metrics(metrics_from_probs(Y_TRUE, PROBS, NAMES))
    lines = text.splitlines()

    assert "test accuracy  0.6667  (2 errors in 6 images)" in lines
    zero_row = next(line for line in lines if line.startswith("zero "))
    assert zero_row.split()[1:4] == ["1.0000", "0.6667", "0.8000"]
    assert any(line.startswith("macro avg") for line in lines)
    assert any(line.startswith("weighted avg") for line in lines)
    # The matrix rows read back as the counts, true class first.
    start = lines.index("confusion matrix (rows: true class, columns: predicted class)")
    rows = [line.split()[-3:] for line in lines[start + 2 : start + 5]]
    assert rows == [["2", "1", "0"], ["0", "1", "1"], ["0", "0", "1"]]


# -- a real run: one epoch of a small dense net on MNIST (a few seconds) --------------------


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, mnist):
    """A real run (one epoch of a small dense net), evaluated once; ``mnist`` is conftest's."""
    from mnistlab.config import make_config
    from mnistlab.train import train

    dataset = mnist
    runs_dir = tmp_path_factory.mktemp("runs")
    config = make_config("fnn", epochs=1, params={"hidden": (64, 32)})
    run = train(config, runs_dir=runs_dir, dataset=dataset, verbose=0)
    metrics = evaluate(run, dataset=dataset)
    return run, metrics, dataset


def _copy_run(run: RunDir, dest) -> RunDir:
    # A copy without the evaluation outputs, to break in different ways.
    shutil.copytree(
        run.path, dest, ignore=shutil.ignore_patterns("metrics.json", "predictions.npz", "logs")
    )
    return RunDir(dest)


@pytest.mark.slow
def test_evaluate_scores_a_real_run_and_saves_metrics_and_predictions(evaluated_run):
    run, metrics, dataset = evaluated_run

    assert json.loads(run.metrics_path.read_text()) == metrics
    assert metrics["model"] == "fnn" and metrics["dataset"] == "mnist"
    assert metrics["n_test"] == 10000
    assert metrics["test_accuracy"] > 0.9
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (10, 10)
    assert cm.sum() == 10000
    assert np.trace(cm) / cm.sum() == pytest.approx(metrics["test_accuracy"])
    # Rows of the matrix are the true test-class counts.
    assert cm.sum(axis=1).tolist() == np.bincount(dataset.y_test, minlength=10).tolist()
    assert metrics["train_seconds"] == run.state()["train_seconds"]
    assert metrics["params_count"] == 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10

    y_true, probs = load_predictions(run)
    assert probs.shape == (10000, 10) and probs.dtype == np.float32
    assert y_true.dtype == np.uint8 and np.array_equal(y_true, dataset.y_test)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.mean(probs.argmax(1) == y_true) == pytest.approx(metrics["test_accuracy"])


@pytest.mark.slow
def test_evaluate_finds_a_run_by_name_and_gives_the_same_numbers(evaluated_run):
    run, metrics, dataset = evaluated_run
    again = evaluate(run.name, runs_dir=run.path.parent, dataset=dataset)
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    assert "test accuracy" in format_metrics(again)


@pytest.mark.slow
def test_evaluate_refuses_a_run_that_is_still_running(evaluated_run, tmp_path):
    run, _, dataset = evaluated_run
    copy = _copy_run(run, tmp_path / "copy")
    copy.write_state(state="running")  # model.keras is there, but training never ended

    with pytest.raises(MnistlabError, match="did not finish"):
        evaluate(copy, dataset=dataset)
    assert not copy.metrics_path.exists()


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":  # e.g. a copy cut short by a full disk
        path.write_bytes(data[: len(data) // 2])
    elif how == "not a zip":
        path.write_bytes(b"junk" * 99)
    else:  # a valid archive that lost its weights
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w") as dst:
            for name in src.namelist():
                if "weights" not in name:
                    dst.writestr(name, src.read(name))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "not a zip", "no weights"])
def test_a_corrupt_model_file_is_a_clear_error(evaluated_run, tmp_path, how):
    run, _, dataset = evaluated_run
    copy = _copy_run(run, tmp_path / "copy")
    _damage(copy.model_path, how)

    with pytest.raises(MnistlabError, match=r"cannot load .*model\.keras.*corrupt"):
        evaluate(copy, dataset=dataset)
    assert not copy.metrics_path.exists()
    assert not predictions_path(copy).exists()


@pytest.mark.slow
def test_evaluate_refuses_data_from_another_dataset(evaluated_run):
    run, _, dataset = evaluated_run
    wrong = dataclasses.replace(dataset, name="fashion-mnist")
    with pytest.raises(MnistlabError, match="trained on 'mnist'.*'fashion-mnist'"):
        evaluate(run, dataset=wrong)


def test_load_predictions_of_an_unevaluated_run_says_what_to_do(tmp_path):
    from mnistlab.config import make_config

    run = RunDir.create(tmp_path, make_config("fnn"))
    with pytest.raises(MnistlabError, match="mnistlab evaluate"):
        load_predictions(run)


# -- ROC-AUC, ECE and calibration of the real run ----------------------------------------------


@pytest.mark.slow
def test_metrics_json_holds_roc_auc_average_precision_and_ece(evaluated_run):
    from sklearn.metrics import roc_auc_score

    from mnistlab.evaluate import expected_calibration_error

    run, metrics, _ = evaluated_run
    y_true, probs = load_predictions(run)

    auc = metrics["roc_auc"]
    assert len(auc["per_class"]) == 10
    assert auc["macro"] == pytest.approx(
        roc_auc_score(y_true, probs, multi_class="ovr", average="macro")
    )
    assert 0.98 < auc["macro"] <= 1.0 and 0.98 < auc["micro"] <= 1.0  # a trained net ranks well
    assert len(metrics["average_precision"]["per_class"]) == 10
    assert metrics["ece_bins"] == 15
    assert metrics["ece"] == pytest.approx(expected_calibration_error(y_true, probs))
    assert "ROC-AUC" in format_metrics(metrics) and "ECE" in format_metrics(metrics)


@pytest.mark.slow
def test_calibrate_fits_on_validation_and_leaves_the_model_file_alone(evaluated_run, tmp_path):
    import hashlib

    import keras

    from mnistlab.data import to_float
    from mnistlab.evaluate import apply_temperature, calibrate, format_calibration, load_calibration

    run, metrics, dataset = evaluated_run
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns("logs", "checkpoints"))
    copy = RunDir(copy)
    model_digest = hashlib.sha256(copy.model_path.read_bytes()).hexdigest()

    record = calibrate(copy, dataset=dataset)

    assert load_calibration(copy) == json.loads(json.dumps(record))
    assert record["fitted_on"] == "validation" and record["n_fit"] == 5000
    assert 0.05 < record["temperature"] < 20
    # Fitted to minimise validation NLL, so it cannot be worse there than T = 1.
    assert record["validation"]["nll_after"] <= record["validation"]["nll_before"] + 1e-9
    assert record["test"]["ece_before"] == pytest.approx(metrics["ece"])
    assert record["test"]["nll_before"] == pytest.approx(metrics["test_loss"], rel=1e-5)
    text = format_calibration(record)
    assert f"{record['temperature']:.4f}" in text and "test ECE" in text

    # model.keras is untouched and still predicts what evaluate saved.
    assert hashlib.sha256(copy.model_path.read_bytes()).hexdigest() == model_digest
    model = keras.saving.load_model(copy.model_path, compile=False)
    y_true, probs = load_predictions(copy)
    fresh = model.predict(to_float(dataset.x_test[:50]), verbose=0)
    np.testing.assert_allclose(fresh, probs[:50], atol=1e-5)
    # Applying the temperature keeps every prediction.
    scaled = apply_temperature(probs, record["temperature"])
    assert np.array_equal(scaled.argmax(1), probs.argmax(1))


def test_calibrate_with_a_corrupt_model_writes_nothing(tmp_path):
    # mnistlab train calibrates before any evaluation, so calibrate needs no predictions;
    # a model file it cannot read is one line, and no calibration.json is left behind.
    from mnistlab.config import make_config
    from mnistlab.evaluate import calibrate

    run = RunDir.create(tmp_path, make_config("fnn"))
    run.write_state(state="finished")
    run.model_path.write_bytes(b"")
    with pytest.raises(MnistlabError, match=r"cannot load .*model\.keras.*corrupt"):
        calibrate(run)
    assert not (run.path / "calibration.json").exists()
