"""Hyperparameter search: real worker processes, real databases, real MNIST (small subsets).

The searches here train a small slice of MNIST (``train_limit``) for one epoch per
trial: what is tested is the bookkeeping a user relies on (exactly N trials across
workers, none lost or duplicated, the study continued, the test set untouched,
outputs written), not the accuracy a real search reaches.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import optuna
import pytest

from mnistlab.cli import main
from mnistlab.config import make_config
from mnistlab.errors import MnistlabError
from mnistlab.models import get_model_spec, list_models
from mnistlab.tune import pruning_callback, search_space, tune

# The module itself (``mnistlab.tune`` the attribute is the function).
tune_module = importlib.import_module("mnistlab.tune")

REPO = Path(__file__).resolve().parents[1]
TRAIN_LIMIT = 1500  # images per trial: 1,200 to train, 300 to validate


def _check_exact_trials(result, storage: str, n: int) -> None:
    """Exactly ``n`` finished trials numbered 0..n-1, each a finished run never tested."""
    study = optuna.load_study(study_name=result.study, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(n))
    assert all(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        for t in trials
    )
    with open(result.paths["trials"]) as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["number"]) for r in rows) == list(range(n))

    for t in trials:
        run = Path(t.user_attrs["run"])
        assert run == result.out_dir / f"trial-{t.number}"
        assert json.loads((run / "run.json").read_text())["state"] == "finished"
        assert (run / "model.keras").is_file()
        # The search never evaluates on the test set: no trial has test metrics.
        assert not (run / "metrics.json").exists()
        assert not (run / "predictions.npz").exists()

    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.best_value == max(complete)
    saved = json.loads(result.paths["best_params"].read_text())
    assert saved["best_value"] == result.best_value and saved["best_trial"] == result.best_trial
    assert saved["best_config"]["model"] == "fnn"
    # Different worker processes ran the trials, none of them this test process.
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2
    assert f"{socket.gethostname()}:{os.getpid()}" not in workers


@pytest.mark.slow
def test_two_workers_on_sqlite_run_exactly_n_trials_and_write_the_outputs(mnist, tmp_path):
    result = tune(
        "fnn",
        trials=4,
        workers=2,
        epochs=1,
        dataset=mnist,
        train_limit=TRAIN_LIMIT,
        runs_dir=tmp_path,
    )
    assert result.storage == f"sqlite:///{tmp_path.resolve()}/tune/optuna.db"
    assert result.out_dir == (tmp_path / "tune" / "fnn").resolve()
    _check_exact_trials(result, result.storage, 4)

    for key in ("history", "importances", "parallel"):
        png = result.paths[key]
        assert png.parent == result.out_dir / "figures"
        assert png.read_bytes().startswith(b"\x89PNG")
    page = result.paths["report"].read_text()
    assert "Hyperparameter search: fnn" in page
    assert page.count("data:image/png;base64,") == 3  # self-contained: the plots are inline
    assert "<script" not in page and "http" not in page.split("<body>")[1]


@pytest.mark.slow
def test_rerunning_continues_the_study_and_retrain_best_tests_once(mnist, tmp_path, capfd):
    first = tune(
        "fnn", trials=1, epochs=1, dataset=mnist, train_limit=TRAIN_LIMIT, runs_dir=tmp_path
    )
    assert first.counts == {"complete": 1}
    # One finished trial has no parameter importances to show (Optuna would draw equal shares).
    assert "importances" not in first.paths
    assert "needs at least two finished trials" in first.paths["report"].read_text()
    tune("fnn", trials=1, epochs=1, dataset=mnist, train_limit=TRAIN_LIMIT, runs_dir=tmp_path)
    capfd.readouterr()
    again = tune(
        "fnn",
        trials=1,
        epochs=1,
        dataset=mnist,
        train_limit=TRAIN_LIMIT,
        runs_dir=tmp_path,
        retrain_best=True,
        progress=True,
    )
    # Progress, the retraining's epochs included, goes to stderr: stdout stays free for --json.
    out, err = capfd.readouterr()
    assert out == "" and "Epoch 1/" in err
    assert "importances" in again.paths
    study = optuna.load_study(study_name="fnn", storage=again.storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.number for t in trials] == [0, 1, 2]
    # The continued study explores: the new trial is not a repeat of the first.
    assert trials[2].params != trials[0].params

    retrain = again.retrain
    run = Path(retrain["run"])
    assert run.parent == tmp_path  # a normal run, outside the study's directory
    metrics = json.loads((run / "metrics.json").read_text())
    assert retrain["test_accuracy"] == metrics["test_accuracy"] > 0.5
    config = json.loads((run / "config.json").read_text())
    best_config = again.best_config
    assert config["params"] == best_config["params"]
    assert config["learning_rate"] == best_config["learning_rate"]
    # The full recipe's length, not the search's one-epoch budget.
    assert config["epochs"] == get_model_spec("fnn").recipe["epochs"]
    saved = json.loads(again.paths["best_params"].read_text())
    assert saved["retrain"]["test_accuracy"] == metrics["test_accuracy"]
    assert "Best configuration retrained" in again.paths["report"].read_text()

    # More trials on another budget, or scored on another validation split (another
    # seed), would not compare with these: refused, none added.
    with pytest.raises(MnistlabError, match="ran its trials with epochs=1; trials with epochs=2"):
        tune("fnn", trials=1, epochs=2, dataset=mnist, train_limit=TRAIN_LIMIT, runs_dir=tmp_path)
    with pytest.raises(MnistlabError, match="ran its trials with seed=0; trials with seed=7"):
        tune(
            "fnn", trials=1, epochs=1, seed=7, dataset=mnist, train_limit=TRAIN_LIMIT,
            runs_dir=tmp_path,
        )  # fmt: skip
    assert len(optuna.load_study(study_name="fnn", storage=again.storage).trials) == 3

    # Writing the outputs later (--trials 0, any machine) keeps the retrained result.
    later = tune("fnn", trials=0, dataset=mnist, runs_dir=tmp_path)
    assert later.retrain == retrain
    assert "Best configuration retrained" in later.paths["report"].read_text()


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server: CI's (``$MNISTLAB_TEST_PG_URL``) or a throwaway one.

    Without the variable, ``.ci/start-postgres.sh`` starts a private cluster on a
    free port; if that is impossible (PostgreSQL not installed, no ``postgres``
    user, ...) the test is skipped with the reason, never silently passed.
    """
    url = os.environ.get("MNISTLAB_TEST_PG_URL", "").strip()
    if url:
        yield url
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Not tmp_path: as root the server runs as 'postgres', which cannot enter pytest's dirs.
    data_dir = tempfile.mkdtemp(prefix="mnistlab-pg-")
    env = {**os.environ, "MNISTLAB_PG_PORT": str(port), "MNISTLAB_PG_DIR": data_dir}
    script = REPO / ".ci" / "start-postgres.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"cannot start a PostgreSQL server for this test: {reason}")
        yield done.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_a_real_postgresql_server_run_exactly_n_trials(
    mnist, tmp_path, postgres_url
):
    study = f"pg-{uuid.uuid4().hex[:8]}"  # CI's database outlives a test run
    result = tune(
        "fnn",
        trials=4,
        workers=2,
        epochs=1,
        storage=postgres_url,
        study=study,
        dataset=mnist,
        train_limit=TRAIN_LIMIT,
        runs_dir=tmp_path,
    )
    assert result.out_dir == (tmp_path / "tune" / study).resolve()
    assert result.storage.startswith("postgresql")
    _check_exact_trials(result, postgres_url, 4)
    # The password never reaches a file.
    password = postgres_url.split("://", 1)[1].split("@")[0].split(":")[1]
    assert "***" in result.storage
    assert f":{password}@" not in result.paths["best_params"].read_text()
    assert f":{password}@" not in result.paths["report"].read_text()


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("sqlite://", "is an in-memory SQLite database"),
        ("nosuchdb://host/db", "cannot open the study storage nosuchdb://host/db"),
        (
            "postgresql://me:secret@127.0.0.1:1/optuna",
            "cannot open the study storage postgresql://me:***@127.0.0.1:1/optuna",
        ),
    ],
)
def test_a_bad_storage_url_is_one_clear_line(storage, expected, tmp_path, capsys):
    code = main(["tune", "--storage", storage, "--trials", "1", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("mnistlab: error: ")
    assert expected in err
    assert "secret" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_invalid_requests_are_refused_before_any_work(tmp_path, monkeypatch):
    with pytest.raises(MnistlabError, match="unknown model 'nope'"):
        tune("nope", runs_dir=tmp_path)
    with pytest.raises(MnistlabError, match="invalid workers=0"):
        tune("fnn", workers=0, runs_dir=tmp_path)
    with pytest.raises(MnistlabError, match="invalid study name"):
        tune("fnn", study="../escape", runs_dir=tmp_path)
    monkeypatch.delitem(tune_module.SEARCH_SPACES, "cnn")
    with pytest.raises(MnistlabError, match="model 'cnn' has no search space.*tunable models: fnn"):
        tune("cnn", runs_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_study_belongs_to_one_model(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tune_module.create_study(storage, "shared", "fnn")
    with pytest.raises(MnistlabError, match="tunes model 'fnn', not 'cnn'"):
        tune_module.create_study(storage, "shared", "cnn")


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_has_a_search_space_giving_valid_configs(name):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for _ in range(5):
        settings = search_space(name).suggest(study.ask())
        config = make_config(name, params=settings.pop("params", {}), **settings)
        assert config.model == name


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_search_space_contains_the_models_default_recipe(name):
    """The search can always find the registered recipe again: every default is in range."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    search_space(name).suggest(trial)
    spec = get_model_spec(name)
    default = make_config(name).to_dict()
    values = {
        **default,
        **spec.defaults,
        "optimizer": "adam" if not default["weight_decay"] else "adamw",
    }
    if "hidden" in spec.defaults:  # fnn: one parameter per layer width
        values.update(hidden1=spec.defaults["hidden"][0], hidden2=spec.defaults["hidden"][1])
    for key, dist in trial.distributions.items():
        if key == "weight_decay" and values["optimizer"] == "adam":
            continue  # only searched with AdamW
        if hasattr(dist, "choices"):
            assert values[key] in dist.choices, key
        else:
            assert dist.low <= values[key] <= dist.high, key


def test_the_pruning_callback_reports_every_epoch_and_stops_training_cleanly():
    import keras

    # Prune as soon as validation accuracy falls below 0.5.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(0.5))
    trial = study.ask()
    callback = pruning_callback(trial)
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    callback.model.stop_training = False

    callback.on_epoch_end(0, {"val_accuracy": 0.9})
    assert callback.pruned_at is None and not callback.model.stop_training
    callback.on_epoch_end(1, {"val_accuracy": 0.3})
    assert callback.pruned_at == 2 and callback.model.stop_training
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].intermediate_values == {1: 0.9, 2: 0.3}


def test_trials_get_no_test_images(mnist):
    data, val_size = tune_module.search_dataset(mnist, None)
    assert len(data.x_train) == 60000 and val_size == 5000
    assert data.x_test.shape == (0, 28, 28) and data.y_test.shape == (0,)
    small, val_size = tune_module.search_dataset(mnist, 1000)
    assert len(small.x_train) == 1000 and val_size == 200 and len(small.x_test) == 0


def _tune_until(mnist, tmp_path, trials, epochs, line, act):
    """Run `mnistlab tune` (fnn) in a process; call ``act(proc)`` when stderr shows a line
    starting with ``line``; return (exit code, the rest of stderr)."""
    import sys

    env = {
        **os.environ,
        "MNISTLAB_HOME": str(mnist.cache_path.parent),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    args = ["tune", "--model", "fnn", "--trials", str(trials), "--epochs", str(epochs),
            "--train-limit", str(TRAIN_LIMIT), "--runs-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", *args], stderr=subprocess.PIPE, text=True, env=env
    )
    for text in proc.stderr:
        if text.startswith(line):
            act(proc)
            break
    rest = proc.stderr.read()
    return proc.wait(timeout=120), rest


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_trials_and_says_how_to_go_on(mnist, tmp_path):
    import signal

    # Ctrl-C in the second trial's training, after the first has finished.
    code, rest = _tune_until(
        mnist, tmp_path, 4, 4, "trial   1 epoch 1/", lambda p: p.send_signal(signal.SIGINT)
    )
    assert code == 130
    assert "Traceback" not in rest and "train --resume" not in rest
    assert "mnistlab: search interrupted; study 'fnn' keeps what it had" in rest
    assert "Run the same command to continue the study" in rest
    study = optuna.load_study(study_name="fnn", storage=f"sqlite:///{tmp_path}/tune/optuna.db")
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and states.count("COMPLETE") >= 1
    # The finished trials' outputs are written, as after an uninterrupted search.
    assert (tmp_path / "tune" / "fnn" / "best_params.json").is_file()


@pytest.mark.slow
def test_a_storage_that_fails_mid_search_is_one_line(mnist, tmp_path):
    def overwrite_the_database(_proc):  # in the first trial
        (tmp_path / "tune" / "optuna.db").write_bytes(b"not a database " * 4096)

    code, rest = _tune_until(mnist, tmp_path, 3, 3, "trial   0 epoch 1/", overwrite_the_database)
    assert code == 1
    assert "Traceback" not in rest, rest
    errors = [x for x in rest.splitlines() if x.startswith("mnistlab: error:")]
    assert len(errors) == 1 and "the study storage sqlite:///" in errors[0]
    assert "run the same command to continue" in errors[0]


def test_the_largest_seed_with_a_shared_storage_still_runs(mnist, tmp_path):
    # An explicit storage adds a per-host offset to the sampler's seed; the sum must
    # still be a seed NumPy takes.
    result = tune(
        "fnn", trials=1, epochs=1, seed=2**32 - 1, dataset=mnist, train_limit=TRAIN_LIMIT,
        runs_dir=tmp_path, storage=f"sqlite:///{tmp_path}/shared.db",
    )  # fmt: skip
    assert result.counts == {"complete": 1}
    # A trial is a run that says what it is.
    assert json.loads((result.out_dir / "trial-0" / "run.json").read_text())["kind"] == "tune-trial"


def _finished_study(name: str, values, params) -> optuna.Study:
    """An in-memory study with one finished trial per value (no training)."""
    study = optuna.create_study(study_name=name, direction="maximize")
    study.set_user_attr("model", params.get("model", "fnn"))
    distributions = {
        "act": optuna.distributions.CategoricalDistribution(["<script>", "relu"]),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    for i, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                params={"act": params["act"], "dropout": 0.1 * (i % 5)},
                distributions=distributions,
                value=value,
                user_attrs={"run": params["run"]},
            )
        )
    return study


def test_the_dashboard_escapes_study_names_parameters_and_paths(tmp_path):
    from mnistlab.tune import TuneResult, render_report

    evil = "<script>alert(1)</script>"
    study = _finished_study(evil, [0.9], {"act": "<script>", "run": evil, "model": evil})
    result = TuneResult(
        study=evil,
        storage=f"sqlite:///{evil}.db",
        out_dir=tmp_path / evil.replace("/", "_"),
        best_trial=0,
        best_value=0.9,
        best_params={"act": "<script>"},
        best_config={"model": evil, "params": {"act": "<script>"}, "epochs": 1},
        counts={"complete": 1},
        paths={},
    )
    page = render_report(result, study, {"history": evil})

    assert "<script" not in page
    assert "<title>Hyperparameter search: &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert "-p act=&lt;script&gt;" in page  # the train command of the best configuration
    assert "Optimisation history: not drawn (&lt;script&gt;" in page
    assert '<section id="all-trials">' in page


def test_the_plots_leave_the_users_matplotlib_as_it_was(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from mnistlab.tune.outputs import FIGURES, write_figures

    study = _finished_study("plots", [0.5, 0.7, 0.6, 0.8], {"act": "relu", "run": "r"})
    mine = plt.figure()  # a figure of the user's, open before
    backend = matplotlib.rcParams._get_backend_or_none()
    styled = "^axes\\.|^font\\.size$|^figure\\.facecolor$"  # what Optuna's ggplot style sets
    style = dict(matplotlib.rcParams.find_all(styled))

    written, missing = write_figures(study, tmp_path)

    assert set(written) == set(FIGURES) and missing == {}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written.values())
    # Optuna sets its ggplot style and draws with pyplot: none of it stays behind.
    assert dict(matplotlib.rcParams.find_all(styled)) == style
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert plt.get_fignums() == [mine.number]
    plt.close(mine)
