"""tools/screen_variants.py: its jobs train like ``mnistlab train``, on one shared split."""

import base64
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).parents[1] / "tools"


def load_tool(name):
    """tools/NAME.py as the module NAME, as its scripts import each other (importlib's
    recipe for importing a source file: registered in sys.modules before it runs)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


screen = load_tool("screen_variants")


def test_the_validation_split_is_shared_stratified_and_disjoint():
    y = np.repeat(np.arange(10), 6000)[np.random.default_rng(1).permutation(60_000)]
    train, val = screen.split(y)
    assert len(val) == 10_000 and len(train) == 50_000
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.bincount(y[val]), [1000] * 10)
    again_train, again_val = screen.split(y)  # every job gets the same split
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)


def test_augmentation_is_mnistlab_trains_geometry():
    import tensorflow as tf

    from mnistlab.train import augment_batch

    x = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    seed = tf.constant([3, 7], tf.int64)
    expected = np.asarray(augment_batch(tf.constant(x), seed, 0.7))
    # augment_batch's own draws, fed to the screen's transforms
    u = tf.random.stateless_uniform([6, 4], seed=seed, minval=-1.0, maxval=1.0).numpy()
    got = screen.apply_transforms(x, screen.transforms(u, 0.7))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - x).mean() > 0.01  # it did move the pixels


def test_elastic_warp_matches_scipys_reference():
    from scipy.ndimage import gaussian_filter, map_coordinates

    rng = np.random.default_rng(0)
    # black borders, as MNIST's (scipy's "constant" mode differs only at the edge)
    x = np.pad(rng.random((3, 20, 20, 1)), ((0, 0), (4, 4), (4, 4), (0, 0))).astype("float32")
    noise = rng.uniform(-1, 1, (3, 28, 28, 2)).astype("float32")
    got = np.asarray(screen.elastic_warp(x, noise, 34.0))
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    for i in range(3):
        dy, dx = (
            34 * gaussian_filter(noise[i, ..., k], 4, mode="constant", truncate=3) for k in (0, 1)
        )
        expected = map_coordinates(x[i, ..., 0], [rows + dy, cols + dx], order=1, cval=0)
        np.testing.assert_allclose(got[i, ..., 0], expected, atol=1e-5)
    assert np.abs(got - x).mean() > 0.01
    np.testing.assert_array_equal(np.asarray(screen.elastic_warp(x, noise, 0.0)), x)


def test_test_time_shifts_move_one_pixel_and_fill_black():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28, 1) + 1
    right = screen.shifted(x, 1, 0)
    np.testing.assert_array_equal(right[:, :, 1:], x[:, :, :-1])
    assert (right[:, :, 0] == 0).all()
    up = screen.shifted(x, 0, -1)
    np.testing.assert_array_equal(up[:, :-1], x[:, 1:])
    assert (up[:, -1] == 0).all()


@pytest.mark.parametrize("name", sorted(screen.VARIANTS))
def test_every_variant_builds_a_ten_class_softmax(name):
    builder, changes = screen.VARIANTS[name]
    read_by_run_job = {
        "width",
        "dense",
        "elastic",
        "anneal",
        "wd",
        "deskew",
        "widthnorm",
        "n_train",
    }
    assert set(changes) <= set(screen.BASE) | read_by_run_job
    model = builder({**screen.BASE, **changes})
    probs = np.asarray(model(np.zeros((2, 28, 28, 1), np.float32), training=False))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_width_normalisation_gives_every_digit_the_same_ink_width(mnist):
    x = mnist.x_test[:500, :, :, None].astype(np.float32) / 255
    out = np.asarray(screen.width_normalize(np.concatenate([x, np.zeros_like(x[:1])]), 16))
    inked = out[:-1, :, :, 0].max(axis=1) > 0.1
    widths = [np.flatnonzero(c)[-1] - np.flatnonzero(c)[0] + 1 for c in inked]
    assert np.median(widths) == 16 and np.percentile(widths, 90) <= 18
    assert not out[-1].any()  # a blank image stays blank


def test_bn_recalibration_sets_the_statistics_the_layers_see_at_inference():
    """tools/bn_recalibrate.py: each BatchNorm gets the mean and variance of its
    input on the given images, with the layers before it already recalibrated."""
    import keras

    from mnistlab.models import build_model

    tool = load_tool("bn_recalibrate")

    model = build_model("cnn-best")
    images = np.random.default_rng(2).random((600, 28, 28, 1), dtype=np.float32)
    tool.CHUNK = 250  # three chunks, the last one partial
    tool.recalibrate(model, images)
    norms = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(norms) == 4
    for layer in norms:
        seen = np.asarray(keras.Model(model.inputs[0], layer.input)(images, training=False))
        seen = seen.reshape(-1, seen.shape[-1]).astype(np.float64)
        np.testing.assert_allclose(np.asarray(layer.moving_mean), seen.mean(0), rtol=1e-4)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), seen.var(0), rtol=1e-3)


ens = load_tool("ensemble_screen")


def _one_hot_probs(labels, confidence):
    """Probabilities that put ``confidence`` on each label and share the rest."""
    p = np.full((len(labels), 10), (1 - confidence) / 9)
    p[np.arange(len(labels)), labels] = confidence
    return p


def test_ensemble_rules_fix_errors_the_members_do_not_share():
    y = np.arange(6) % 10
    members = []
    for wrong in range(3):  # each member misreads one image of its own, as a 9 or an 8
        answer = y.copy()
        answer[wrong] = 9 - wrong
        members.append(_one_hot_probs(answer, 0.9))
    stack = np.stack(members)
    assert [ens.errors(m, y) for m in members] == [1, 1, 1]
    for name, rule in ens.RULES.items():
        assert ens.errors(rule(stack), y) == 0, name


def test_mean_and_vote_differ_on_one_confident_dissenter():
    y = np.array([3])
    stack = np.stack(
        [_one_hot_probs([3], 0.4), _one_hot_probs([3], 0.4), _one_hot_probs([5], 0.999)]
    )
    assert ens.errors(ens.RULES["mean"](stack), y) == 1  # 0.999 outweighs two 0.4s
    assert ens.errors(ens.RULES["vote"](stack), y) == 0  # two answers against one


def test_screen_results_are_read_as_run_job_writes_them(tmp_path):
    rng = np.random.default_rng(0)
    probs = {job: rng.dirichlet(np.ones(10), 7) for job in ("ep30:1", "ep30:2", "dsk:1")}
    path = tmp_path / "screen.jsonl"
    with open(path, "w") as f:
        for job, p in probs.items():
            text = base64.b64encode(p.astype("float16").tobytes()).decode()
            f.write(json.dumps({"job": job, "variant": job.split(":")[0], "probs": text}) + "\n")
    jobs = ens.load_jobs([str(path), str(path)])  # a file read twice adds no jobs
    assert {v: sorted(j) for v, j in jobs.items()} == {
        "ep30": ["ep30:1", "ep30:2"],
        "dsk": ["dsk:1"],
    }
    np.testing.assert_allclose(jobs["dsk"]["dsk:1"], probs["dsk:1"], atol=1e-3)

    stack = ens.draw(jobs, ens.parse_members("ep30:2,dsk:1"), np.random.default_rng(1))
    assert stack.shape == (3, 7, 10)
    drawn = {tuple(stack[i, 0]) for i in range(2)}  # the two ep30 members are distinct jobs
    assert drawn == {tuple(jobs["ep30"][j][0]) for j in ("ep30:1", "ep30:2")}


@pytest.mark.parametrize(
    "spec, says",
    [
        ("ep30", "VARIANT:COUNT"),
        ("ep30:0", "VARIANT:COUNT"),
        (":3", "VARIANT:COUNT"),
        ("ep30:1,dsk", "VARIANT:COUNT"),
        ("ep30:1", "ep30 has 0 jobs in these files, not 1"),
        ("ep30:1 --draws 0", "'0' is not a whole number of at least 1"),
        ("ep30:1 --svm-weights 0.1,x", "give weights between 0 and 1"),
    ],
)
def test_bad_arguments_are_a_one_line_error(tmp_path, spec, says):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    tool = TOOLS / "ensemble_screen.py"
    done = subprocess.run(
        [sys.executable, str(tool), str(path), "--members", *spec.split()],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr


def test_a_file_that_is_not_screen_results_is_a_one_line_error(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"accuracy": 0.99}\n')
    tool = TOOLS / "ensemble_screen.py"
    for given in (path, tmp_path / "missing.jsonl"):
        done = subprocess.run(
            [sys.executable, str(tool), str(given), "--members", "ep30:1"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2
        assert "cannot read the screen results" in done.stderr
        assert "Traceback" not in done.stderr
