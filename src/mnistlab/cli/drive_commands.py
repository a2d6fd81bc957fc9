"""Commands that drive the pipeline many times: ``tune``, ``cv``, ``bench`` and ``robustness``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mnistlab.cli.options import RUNS_DIR_OPTION, SEED, json_option, parse_params
from mnistlab.errors import MnistlabError


@click.command()
@click.option(
    "--model",
    "model_name",
    default="fnn",
    show_default=True,
    help="Registered model with a search space (fnn, cnn-fast, cnn, ...).",
)
@click.option(
    "--trials",
    type=int,
    default=20,
    metavar="N",
    show_default=True,
    help="Trials to run now, across all workers (0: only write outputs / retrain).",
)
@click.option(
    "--workers", type=int, default=1, metavar="K", show_default=True, help="Local worker processes."
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="SQLAlchemy URL of the study database [default: sqlite:///RUNS_DIR/tune/optuna.db].",
)
@click.option("--study", default=None, metavar="NAME", help="Study name [default: the model].")
@click.option(
    "--timeout", type=float, default=None, metavar="S", help="Start no new trial after S seconds."
)
@click.option(
    "--epochs", type=int, default=None, metavar="N", help="Epochs per trial [default: per model]."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Training and sampler seed.")
@click.option(
    "--retrain-best",
    is_flag=True,
    help="Then train the best configuration as a normal run and evaluate it on the test set.",
)
@click.option(
    "--train-limit",
    type=int,
    default=None,
    help="Search on the first N training images only (a fifth of them, at most 5,000, "
    "validate): quick trial runs. A study keeps its limit.",
)
@json_option("Print best_params.json.")
@RUNS_DIR_OPTION
def tune(
    model_name: str,
    trials: int,
    workers: int,
    storage: str | None,
    study: str | None,
    timeout: float | None,
    epochs: int | None,
    seed: int,
    retrain_best: bool,
    train_limit: int | None,
    as_json: bool,
    runs_dir: str,
) -> None:
    """Search hyperparameters with Optuna (TPE, median pruning on val_accuracy).

    The objective is the best validation accuracy of each trial; the test set is
    not touched. Running the same command again continues the study. Writes
    RUNS_DIR/tune/STUDY/: best_params.json, trials.csv, figures/ and report.html;
    each trial is a run directory RUNS_DIR/tune/STUDY/trial-N.

    Workers on several machines share one study through a database server: each
    runs the same command with --storage postgresql://USER:PASSWORD@HOST/DB.

    \b
    Example:
      mnistlab tune --model fnn --trials 20 --workers 2 --retrain-best
      mnistlab tune --model cnn-fast --trials 10 --storage postgresql://me:pw@db:5432/optuna
    """
    from mnistlab.tune import tune as run_tune

    result = run_tune(
        model_name,
        trials,
        workers=workers,
        storage=storage,
        study=study,
        timeout=timeout,
        epochs=epochs,
        seed=seed,
        runs_dir=runs_dir,
        train_limit=train_limit,
        retrain_best=retrain_best,
        progress=True,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(
        f"study {result.study}: best val_accuracy {result.best_value:.4f} "
        f"(trial {result.best_trial}); trials: "
        + ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    )
    click.echo(
        "best: "
        + " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result.best_params.items()
        )
    )
    if result.retrain:
        click.echo(
            f"retrained {result.retrain['run']}: best val_accuracy "
            f"{result.retrain['best_val_accuracy']:.4f}, "
            f"test accuracy {result.retrain['test_accuracy']:.4f}"
        )
    click.echo(f"report: {result.paths['report']}")


@click.command()
@click.option("--model", "model_name", default="fnn", show_default=True, help="Model to train.")
@click.option("--folds", type=int, default=5, show_default=True, help="Number of folds K.")
@click.option("--epochs", type=int, default=None, help="Maximum epochs per fold (model's recipe).")
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Folds trained at once (processes)."
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Results directory [default: cv/<model>-k<folds>-s<seed>].",
)
@click.option("--seed", type=SEED, default=None, help="Seed of the folds and training (default 0).")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A model setting."
)
@click.option("--val-size", type=int, default=None, help="Validation images per fold (5000).")
@click.option("--batch-size", type=int, default=None, help="Batch size (model's recipe).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option(
    "--limit", type=int, default=None, help="Use a stratified subset of N training images."
)
@json_option("Print summary.json at the end.")
def cv(
    model_name: str,
    folds: int,
    epochs: int | None,
    workers: int,
    out_dir: str | None,
    seed: int | None,
    params: tuple[str, ...],
    val_size: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Stratified K-fold cross-validation on the training images; mean ± std.

    Each fold trains on the other K-1 folds (early stopping on a validation split
    taken from them) and is scored on its held-out fold; the test set is not used.
    Results go to OUT (fold_<i>.json as each fold ends, summary.json/.csv/.md,
    cv.png). Run the same command again to resume: finished folds are kept.

    \b
    Example:
      mnistlab cv --model fnn --folds 5 --workers 2
    """
    from mnistlab.config import make_config
    from mnistlab.cv import cross_validate, format_summary

    if val_size == 0:
        raise MnistlabError(
            "--val-size 0: cross-validation stops each fold early on a validation split "
            "taken from its training folds; pass --val-size 1 or more (default 5000)"
        )
    config = make_config(
        model_name,
        params=parse_params(params),
        epochs=epochs,
        seed=seed,
        val_size=val_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    out = out_dir or f"cv/{config.model}-k{folds}-s{config.seed}"
    click.echo(f"cross-validation: {config.model}, {folds} folds -> {out}", err=True)
    summary = cross_validate(
        config,
        folds,
        out=out,
        workers=workers,
        limit=limit,
        verbose=0 if as_json else "auto",
        progress=True,  # one line per fold on stderr (mnistlab.progress)
    )
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@click.command()
@click.argument("recipes", nargs=-1)
@click.option("--quick", is_flag=True, help="cnn-fast, fnn and the Keras reference only.")
@click.option(
    "--out",
    "out_dir",
    default="bench",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where results go.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
def bench(recipes: tuple[str, ...], quick: bool, out_dir: str, seed: int) -> None:
    """Benchmark recipes against the Keras reference, each in its own process.

    Measures time to 99.0% and 99.5% test accuracy, final accuracy, CPU seconds,
    peak memory, training and inference throughput and single-image latency.
    Writes OUT/results.json, OUT/results.md and OUT/accuracy_vs_time.png.
    Recipes: cnn-fast, cnn, fnn, keras-convnet, seed-fnn (the default set) and
    cnn-best (only when named: about 14 minutes of training on 2 cores).

    \b
    Example:
      mnistlab bench --quick
      mnistlab bench cnn-fast keras-convnet --seed 1
    """
    from mnistlab.bench import bench as run_bench

    command = "mnistlab bench " + " ".join(
        [*recipes, *(["--quick"] if quick else []), "--out", out_dir, "--seed", str(seed)]
    )
    summary = run_bench(recipes or None, quick=quick, out_dir=out_dir, seed=seed, command=command)
    click.echo((Path(out_dir) / "results.md").read_text())
    click.echo(f"results: {Path(out_dir) / 'results.json'}")
    del summary


@click.command()
@click.argument("run", default="latest")
@click.option(
    "--limit", type=int, default=None, metavar="N", help="Score the first N test images only."
)
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the corruptions' draws."
)
@click.option(
    "--no-predict",
    is_flag=True,
    help="On arrays only: skip the predict pipeline (PNG -> preprocessing -> model), "
    "which takes about 10 ms an image.",
)
@click.option(
    "--paper",
    is_flag=True,
    help="Instead: test digits photographed in boxes, on ruled and squared paper and by "
    "scanner edges, read through predict with clean-up and without (paper.json; "
    "--limit defaults to 1000).",
)
@json_option("Print robustness.json (paper.json with --paper).")
@RUNS_DIR_OPTION
def robustness(
    run: str,
    limit: int | None,
    seed: int,
    no_predict: bool,
    paper: bool,
    as_json: bool,
    runs_dir: str,
) -> None:
    """Accuracy under the 15 corruptions of MNIST-C, on arrays and through predict.

    Applies shot and impulse noise, glass and motion blur, shear, scale, rotate,
    brightness, translate, stripe, fog, spatter, a dotted line, a zigzag and Canny
    edges (Mu and Gilmer, 2019) to the test images of RUN (default: latest), and
    scores the model on the corrupted arrays and through the whole predict pipeline
    (each image as a PNG file). Writes RUN/robustness.json and
    RUN/figures/robustness_*.png; 'mnistlab report' then shows a Robustness section.

    \b
    Example:
      mnistlab robustness runs/latest --limit 1000
      mnistlab robustness latest --no-predict --json
      mnistlab robustness runs/latest --paper --limit 500
    """
    from mnistlab.robustness import format_robustness
    from mnistlab.robustness import robustness as measure

    if paper:
        from mnistlab.robustness.paper import DEFAULT_LIMIT, format_paper, paper_benchmark

        found = paper_benchmark(
            run, limit=limit or DEFAULT_LIMIT, seed=seed, runs_dir=runs_dir, progress=True
        )
        click.echo(json.dumps(found, indent=2) if as_json else format_paper(found))
        if not as_json:
            click.echo(f"results: {Path(found['run']) / 'paper.json'}")
        return

    record = measure(
        run,
        limit=limit,
        seed=seed,
        through_predict=not no_predict,
        runs_dir=runs_dir,
        progress=True,  # one line per corruption on stderr (mnistlab.progress)
    )
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(format_robustness(record))
    click.echo(f"results: {Path(record['run']) / 'robustness.json'}")
