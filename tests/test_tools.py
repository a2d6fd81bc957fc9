"""tools/screen_variants.py: its jobs train like ``mnistlab train``, on one shared split."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location(
    "screen_variants", Path(__file__).parents[1] / "tools" / "screen_variants.py"
)
screen = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(screen)


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


@pytest.mark.parametrize("name", sorted(screen.VARIANTS))
def test_every_variant_builds_a_ten_class_softmax(name):
    builder, changes = screen.VARIANTS[name]
    assert set(changes) <= set(screen.BASE)
    model = builder({**screen.BASE, **changes}["dropout"])
    probs = np.asarray(model(np.zeros((2, 28, 28, 1), np.float32), training=False))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
