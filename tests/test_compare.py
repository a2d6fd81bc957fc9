"""Run comparison: McNemar's exact test and bootstrap intervals, then two real runs."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.evaluate import (
    bootstrap_intervals,
    compare_predictions,
    compare_runs,
    contingency,
    format_comparison,
    mcnemar_exact,
)

# -- the statistics ------------------------------------------------------------------------------


def test_mcnemar_on_a_known_table():
    # b = 10 images only A gets right, c = 2 only B gets right. Under H0 each of the
    # 12 discordant images is a fair coin: p = 2 * P(X <= 2), X ~ Binomial(12, 1/2)
    # = 2 * (1 + 12 + 66) / 4096 = 158 / 4096 = 0.038574...
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert round(mcnemar_exact(10, 2), 4) == 0.0386
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)  # two-sided: symmetric


def test_mcnemar_edge_cases():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant image: no evidence
    assert mcnemar_exact(5, 5) == 1.0
    # 1 vs 0 discordant: a single coin flip can never be significant.
    assert mcnemar_exact(1, 0) == 1.0
    # 8 vs 0: p = 2 / 2**8
    assert mcnemar_exact(8, 0) == pytest.approx(2 / 256)
    with pytest.raises(MnistlabError, match="invalid only_a"):
        mcnemar_exact(-1, 3)


def test_contingency_counts_the_four_cells():
    a = np.array([1, 1, 0, 0, 1], dtype=bool)
    b = np.array([1, 0, 1, 0, 1], dtype=bool)
    assert contingency(a, b) == {"both_right": 2, "only_a": 1, "only_b": 1, "both_wrong": 1}
    with pytest.raises(MnistlabError, match="same length"):
        contingency(a, b[:3])


def test_bootstrap_intervals_cover_the_true_accuracy_about_95_percent_of_the_time():
    # 300 simulated test sets of 2,000 images from two classifiers with known
    # accuracies 0.90 and 0.88 (correlated: they share most of their mistakes).
    rng = np.random.default_rng(0)
    true_a, true_b, n, trials = 0.90, 0.88, 2000, 300
    hits = {"accuracy_a": 0, "accuracy_b": 0, "difference": 0}
    for trial in range(trials):
        u = rng.random(n)
        correct_a, correct_b = u < true_a, u < true_b  # B's right answers are a subset of A's
        flip = rng.random(n) < 0.05  # and some independent noise on B
        correct_b = np.where(flip, rng.random(n) < true_b, correct_b)
        ci = bootstrap_intervals(contingency(correct_a, correct_b), n_resamples=500, seed=trial)
        hits["accuracy_a"] += ci["accuracy_a"][0] <= true_a <= ci["accuracy_a"][1]
        hits["accuracy_b"] += ci["accuracy_b"][0] <= true_b <= ci["accuracy_b"][1]
        hits["difference"] += ci["difference"][0] <= true_a - true_b <= ci["difference"][1]
    for key, count in hits.items():
        assert 0.90 <= count / trials <= 0.99, (key, count / trials)


def test_bootstrap_interval_has_the_binomial_width_and_is_reproducible():
    table = {"both_right": 9000, "only_a": 100, "only_b": 60, "both_wrong": 840}
    ci = bootstrap_intervals(table, seed=3)
    assert ci == bootstrap_intervals(table, seed=3)
    acc_a = 9100 / 10000
    assert ci["accuracy_a"][0] < acc_a < ci["accuracy_a"][1]
    # Normal approximation: half-width 1.96 * sqrt(p (1 - p) / n) = 0.0056.
    half = 1.96 * np.sqrt(acc_a * (1 - acc_a) / 10000)
    assert (ci["accuracy_a"][1] - ci["accuracy_a"][0]) / 2 == pytest.approx(half, rel=0.15)


def test_compare_predictions_on_a_constructed_pair():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    right = np.eye(3)[y]
    wrong = np.eye(3)[(y + 1) % 3]
    # A right on the first 7, B right on the first 5.
    probs_a = np.vstack([right[:7], wrong[7:]])
    probs_b = np.vstack([right[:5], wrong[5:]])
    result = compare_predictions(y, probs_a, probs_b, n_resamples=200)

    assert result["accuracy_a"] == 7 / 8 and result["accuracy_b"] == 5 / 8
    assert result["difference"] == pytest.approx(2 / 8)
    assert result["table"] == {"both_right": 5, "only_a": 2, "only_b": 0, "both_wrong": 1}
    assert result["mcnemar_p"] == pytest.approx(0.5)  # 2 vs 0: 2 * (1/2)**2
    text = format_comparison(result)
    assert "not significant" in text and "p = 0.5" in text


# -- two real runs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, mnist):
    """Two real, evaluated runs: a small dense net for 1 epoch, and one for 3 epochs.

    Trained on 6,000 of the training images to stay quick; both are scored on all
    10,000 test images.
    """
    from mnistlab.config import make_config
    from mnistlab.evaluate import evaluate
    from mnistlab.train import train

    small = dataclasses.replace(mnist, x_train=mnist.x_train[:6000], y_train=mnist.y_train[:6000])
    runs_dir = tmp_path_factory.mktemp("runs")
    runs = []
    for name, epochs in (("short", 1), ("longer", 3)):
        config = make_config(
            "fnn", epochs=epochs, val_size=1000, batch_size=64, params={"hidden": (64, 32)}
        )
        run = train(config, runs_dir=runs_dir, dataset=small, verbose=0, run_name=name)
        evaluate(run, dataset=small)
        runs.append(run)
    return runs


def _mnistlab(*args, mnist):
    # The subprocess reads the session's verified MNIST cache, not the user's.
    env = {**os.environ, "MNISTLAB_HOME": str(mnist.cache_path.parent), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_compare_two_real_runs_from_the_command_line(two_runs, mnist):
    short, longer = two_runs
    result = _mnistlab("compare", str(longer.path), str(short.path), "--json", mnist=mnist)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)

    metrics = [json.loads(r.metrics_path.read_text()) for r in (longer, short)]
    assert data["n"] == 10000
    assert data["accuracy_a"] == pytest.approx(metrics[0]["test_accuracy"])
    assert data["accuracy_b"] == pytest.approx(metrics[1]["test_accuracy"])
    assert data["difference"] == pytest.approx(data["accuracy_a"] - data["accuracy_b"])
    t = data["table"]
    assert sum(t.values()) == 10000
    assert (t["both_right"] + t["only_a"]) / 10000 == pytest.approx(data["accuracy_a"])
    assert data["mcnemar_p"] == pytest.approx(mcnemar_exact(t["only_a"], t["only_b"]))
    for key in ("accuracy_a", "accuracy_b", "difference"):
        lo, hi = data["ci"][key]
        assert lo <= data[key] <= hi
    # Three epochs against one: a real improvement that the test should call significant.
    assert data["difference"] > 0.01 and data["mcnemar_p"] < 0.001

    text = _mnistlab("compare", str(longer.path), str(short.path), mnist=mnist)
    assert text.returncode == 0
    assert "McNemar exact test" in text.stdout and "A is better" in text.stdout


@pytest.mark.slow
def test_runs_on_different_datasets_or_test_images_are_refused(two_runs, tmp_path):
    import shutil

    short, longer = two_runs
    other = tmp_path / "fashion"
    shutil.copytree(short.path, other, ignore=shutil.ignore_patterns("logs", "checkpoints"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "dataset": "fashion-mnist"}))
    with pytest.raises(MnistlabError, match="same dataset"):
        compare_runs(longer, other)

    with pytest.raises(MnistlabError, match="both arguments are run"):
        compare_runs(longer, longer.path)

    fewer = tmp_path / "fewer"
    shutil.copytree(short.path, fewer, ignore=shutil.ignore_patterns("logs", "checkpoints"))
    with np.load(fewer / "predictions.npz") as npz:
        probs, y = npz["probs"], npz["y_true"]
    np.savez(fewer / "predictions.npz", probs=probs[:5000], y_true=y[:5000])
    with pytest.raises(MnistlabError, match="different test images"):
        compare_runs(longer, fewer)


def test_an_unevaluated_run_gets_one_line_telling_what_to_run(tmp_path, mnist):
    from mnistlab.config import make_config
    from mnistlab.runs import RunDir

    a = RunDir.create(tmp_path, make_config("fnn"), name="a")
    b = RunDir.create(tmp_path, make_config("fnn"), name="b")
    result = _mnistlab("compare", str(a.path), str(b.path), mnist=mnist)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnistlab: error:")]
    assert len(errors) == 1 and "mnistlab evaluate" in errors[0]

    # A predictions file cut short (a full disk, a copy interrupted): the same advice.
    for run in (a, b):
        run.write_state(state="finished")
    np.savez_compressed(b.path / "predictions.npz", probs=np.zeros((100, 10)), y_true=np.zeros(100))
    (a.path / "predictions.npz").write_bytes((b.path / "predictions.npz").read_bytes()[:200])
    result = _mnistlab("compare", str(a.path), str(b.path), mnist=mnist)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"run {a.path} has no readable predictions.npz" in result.stderr


def test_compare_help_has_an_example(mnist):
    result = _mnistlab("compare", "--help", mnist=mnist)
    assert result.returncode == 0 and "Example:" in result.stdout
