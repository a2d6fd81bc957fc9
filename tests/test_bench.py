"""The benchmark's bookkeeping: time to accuracy, ratios, and a small real run."""

import json

import pytest

from mnistlab.bench import bench, recipes, speedups, time_to_accuracy
from mnistlab.config import make_config
from mnistlab.errors import MnistlabError

CURVE = [
    {"epoch": 1, "seconds": 5.0, "test_accuracy": 0.985},
    {"epoch": 2, "seconds": 10.0, "test_accuracy": 0.9905},
    {"epoch": 3, "seconds": 15.0, "test_accuracy": 0.9899},  # dips: the first crossing counts
    {"epoch": 4, "seconds": 20.0, "test_accuracy": 0.9951},
]


def test_time_to_accuracy_is_the_first_epoch_that_reaches_the_threshold():
    assert time_to_accuracy(CURVE, 0.99) == 10.0
    assert time_to_accuracy(CURVE, 0.995) == 20.0
    assert time_to_accuracy(CURVE, 0.999) is None


def test_speedups_are_reference_time_over_recipe_time():
    results = {
        "keras-convnet": {"time_to": {"0.99": 60.0, "0.995": None}},
        "cnn-fast": {"time_to": {"0.99": 8.0, "0.995": 30.0}},
        "fnn": {"time_to": {"0.99": None, "0.995": None}},
    }
    ratios = speedups(results)
    assert ratios["cnn-fast"] == {"0.99": 7.5, "0.995": None}
    assert ratios["keras-convnet"]["0.99"] == 1.0
    assert ratios["fnn"]["0.99"] is None


def test_the_reference_recipes_follow_their_published_descriptions():
    r = recipes()
    keras_ref = r["keras-convnet"]
    assert (keras_ref.batch_size, keras_ref.epochs, keras_ref.learning_rate) == (128, 15, 1e-3)
    assert keras_ref.schedule == "constant" and keras_ref.val_size == 6000
    assert keras_ref.patience >= keras_ref.epochs  # no early stopping in the example
    seed = r["seed-fnn"]
    assert seed.params == {"hidden": (128, 64), "dropout": 0.2}
    assert (seed.batch_size, seed.patience, seed.schedule) == (32, 3, "constant")


def test_unknown_recipe_is_a_clear_error(tmp_path):
    with pytest.raises(MnistlabError, match="unknown benchmark recipe nope"):
        bench(["nope"], out_dir=tmp_path)


def test_an_unwritable_output_or_a_bad_seed_is_refused_before_training(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    with pytest.raises(MnistlabError, match=r"cannot write the benchmark to .*afile/x: .*--out"):
        bench(["cnn-fast"], out_dir=afile / "x")
    with pytest.raises(MnistlabError, match="invalid seed=-1"):
        bench(["cnn-fast"], out_dir=tmp_path / "b", seed=-1)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_small_real_benchmark_records_consistent_results(tmp_path):
    configs = {
        "keras-convnet": make_config("keras-convnet", epochs=1),
        "tiny-fnn": make_config("fnn", params={"hidden": (64, 32)}, epochs=2),
    }
    summary = bench(
        ["tiny-fnn", "keras-convnet"],
        out_dir=tmp_path,
        configs=configs,
        thresholds=(0.90, 0.999),
        progress=False,
    )
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["recipes"].keys() == {"tiny-fnn", "keras-convnet"}
    for name, r in on_disk["recipes"].items():
        assert len(r["curve"]) == r["epochs_run"] == configs[name].epochs
        # Training seconds grow epoch by epoch and exclude the test evaluations.
        secs = [p["seconds"] for p in r["curve"]]
        assert secs == sorted(secs) and secs[-1] <= r["train_seconds"] + 0.5
        assert r["time_to"]["0.9"] == time_to_accuracy(r["curve"], 0.90)
        assert r["time_to"]["0.999"] is None
        assert r["final_accuracy"] > 0.9
        assert r["cpu_seconds"] > 0 and r["peak_memory_mib"] > 100
        assert r["infer_images_per_s"] > 0 and 0 < r["latency_ms_p50"] <= r["latency_ms_p99"]
    ratio = summary["speedup_vs_reference"]["tiny-fnn"]["0.9"]
    ref, mine = (summary["recipes"][n]["time_to"]["0.9"] for n in ("keras-convnet", "tiny-fnn"))
    assert ratio == pytest.approx(ref / mine, rel=0.01)
    table = (tmp_path / "results.md").read_text()
    assert "| tiny-fnn |" in table and "| keras-convnet |" in table
    assert (tmp_path / "accuracy_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
