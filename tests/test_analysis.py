"""Analysis: ROC/PR against scikit-learn, ECE and temperature scaling on known cases."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from mnistlab.errors import MnistlabError
from mnistlab.evaluate import (
    N_BINS,
    analysis_metrics,
    apply_temperature,
    average_precision,
    confused_pairs,
    expected_calibration_error,
    fit_temperature,
    load_calibration,
    member_overlap,
    negative_log_likelihood,
    per_class_accuracy,
    pr_curves,
    ranked_mistakes,
    reliability,
    roc_auc,
    roc_curves,
)
from mnistlab.runs import RunDir


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def noisy_case():
    """A fixed 10-class case: 2,000 images, a classifier right about half the time."""
    rng = np.random.default_rng(42)
    y = rng.integers(0, 10, size=2000)
    probs = _softmax(rng.normal(size=(2000, 10)) * 1.5 + 2.0 * np.eye(10)[y])
    return y, probs


# -- ROC and precision-recall ---------------------------------------------------------------


def test_roc_auc_matches_scikit_learn_per_class_micro_and_macro(noisy_case):
    y, probs = noisy_case
    result = roc_auc(y, probs)
    onehot = label_binarize(y, classes=range(10))

    assert 0.3 < np.mean(probs.argmax(1) == y) < 0.9  # neither trivial nor perfect
    expected = [roc_auc_score(onehot[:, c], probs[:, c]) for c in range(10)]
    assert result["per_class"] == pytest.approx(expected, abs=1e-12)
    assert result["macro"] == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert result["micro"] == pytest.approx(
        roc_auc_score(onehot, probs, average="micro"), abs=1e-12
    )


def test_average_precision_matches_scikit_learn(noisy_case):
    y, probs = noisy_case
    result = average_precision(y, probs)
    onehot = label_binarize(y, classes=range(10))

    assert result["per_class"] == pytest.approx(
        average_precision_score(onehot, probs, average=None).tolist(), abs=1e-12
    )
    assert result["macro"] == pytest.approx(
        average_precision_score(onehot, probs, average="macro"), abs=1e-12
    )
    assert result["micro"] == pytest.approx(
        average_precision_score(onehot, probs, average="micro"), abs=1e-12
    )


def test_roc_curves_run_from_0_0_to_1_1_and_enclose_their_auc(noisy_case):
    y, probs = noisy_case
    curves = roc_curves(y, probs, [f"digit {i}" for i in range(10)])

    assert [c.label for c in curves] == [f"digit {i}" for i in range(10)] + ["micro"]
    for curve in curves:
        assert (curve.x[0], curve.y[0]) == (0.0, 0.0)
        assert (curve.x[-1], curve.y[-1]) == (1.0, 1.0)
        assert np.all(np.diff(curve.x) >= 0)  # false-positive rate never decreases
        assert auc(curve.x, curve.y) == pytest.approx(curve.area, abs=1e-12)


def test_pr_curves_end_at_full_recall_with_the_class_prevalence(noisy_case):
    y, probs = noisy_case
    curves = pr_curves(y, probs)
    for c, curve in enumerate(curves[:-1]):
        assert np.all(np.diff(curve.x) >= 0)  # recall rises left to right
        assert curve.x[-1] == 1.0
        # At threshold 0 every image is called positive: precision = share of the class.
        assert curve.y[-1] == pytest.approx(np.mean(y == c))
        assert curve.area == pytest.approx(average_precision(y, probs)["per_class"][c])


def test_a_class_absent_from_the_labels_has_no_auc_and_the_json_stays_valid():
    y = np.array([0, 0, 1, 1])  # class 2 never occurs
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1]])
    result = analysis_metrics(y, probs)

    assert result["roc_auc"]["per_class"][2] is None
    # Class 0 vs rest: scores 0.7, 0.4 (positives) vs 0.3, 0.2: perfectly ranked.
    assert result["roc_auc"]["per_class"][0] == 1.0
    assert result["roc_auc"]["macro"] == pytest.approx(np.mean(result["roc_auc"]["per_class"][:2]))
    json.dumps(result, allow_nan=False)
    assert roc_curves(y, probs)[2].area is None


# -- calibration ------------------------------------------------------------------------------


def test_ece_of_a_constructed_case_equals_the_hand_computed_value():
    # 10 images, two classes, 15 bins of width 1/15:
    #   4 images at confidence 0.95 -> bin (14/15, 1]; 3 of them right: accuracy 0.75,
    #     |0.75 - 0.95| = 0.20, weight 4/10
    #   6 images at confidence 0.55 -> bin (8/15, 9/15]; 3 of them right: accuracy 0.50,
    #     |0.50 - 0.55| = 0.05, weight 6/10
    #   ECE = 0.4 * 0.20 + 0.6 * 0.05 = 0.08 + 0.03 = 0.11
    probs = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 6)
    y = np.array([0, 0, 0, 1] + [0, 0, 0, 1, 1, 1])

    assert expected_calibration_error(y, probs) == pytest.approx(0.11)
    rel = reliability(y, probs)
    assert len(rel.count) == N_BINS == 15
    assert rel.count[14] == 4 and rel.count[8] == 6 and rel.count.sum() == 10
    assert rel.accuracy[14] == pytest.approx(0.75) and rel.confidence[14] == pytest.approx(0.95)
    assert rel.accuracy[8] == pytest.approx(0.5) and rel.confidence[8] == pytest.approx(0.55)
    assert np.isnan(rel.accuracy[0])  # empty bins have no accuracy


def test_a_perfectly_calibrated_case_has_zero_ece():
    # 5 images at confidence 0.8, 4 of them right.
    probs = np.array([[0.8, 0.2]] * 5)
    y = np.array([0, 0, 0, 0, 1])
    assert expected_calibration_error(y, probs) == pytest.approx(0.0, abs=1e-12)


def test_negative_log_likelihood_is_the_clipped_mean_cross_entropy():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    y = np.array([0, 0, 1])
    expected = -(math.log(0.5) + math.log(0.9) + math.log(1e-7)) / 3
    assert negative_log_likelihood(y, probs) == pytest.approx(expected)


@pytest.fixture(scope="module")
def overconfident_case():
    """Labels drawn from softmax(z); the 'model' reports softmax(3 z): three times too sure."""
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(6000, 10)) * 1.2
    true_probs = _softmax(logits)
    y = np.array([rng.choice(10, p=p) for p in true_probs])
    return y, _softmax(3.0 * logits)


def test_temperature_scaling_fixes_an_overconfident_model_on_held_out_images(overconfident_case):
    y, probs = overconfident_case
    # Fit on one half, judge on the other, as calibrate does with validation and test.
    fit, held = slice(0, 3000), slice(3000, None)
    temperature = fit_temperature(y[fit], probs[fit])
    scaled = apply_temperature(probs[held], temperature)

    assert temperature == pytest.approx(3.0, rel=0.1)  # it recovers the true factor
    assert negative_log_likelihood(y[held], scaled) < 0.8 * negative_log_likelihood(
        y[held], probs[held]
    )
    assert expected_calibration_error(y[held], scaled) < 0.5 * expected_calibration_error(
        y[held], probs[held]
    )
    # Dividing logits by T keeps the predicted class of every image.
    assert np.array_equal(scaled.argmax(1), probs[held].argmax(1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


def test_apply_temperature_one_is_the_identity_and_bad_temperatures_are_refused():
    probs = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]])  # exact zeros, as float32 softmax gives
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-12)
    softened = apply_temperature(probs, 2.0)
    assert softened[0, 0] < 0.7 and np.all(np.isfinite(softened))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(MnistlabError, match="invalid temperature"):
            apply_temperature(probs, bad)


def test_load_calibration_reads_the_file_and_rejects_a_broken_one(tmp_path):
    run = RunDir(tmp_path)
    assert load_calibration(run) is None
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 1.5}))
    assert load_calibration(run)["temperature"] == 1.5
    (tmp_path / "calibration.json").write_text('{"temperature": -2}')
    with pytest.raises(MnistlabError, match="mnistlab calibrate"):
        load_calibration(run)
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(MnistlabError, match="cannot read"):
        load_calibration(run)


# -- errors --------------------------------------------------------------------------------------


def test_mistakes_come_most_confident_first_with_their_labels():
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.6, 0.3, 0.1],  # true 1, predicted 0 at 0.6
            [0.1, 0.1, 0.8],  # true 0, predicted 2 at 0.8
            [0.2, 0.7, 0.1],  # true 2, predicted 1 at 0.7
        ]
    )
    y = np.array([0, 1, 0, 2])
    mistakes = ranked_mistakes(y, probs)

    assert [m["index"] for m in mistakes] == [2, 3, 1]
    assert mistakes[0] == {"index": 2, "true": 0, "pred": 2, "confidence": 0.8, "p_true": 0.1}
    assert [m["index"] for m in ranked_mistakes(y, probs, limit=2)] == [2, 3]


def test_confused_pairs_count_both_directions_and_sort_by_errors():
    # Confusions: 4->9 three times, 9->4 once, 3->5 twice, 7->1 once; 3 images right.
    pairs_true = [4, 4, 4, 9, 3, 3, 7, 0, 1, 2]
    pairs_pred = [9, 9, 9, 4, 5, 5, 1, 0, 1, 2]
    probs = np.eye(10)[pairs_pred]
    result = confused_pairs(np.array(pairs_true), probs)

    assert [(p["a"], p["b"], p["a_as_b"], p["b_as_a"], p["total"]) for p in result] == [
        (4, 9, 3, 1, 4),
        (3, 5, 2, 0, 2),
        (1, 7, 0, 1, 1),
    ]
    assert result[0]["share"] == pytest.approx(4 / 7)
    assert len(confused_pairs(np.array(pairs_true), probs, top=1)) == 1


def test_member_overlap_counts_shared_errors_and_what_averaging_fixed():
    # Five images of class 0 or 1, three members; "1" marks a member wrong on that image.
    y = np.array([0, 0, 1, 1, 0])
    wrong = np.array(
        [
            [1, 1, 0, 0, 0],  # member 0: wrong on images 0 and 1
            [1, 0, 1, 0, 0],  # member 1: wrong on images 0 and 2
            [1, 1, 0, 0, 1],  # member 2: wrong on images 0, 1 and 4
        ]
    )
    members = [np.where(w[:, None] == 1, 1 - np.eye(2)[y], np.eye(2)[y]) * 0.8 + 0.1 for w in wrong]
    # The ensemble: wrong on image 0 (every member is) and image 1 (two of three are).
    ensemble = np.eye(2)[np.where([1, 1, 0, 0, 0], 1 - y, y)] * 0.8 + 0.1
    o = member_overlap(y, members, ensemble)
    assert o["n_members"] == 3
    assert o["n_errors"] == [2, 2, 3]
    assert o["accuracy"] == pytest.approx([0.6, 0.6, 0.4])
    assert o["mean_member_errors"] == pytest.approx(7 / 3)
    assert (o["wrong_in_all"], o["wrong_in_majority"], o["wrong_in_any"]) == (1, 2, 4)
    # Right on images 2 and 4, which one member each gets wrong; wrong on image 1,
    # which member 1 gets right.
    assert (o["fixed"], o["missed"]) == (2, 1)
    json.dumps(o)
    with pytest.raises(MnistlabError, match="member 1 has probabilities of shape"):
        member_overlap(y, [members[0], members[1][:3]], ensemble)
    with pytest.raises(MnistlabError, match="member_probs is empty"):
        member_overlap(y, [], ensemble)


def test_per_class_accuracy_is_the_recall_of_each_class(noisy_case):
    from sklearn.metrics import recall_score

    y, probs = noisy_case
    np.testing.assert_allclose(
        per_class_accuracy(y, probs), recall_score(y, probs.argmax(1), average=None)
    )


@pytest.mark.parametrize(
    ("y", "probs", "match"),
    [
        (np.array([0, 1]), np.ones((2,)) / 2, r"shape \(N, K\)"),
        (np.array([0, 1, 1]), np.ones((2, 2)) / 2, "y_true must have shape"),
        (np.array([0, 3]), np.ones((2, 2)) / 2, "labels in 0..1"),
        (np.array([0.0, 1.0]), np.ones((2, 2)) / 2, "integer labels"),
        (np.array([0, 1]), np.full((2, 2), np.nan), "diverge"),
        (np.array([], dtype=int), np.ones((0, 2)), "empty"),
    ],
)
def test_bad_inputs_get_a_message_naming_the_problem(y, probs, match):
    with pytest.raises(MnistlabError, match=match):
        roc_auc(y, probs)
