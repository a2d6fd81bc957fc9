"""The robustness benchmark: the MNIST-C corruptions, and `mnistlab robustness` on a real run."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.robustness import corrupt, corruption_names, robustness

MNIST_C = (
    "shot_noise impulse_noise glass_blur motion_blur shear scale rotate brightness "
    "translate stripe fog spatter dotted_line zigzag canny_edges"
).split()
# Corruptions without random draws: the same images whatever the seed.
FIXED = {"scale", "brightness", "stripe", "canny_edges"}
# Corruptions a reader hardly notices: the reference model must still read the digit.
MILD = "shot_noise glass_blur motion_blur shear scale rotate spatter dotted_line".split()


def test_the_registry_holds_the_15_corruptions_of_mnist_c_in_order():
    assert corruption_names() == tuple(MNIST_C)


@pytest.mark.parametrize("name", MNIST_C)
def test_a_corruption_is_deterministic_for_a_seed_and_changes_every_image(mnist, name):
    digits = mnist.x_test[:40]
    once = corrupt(digits, name, seed=3)
    assert once.shape == digits.shape and once.dtype == np.uint8
    assert np.array_equal(once, corrupt(digits, name, seed=3))
    assert (once != digits).any(axis=(1, 2)).all()  # every image is changed
    assert np.array_equal(digits, mnist.x_test[:40])  # the input is left as it was
    if name not in FIXED:
        assert not np.array_equal(once, corrupt(digits, name, seed=4))


@pytest.mark.parametrize(
    ("images", "name", "seed", "fragment"),
    [
        (np.zeros((2, 28, 28), np.float32), "fog", 0, "expected uint8 images"),
        (np.zeros((28, 28), np.uint8), "fog", 0, "expected uint8 images"),
        (np.zeros((2, 28, 28), np.uint8), "snow", 0, "unknown corruption 'snow'"),
        (np.zeros((2, 28, 28), np.uint8), "fog", -1, "invalid seed=-1"),
    ],
)
def test_corrupt_refuses_what_it_cannot_do_in_one_line(images, name, seed, fragment):
    with pytest.raises(MnistlabError, match=fragment):
        corrupt(images, name, seed=seed)


def test_the_reference_model_still_reads_digits_under_the_mild_corruptions(digit_run, mnist):
    from mnistlab.predict import load_predictor

    predictor = load_predictor(digit_run.path)
    digits, labels = mnist.x_test[:300], mnist.y_test[:300]

    def predicted(images):
        return predictor.probabilities(images / np.float32(255)).argmax(axis=1)

    right = predicted(digits) == labels
    assert right.mean() > 0.95
    kept = {
        name: float(np.mean(predicted(corrupt(digits, name, seed=0))[right] == labels[right]))
        for name in MILD
    }
    # A corruption that destroyed the digit (a wrong angle, a flipped axis, noise
    # everywhere) would fall far below; the cnn-fast model keeps about 0.9 to 1.
    assert all(share >= 0.85 for share in kept.values()), kept


@pytest.fixture(scope="module")
def measured(digit_run, mnist, tmp_path_factory):
    """A copy of the digit run measured by `mnistlab robustness RUN --limit 100 --json`."""
    run_path = tmp_path_factory.mktemp("robust") / "run"
    shutil.copytree(digit_run.path, run_path, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    out = io.StringIO()  # a module fixture has no capsys
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("MNISTLAB_HOME", str(mnist.cache_path.parent))  # the session's MNIST
        code = main(["robustness", str(run_path), "--limit", "100", "--json"])
    return run_path, code, out.getvalue()


@pytest.mark.slow
def test_the_command_writes_robustness_json_with_every_corruption(measured):
    run_path, code, out = measured
    assert code == 0
    record = json.loads((run_path / "robustness.json").read_text())
    assert json.loads(out) == record  # --json prints what was written
    assert record["n"] == 100 and record["seed"] == 0
    assert [c["name"] for c in record["corruptions"]] == MNIST_C
    scores = [record["clean"], record["mean"], *record["corruptions"]]
    for score in scores:
        assert 0 <= score["arrays"] <= 1 and 0 <= score["predict"] <= 1
    assert record["clean"]["arrays"] > 0.95
    assert record["mean"]["arrays"] == pytest.approx(
        np.mean([c["arrays"] for c in record["corruptions"]]), abs=1e-6
    )
    for path in record["figures"].values():
        assert (run_path / path).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_report_shows_a_robustness_section_once_measured(measured, mnist):
    from mnistlab.report import write_report

    run_path, _, _ = measured
    page = write_report(run_path, dataset=mnist).read_text()
    section = page[page.index('<section id="robustness">') :]
    section = section[: section.index("</section>")]
    assert all(f"<td>{name}</td>" in section for name in MNIST_C)
    assert section.count("<img ") == 2
    assert '<a href="#robustness">Robustness</a>' in page


def test_on_arrays_only_the_predict_column_is_left_out(digit_run, mnist, tmp_path):
    run_path = tmp_path / "run"
    shutil.copytree(digit_run.path, run_path, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    record = robustness(run_path, limit=30, through_predict=False, dataset=mnist, seed=1)
    assert "predict" not in record["mean"]
    assert all("predict" not in c for c in record["corruptions"])
    assert json.loads((run_path / "robustness.json").read_text())["seed"] == 1


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_a_bad_limit_is_one_line_and_a_nonzero_exit(digit_run, capsys, limit):
    assert main(["robustness", str(digit_run.path), "--limit", limit]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"mnistlab: error: invalid limit={limit}: expected an integer >= 1 (test images)"
    ]
    assert not (digit_run.path / "robustness.json").exists()
