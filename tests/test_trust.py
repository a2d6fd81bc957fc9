"""Trust (issue 25): calibrated by default, abstention with a reason, outliers split apart.

Uses the session's ``digit_run`` (made by ``mnistlab.trust.train_trusted``, as
``mnistlab train`` makes runs: calibrated, with abstention.json).
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.evaluate import apply_calibration, expected_calibration_error
from mnistlab.runs import load_calibration, load_predictions
from mnistlab.trust import choose_thresholds, make_outliers
from mnistlab.trust.checks import several_side_by_side
from mnistlab.trust.outliers import DIGIT_LIKE, font_split, fonts


def _png(ink: np.ndarray) -> bytes:
    """Dark ink on white paper, as a user's scan would be."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def side_by_side(mnist, indices=(0, 1, 2)) -> np.ndarray:
    """Three MNIST test digits written next to each other on one strip."""
    strip = np.zeros((28, 28 * len(indices) + 8 * (len(indices) - 1)), np.float32)
    for i, index in enumerate(indices):
        strip[:, i * 36 : i * 36 + 28] = mnist.x_test[index] / 255
    return np.pad(strip, 10)


# -- calibration -----------------------------------------------------------------------


def test_a_trained_run_is_calibrated_and_evaluate_reports_calibrated_probabilities(digit_run):
    calibration = load_calibration(digit_run)
    assert calibration is not None and calibration["fitted_on"] == "validation"
    metrics = digit_run.metrics()
    assert metrics["calibrated"] is True
    # cnn-fast's label smoothing makes it under-confident; calibrated, it is not.
    assert metrics["ece"] < 0.02 and metrics["ece"] < metrics["ece_uncalibrated"]
    y, probs = load_predictions(digit_run)
    _, raw = load_predictions(digit_run, uncalibrated=True)
    assert np.allclose(apply_calibration(raw, calibration), probs, atol=1e-5)
    assert expected_calibration_error(y, probs) == pytest.approx(metrics["ece"], abs=1e-6)


def test_predict_applies_the_calibration_unless_asked_not_to(digit_run, mnist):
    from mnistlab.predict import load_predictor

    x = mnist.x_test[:20].astype(np.float32) / 255
    calibrated = load_predictor(digit_run.path, abstain=False).probabilities(x)
    raw = load_predictor(digit_run.path, calibrated=False, abstain=False).probabilities(x)
    assert np.allclose(calibrated, apply_calibration(raw, load_calibration(digit_run)), atol=1e-5)
    assert calibrated.max(axis=1).mean() > raw.max(axis=1).mean()  # under-confidence fixed


# -- thresholds: validation only ---------------------------------------------------------


def test_thresholds_keep_the_target_share_of_validation_digits(digit_run):
    record = digit_run.abstention_record()
    assert record is not None and record.fitted_on == "validation"
    assert record.validation is not None
    assert record.validation.kept == pytest.approx(record.target_keep, abs=0.002)


@pytest.mark.slow
def test_thresholds_do_not_depend_on_the_test_set(digit_run, mnist, tmp_path):
    import dataclasses

    from mnistlab.trust import fit_trust

    copy = type(digit_run)(shutil.copytree(digit_run.path, tmp_path / "run"))
    rng = np.random.default_rng(1)
    scrambled = dataclasses.replace(
        mnist,
        x_test=rng.integers(0, 256, mnist.x_test.shape, dtype=np.uint8),
        y_test=rng.permutation(mnist.y_test),
    )
    again = fit_trust(copy, dataset=scrambled, calibrate_first=False, refit_exposure=False)
    before = json.loads(digit_run.abstention_path.read_text())
    for key in ("score", "ood_threshold", "min_confidence", "max_ink"):
        assert again[key] == pytest.approx(before[key]), key


def test_choose_thresholds_meets_its_target_on_the_digits_it_is_given(mnist):
    rng = np.random.default_rng(0)
    images = mnist.x_train[:2000].astype(np.float32) / 255
    probs = rng.dirichlet(np.full(10, 0.05), size=2000)
    scores = rng.normal(size=2000)
    chosen = choose_thresholds(images, probs, scores, target_keep=0.95)
    assert chosen["validation"]["kept"] == pytest.approx(0.95, abs=0.002)
    assert 0 < chosen["min_confidence"] < 1


# -- outlier data ------------------------------------------------------------------------


def test_outliers_are_split_by_font_and_seed():
    splits = {font_split(f) for f in fonts()}
    assert splits == {"train", "val", "test"}
    a, b = make_outliers("doodles", "val", 20), make_outliers("doodles", "test", 20)
    assert a.shape == (20, 28, 28) and not any(np.array_equal(x, y) for x in a for y in b)
    assert np.array_equal(
        make_outliers("scribbles", "test", 5), make_outliers("scribbles", "test", 5)
    )
    assert not {"O", "I", "l", "S", "Z", "B", "g", "q", "o"} - DIGIT_LIKE


def test_outliers_are_in_mnist_form():
    images = make_outliers("letters", "test", 30)
    assert len(images) == 30 and images.dtype == np.float32
    ys, xs = np.mgrid[0:28, 0:28]
    for image in images:
        rows, cols = np.nonzero(image > 0.05)
        assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21
        total = image.sum()
        assert (
            abs((ys * image).sum() / total - 13.5) <= 1
            and abs((xs * image).sum() / total - 13.5) <= 1
        )


def test_several_digits_side_by_side_are_flagged_but_single_digits_are_not(mnist):
    from mnistlab.trust.outliers import mnist_form

    assert several_side_by_side(mnist_form(side_by_side(mnist)))
    singles = mnist.x_test[:500].astype(np.float32) / 255
    assert np.mean([several_side_by_side(x) for x in singles]) <= 0.01


# -- abstention through the CLI ----------------------------------------------------------


def test_predict_abstains_with_a_reason_and_keeps_the_scores(digit_run, mnist, tmp_path, capsys):
    (tmp_path / "number.png").write_bytes(_png(side_by_side(mnist)))
    rng = np.random.default_rng(0)
    (tmp_path / "noise.png").write_bytes(_png((rng.random((60, 60)) > 0.5).astype(np.float32)))
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "seven.png").write_bytes(_png(np.pad(mnist.x_test[0] / 255, 8)))

    assert main(["predict", str(digit_run.path), str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in report["results"]}
    assert by_name["number.png"]["digit"] is None
    assert by_name["number.png"]["reason"] == "not a single digit"
    assert "mnistlab read" in by_name["number.png"]["explanation"]
    assert by_name["noise.png"]["reason"] == "not a digit"
    assert sum(by_name["noise.png"]["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert by_name["seven.png"]["digit"] == 7 and by_name["seven.png"]["reason"] is None
    assert report["summary"]["abstained"] == 2 and report["summary"]["accuracy"] == 1.0

    # Text output: the reason instead of a digit; --no-abstain always names one.
    assert main(["predict", str(digit_run.path), str(tmp_path / "number.png")]) == 0
    assert "-- not a single digit:" in capsys.readouterr().out
    assert main(["predict", str(digit_run.path), str(tmp_path / "number.png"), "--no-abstain"]) == 0
    out = capsys.readouterr().out
    assert "not a single digit" not in out and "1 files: 1 predicted, 0 failed" in out


def test_min_confidence_moves_the_operating_point(digit_run, mnist, tmp_path, capsys):
    (tmp_path / "seven.png").write_bytes(_png(np.pad(mnist.x_test[0] / 255, 8)))
    args = ["predict", str(digit_run.path), str(tmp_path / "seven.png"), "--json"]
    assert main([*args, "--min-confidence", "1"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["digit"] is None and result["reason"] == "unsure"
    assert main([*args, "--min-confidence", "1.5"]) != 0  # out of range: one line
    assert "Traceback" not in capsys.readouterr().err
