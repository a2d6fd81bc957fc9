"""Cross-validation bookkeeping on a real MNIST subset: stratified folds, resume, summary."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mnistlab.config import make_config
from mnistlab.cv import cross_validate, fold_indices, subset_indices
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import evaluate
from mnistlab.report import write_report
from mnistlab.runs import RunDir

N_IMAGES, FOLDS = 3000, 3


def _config(**overrides):
    # A small dense net, one epoch of ~50 steps at a constant, brisk learning rate.
    settings = {
        "epochs": 1,
        "val_size": 300,
        "batch_size": 32,
        "schedule": "constant",
        "learning_rate": 3e-3,
        **overrides,
    }
    return make_config("fnn", params={"hidden": (64, 32)}, **settings)


def _no_test_set(mnist):
    # Cross-validation must never touch the test set: take it away entirely.
    return dataclasses.replace(mnist, x_test=None, y_test=None)


def _assert_stratified_partition(parts, labels, n):
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(n))  # disjoint and covering
    total = np.bincount(labels, minlength=10)
    for part in parts:
        # Each fold holds 1/K of every class, give or take one image.
        counts = np.bincount(labels[part], minlength=10)
        assert np.all(np.abs(counts - total / len(parts)) <= 1), counts


def test_folds_of_real_labels_are_stratified_disjoint_and_cover_every_image(mnist):
    y = mnist.y_train[subset_indices(mnist.y_train, N_IMAGES, seed=0)]
    parts = fold_indices(y, 5, seed=0)

    _assert_stratified_partition(parts, y, N_IMAGES)
    assert sorted(np.concatenate(parts).tolist()) == list(range(N_IMAGES))
    assert all(len(p) == N_IMAGES // 5 for p in parts)
    # Seeded: the same seed gives the same folds, another seed other folds.
    again = fold_indices(y, 5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not np.array_equal(parts[0], fold_indices(y, 5, seed=1)[0])


def test_a_stratified_subset_keeps_the_class_proportions(mnist):
    index = subset_indices(mnist.y_train, N_IMAGES, seed=0)
    assert len(np.unique(index)) == N_IMAGES
    share = np.bincount(mnist.y_train[index], minlength=10) / N_IMAGES
    full = np.bincount(mnist.y_train, minlength=10) / len(mnist.y_train)
    np.testing.assert_allclose(share, full, atol=1 / N_IMAGES)


@pytest.mark.parametrize(
    ("folds", "labels", "match"),
    [
        (1, np.arange(10), "folds=1"),
        (4, np.array([0, 0, 0, 0, 1, 1, 1]), "smallest class has only 3"),
    ],
)
def test_impossible_fold_counts_are_refused(folds, labels, match):
    with pytest.raises(MnistlabError, match=match):
        fold_indices(labels, folds)


@pytest.fixture(scope="module")
def finished_cv(tmp_path_factory, mnist):
    """A real 3-fold cross-validation of a small net on 3,000 MNIST training images."""
    out = tmp_path_factory.mktemp("cv") / "fnn"
    lines = []
    summary = cross_validate(
        _config(),
        FOLDS,
        out=out,
        dataset=_no_test_set(mnist),
        limit=N_IMAGES,
        progress=lines.append,
    )
    return out, summary, lines


@pytest.mark.slow
def test_each_fold_is_held_out_once_and_stratified(finished_cv, mnist):
    out, summary, _ = finished_cv
    records = [json.loads((out / f"fold_{i}.json").read_text()) for i in range(1, FOLDS + 1)]

    # Held-out indices point into the 60,000 training images: together they are
    # exactly the stratified subset, each image held out once.
    subset = subset_indices(mnist.y_train, N_IMAGES, seed=0)
    held = [np.array(r["heldout_indices"]) for r in records]
    assert sorted(np.concatenate(held).tolist()) == subset.tolist()
    position = {int(v): i for i, v in enumerate(subset)}
    labels = mnist.y_train[subset]
    _assert_stratified_partition(
        [np.array([position[int(v)] for v in h]) for h in held], labels, N_IMAGES
    )
    for r, h in zip(records, held, strict=True):
        assert r["heldout_class_counts"] == np.bincount(mnist.y_train[h], minlength=10).tolist()
        # The validation split comes out of the training folds, not the held-out fold.
        assert r["n_heldout"] == N_IMAGES // FOLDS
        assert r["n_train"] + r["n_val"] == N_IMAGES - r["n_heldout"]
        assert r["n_val"] == 300
        # The fold's run was trained on the other folds and scored on this one.
        metrics = json.loads((out / "folds" / f"fold_{r['fold']}" / "metrics.json").read_text())
        assert metrics["n_test"] == r["n_heldout"]
        assert metrics["test_accuracy"] == r["accuracy"]
        history_rows = (out / "folds" / f"fold_{r['fold']}" / "history.csv").read_text()
        assert len(history_rows.strip().splitlines()) == 1 + 1  # header + one epoch

    # A fold's run is no ordinary run: evaluating it on the test set would replace its
    # held-out score, and its report would have no test predictions. Both say so.
    fold_run = out / "folds" / "fold_1"
    # Its run.json says what it is: evaluate and report read that, not its data source.
    for i in range(1, FOLDS + 1):
        assert json.loads((out / "folds" / f"fold_{i}" / "run.json").read_text())["kind"] == (
            "cv-fold"
        )
    assert RunDir.open(fold_run).kind == "cv-fold"
    before = (fold_run / "metrics.json").read_bytes()
    with pytest.raises(MnistlabError, match="is a cross-validation fold, scored on its held-out"):
        evaluate(fold_run)
    with pytest.raises(MnistlabError, match="is a cross-validation fold: its predictions"):
        write_report(fold_run, dataset=mnist)
    assert (fold_run / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_the_summary_reports_mean_and_std_over_the_folds(finished_cv):
    out, summary, lines = finished_cv
    accuracies = [r["accuracy"] for r in summary["per_fold"]]
    f1s = [r["macro_f1"] for r in summary["per_fold"]]

    assert len(accuracies) == FOLDS
    assert all(a > 0.6 for a in accuracies)  # it learned: chance is 0.1
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert summary["macro_f1"]["mean"] == pytest.approx(np.mean(f1s))
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))

    md = (out / "summary.md").read_text()
    mean_row = f"{summary['accuracy']['mean']:.4f} ± {summary['accuracy']['std']:.4f}"
    assert mean_row in md and md.count("\n| ") == 1 + 1 + FOLDS + 1  # header, rule, folds, mean
    csv_rows = (out / "summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("fold,") and len(csv_rows) == 1 + FOLDS + 2
    assert (out / "cv.png").read_bytes().startswith(b"\x89PNG")
    assert sum("accuracy" in line for line in lines) == FOLDS


@pytest.mark.slow
def test_an_interrupted_cross_validation_resumes_without_retraining_finished_folds(
    finished_cv, mnist
):
    out, first, _ = finished_cv
    kept = {i: (out / f"fold_{i}.json").stat().st_mtime_ns for i in (1, 3)}
    kept_models = {
        i: (out / "folds" / f"fold_{i}" / "model.keras").stat().st_mtime_ns for i in (1, 3)
    }
    # As if the run had died in fold 2: its result file is gone, its run dir half there.
    (out / "fold_2.json").unlink()
    (out / "folds" / "fold_2" / "model.keras").unlink()

    lines = []
    summary = cross_validate(
        _config(),
        FOLDS,
        out=out,
        dataset=_no_test_set(mnist),
        limit=N_IMAGES,
        progress=lines.append,
    )

    trained = [line for line in lines if "training on" in line]
    assert trained == [f"fold 2/{FOLDS}: training on 1,700 images, validating on 300"]
    assert sum("finished earlier" in line for line in lines) == 2
    for i in (1, 3):
        assert (out / f"fold_{i}.json").stat().st_mtime_ns == kept[i]
        assert (out / "folds" / f"fold_{i}" / "model.keras").stat().st_mtime_ns == kept_models[i]
    assert (out / "fold_2.json").is_file()
    assert (out / "folds" / "fold_2" / "model.keras").is_file()
    assert not (out / "folds" / "fold_2-2").exists()  # the stale fold dir was replaced
    assert [r["fold"] for r in summary["per_fold"]] == [1, 2, 3]
    assert summary["per_fold"][0] == first["per_fold"][0]


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused_before_any_training(finished_cv, mnist):
    out, _, _ = finished_cv
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(MnistlabError, match=r"other settings \(epochs 1 -> 2\)"):
        cross_validate(
            _config(epochs=2), FOLDS, out=out, dataset=_no_test_set(mnist), limit=N_IMAGES
        )
    assert sorted(p.name for p in out.iterdir()) == before


def _mnistlab(*args, mnist):
    env = {**os.environ, "MNISTLAB_HOME": str(mnist.cache_path.parent), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_the_command_trains_folds_in_parallel_processes(tmp_path, mnist):
    out = tmp_path / "cv"
    args = ["cv", "--model", "fnn", "-p", "hidden=32,16", "--folds", "2", "--epochs", "1",
            "--limit", "1000", "--val-size", "100", "--batch-size", "16", "--lr", "0.003",
            "--out", str(out)]  # fmt: skip
    result = _mnistlab(*args, "--workers", "2", "--json", mnist=mnist)
    assert result.returncode == 0, result.stderr
    assert "in 2 processes" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["folds"] == 2 and summary["n_images"] == 1000
    assert [r["n_heldout"] for r in summary["per_fold"]] == [500, 500]
    assert all(r["accuracy"] > 0.3 for r in summary["per_fold"])
    assert (out / "summary.md").is_file() and (out / "fold_2.json").is_file()


def test_bad_arguments_get_one_line_and_a_nonzero_exit(tmp_path, mnist):
    result = _mnistlab("cv", "--folds", "1", "--out", str(tmp_path / "cv"), mnist=mnist)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnistlab: error:")]
    assert len(errors) == 1 and "folds=1" in errors[0]
    assert not (tmp_path / "cv").exists()

    # A setting the model refuses fails before plan.json pins it, so the same --out
    # works once the setting is fixed.
    args = ["-p", "dropout=2", "--folds", "2", "--limit", "1000", "--val-size", "100"]
    refused = _mnistlab("cv", *args, "--out", str(tmp_path / "cv"), mnist=mnist)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "dropout must be in [0, 1)" in refused.stderr
    assert not (tmp_path / "cv").exists()

    no_split = _mnistlab("cv", "--val-size", "0", "--out", str(tmp_path / "cv"), mnist=mnist)
    assert no_split.returncode == 1 and "pass --val-size 1 or more" in no_split.stderr
    assert "--keep" not in no_split.stderr  # cv has no --keep to pass

    helped = _mnistlab("cv", "--help", mnist=mnist)
    assert helped.returncode == 0 and "Example:" in helped.stdout
