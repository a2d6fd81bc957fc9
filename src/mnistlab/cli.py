"""The ``mnistlab`` command: a thin shell over the Python API.

Every command maps to one public function; errors a user can fix are printed
as one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mnistlab.errors import MnistlabError

# Seeds as NumPy and scikit-learn take them (mnistlab.config.MAX_SEED; not imported
# here, since that would load Keras before every command).
SEED = click.IntRange(0, 2**32 - 1)

RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory that holds run directories.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mnistlab")
def cli() -> None:
    """Train, understand, compare and use MNIST digit classifiers.

    \b
    A typical session:
      mnistlab data                      # fetch and verify MNIST
      mnistlab train --model fnn         # train; the run goes to runs/<id>, runs/latest
      mnistlab evaluate runs/latest      # test metrics -> metrics.json
      mnistlab report runs/latest        # plots + report.html
    """


@cli.command()
@click.option("--dataset", default="mnist", show_default=True, help="mnist or fashion-mnist.")
@click.option(
    "--idx-dir",
    type=click.Path(file_okay=False),
    help="Directory with the four official IDX files (.gz or not).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def data(dataset: str, idx_dir: str | None, as_json: bool) -> None:
    """Fetch (if needed) and verify a dataset; print its source, shapes and class counts.

    \b
    Example:
      mnistlab data --dataset fashion-mnist
    """
    import numpy as np

    from mnistlab.data import load_dataset

    ds = load_dataset(dataset, idx_dir=idx_dir, progress=True)
    info: dict[str, Any] = {
        "dataset": ds.name,
        "source": ds.source,
        "cache": str(ds.cache_path),
        "shapes": {
            k: list(getattr(ds, k).shape) for k in ("x_train", "y_train", "x_test", "y_test")
        },
        "train_counts": np.bincount(ds.y_train, minlength=10).tolist(),
        "test_counts": np.bincount(ds.y_test, minlength=10).tolist(),
        "class_names": list(ds.class_names),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"dataset  {ds.name}  (digests verified)")
    click.echo(f"source   {ds.source}")
    click.echo(f"cache    {ds.cache_path}")
    for key, shape in info["shapes"].items():
        click.echo(f"{key:<8} {tuple(shape)}")
    width = max(len("class"), *(len(n) for n in ds.class_names))
    click.echo(f"{'class':<{width}}  {'train':>6}  {'test':>6}")
    for name, n_tr, n_te in zip(
        ds.class_names, info["train_counts"], info["test_counts"], strict=True
    ):
        click.echo(f"{name:<{width}}  {n_tr:>6,}  {n_te:>6,}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models(as_json: bool) -> None:
    """List the registered models with their parameter counts, settings and recipes.

    \b
    Example:
      mnistlab models
    """
    from mnistlab.models import count_params, list_models

    rows = [
        {
            "name": spec.name,
            "params": count_params(spec.name),
            "settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in spec.defaults.items()
            },
            "recipe": dict(spec.recipe),
            "description": spec.description,
        }
        for spec in list_models()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len("model"), *(len(row["name"]) for row in rows))
    click.echo(f"{'model':<{width}} {'params':>9}  description")
    for row in rows:
        click.echo(f"{row['name']:<{width}} {row['params']:>9,}  {row['description']}")
        settings = " ".join(f"{k}={_fmt(v)}" for k, v in row["settings"].items())
        click.echo(f"{'':<{width + 11}} settings: {settings or '(none: a fixed network)'}")


def _fmt(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MnistlabError(f"--param expects NAME=VALUE (e.g. hidden=512,256), got {item!r}")
        params[key.strip()] = value.strip()
    return params


@cli.command()
@click.option(
    "--model",
    "model_name",
    default="fnn",
    show_default=True,
    help="Registered model name (see 'mnistlab models').",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A model setting, repeatable, e.g. -p hidden=512,256 -p dropout=0.3.",
)
@click.option("--dataset", default=None, help="mnist (default) or fashion-mnist.")
@click.option("--seed", type=SEED, default=None, help="Random seed (default 0).")
@click.option("--epochs", type=int, default=None, help="Maximum epochs (model's recipe).")
@click.option("--batch-size", type=int, default=None, help="Batch size (model's recipe).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine", "onecycle"]),
    default=None,
    help="Learning-rate schedule (model's recipe).",
)
@click.option("--patience", type=int, default=None, help="Early-stopping patience (epochs).")
@click.option(
    "--keep",
    type=click.Choice(["best", "last"]),
    default=None,
    help="Keep the best validation epoch's weights or the last epoch's (model's recipe).",
)
@click.option("--label-smoothing", type=float, default=None)
@click.option("--weight-decay", type=float, default=None, help="AdamW weight decay.")
@click.option("--augment", type=float, default=None, help="Augmentation strength, 0 = off.")
@click.option(
    "--val-size",
    type=int,
    default=None,
    help="Validation images (default 5000); 0 trains on all 60,000 (needs --keep last).",
)
@click.option(
    "--deterministic",
    is_flag=True,
    default=None,
    help="TensorFlow op determinism (bit-identical reruns, slower).",
)
@click.option(
    "--idx-dir", type=click.Path(file_okay=False), help="Directory with the official IDX files."
)
@click.option(
    "--resume",
    metavar="RUN",
    default=None,
    help="Continue a run that did not finish (killed, Ctrl-C, full disk) from its last "
    "completed epoch, with its own saved settings.",
)
@RUNS_DIR_OPTION
def train(
    model_name: str,
    params: tuple[str, ...],
    idx_dir: str | None,
    resume: str | None,
    runs_dir: str,
    **settings: Any,
) -> None:
    """Train a model with early stopping on validation accuracy; save a run directory.

    The run directory (runs/<id>, also runs/latest) gets config.json, history.csv,
    model.keras, checkpoints/ and TensorBoard logs/. Settings left out come from the
    model's recipe ('mnistlab models --json' shows them).

    A checkpoint is committed after every epoch. If training stops early (killed,
    Ctrl-C, full disk), --resume RUN continues from the last completed epoch and
    ends as the uninterrupted run would have. Ctrl-C stops at the next batch and
    prints the command that resumes (exit status 130).

    \b
    Example:
      mnistlab train --model fnn --epochs 20 -p hidden=512,256 --seed 1
      mnistlab train --resume runs/latest
    """
    from mnistlab.config import make_config
    from mnistlab.runs import RunDir

    ctx = click.get_current_context()
    resume_run = None
    if resume is not None:
        given = [
            max(param.opts, key=len)  # its long name, e.g. --lr
            for param in ctx.command.params
            if param.name not in ("resume", "runs_dir", "idx_dir")
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise MnistlabError(
                f"--resume continues a run with its own config.json; drop {', '.join(given)}"
            )
        config, resume_run = None, RunDir.open(resume, runs_dir)
    else:
        config = make_config(model_name, params=_parse_params(params), **settings)
    from mnistlab.train import train as run_training  # TensorFlow: after the quick checks

    # Ctrl-C raises TrainingInterrupted (a KeyboardInterrupt): main() prints its message,
    # which holds the resume command, and exits 130.
    run = run_training(config, runs_dir=runs_dir, idx_dir=idx_dir, resume=resume_run)
    state = run.state()
    if state.get("best_val_accuracy") is None:  # val_size 0
        best = "no validation set, kept the last epoch"
    else:
        best = f"best val_accuracy {state['best_val_accuracy']:.4f} (epoch {state['best_epoch']})"
    click.echo(
        f"finished {run.path}: {state['epochs_run']} epochs in {state['train_seconds']:.1f} s, "
        f"{best}"
    )
    click.echo(f"next: mnistlab evaluate {run.path}")


@cli.command()
@click.argument("run", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of tables.")
@RUNS_DIR_OPTION
def evaluate(run: str, as_json: bool, runs_dir: str) -> None:
    """Evaluate a finished run on the test set once; write metrics.json.

    \b
    Example:
      mnistlab evaluate runs/latest
    """
    from mnistlab.evaluate import evaluate as run_evaluation
    from mnistlab.evaluate import format_metrics

    metrics = run_evaluation(run, runs_dir=runs_dir)
    click.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics))


@cli.command()
@click.argument("run", default="latest")
@RUNS_DIR_OPTION
def report(run: str, runs_dir: str) -> None:
    """Write the figures and a self-contained report.html for an evaluated run.

    \b
    Example:
      mnistlab report runs/latest
    """
    from mnistlab.report import write_report

    path = write_report(run, runs_dir=runs_dir)
    click.echo(f"report: {path}")


@cli.command()
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


@cli.command()
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
@click.option("--json", "as_json", is_flag=True, help="Print best_params.json.")
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


@cli.command()
@click.argument("run", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print calibration.json instead of a table.")
@RUNS_DIR_OPTION
def calibrate(run: str, as_json: bool, runs_dir: str) -> None:
    """Fit temperature scaling on the run's validation split; report ECE and NLL.

    The temperature is fitted on the validation split the run was trained with
    (never the test set), then applied to the saved test predictions to show ECE
    (15 bins) and negative log-likelihood before and after. It is saved as
    calibration.json in the run; model.keras is not changed. Needs an evaluated run.

    \b
    Example:
      mnistlab calibrate runs/latest
    """
    from mnistlab.evaluate import calibrate as run_calibration
    from mnistlab.evaluate import format_calibration

    record = run_calibration(run, runs_dir=runs_dir)
    click.echo(json.dumps(record, indent=2) if as_json else format_calibration(record))


@cli.command()
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
@click.option("--json", "as_json", is_flag=True, help="Print summary.json at the end.")
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
        params=_parse_params(params),
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
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--resamples", type=int, default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed.")
@RUNS_DIR_OPTION
def compare(
    run_a: str, run_b: str, as_json: bool, resamples: int, seed: int, runs_dir: str
) -> None:
    """Compare two evaluated runs on the same test images: is the difference real?

    Prints both accuracies and their difference with paired-bootstrap 95%
    intervals, and McNemar's exact test on the images exactly one run gets right.

    \b
    Example:
      mnistlab compare runs/cnn-run runs/fnn-run --json
    """
    from mnistlab.compare import compare_runs, format_comparison

    result = compare_runs(run_a, run_b, runs_dir=runs_dir, n_resamples=resamples, seed=seed)
    click.echo(json.dumps(result, indent=2) if as_json else format_comparison(result))


# -- use a trained model: preprocess, predict, export, serve (issue 6) ---------------------


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the 28x28 MNIST-form image here as PNG.",
)
@click.option(
    "--scale",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Enlarge each pixel of the written PNG (nearest neighbour).",
)
def preprocess(image: str, out: str | None, scale: int) -> None:
    """Bring an image of a digit into MNIST form (28x28, white ink on black, centred).

    Prints what it found (polarity, ink box) and the result as text art; --out
    writes it as PNG, the exact image a model sees.

    \b
    Example:
      mnistlab preprocess photo.jpg --out small.png --scale 8
    """
    from mnistlab import files
    from mnistlab.preprocess import preprocess_image, to_png

    if out and Path(out).suffix.lower() != ".png":
        raise MnistlabError(f"--out {out}: the image is written as PNG; give a path ending in .png")
    pre = preprocess_image(image)
    shades = " .:-=+*#%@"
    for row in pre.image:
        click.echo("".join(shades[min(int(v * len(shades)), len(shades) - 1)] * 2 for v in row))
    w, h = pre.source_size
    click.echo(f"{image}: {w}x{h}, {pre.polarity}, ink box {pre.bbox} (at working size)")
    if out:
        files.write_bytes(out, to_png(pre.image, scale=scale))
        click.echo(f"wrote {out} ({28 * scale}x{28 * scale})")


@cli.command()
@click.argument("model_ref", metavar="RUN_OR_MODEL")
@click.argument("paths", nargs=-1, required=True, metavar="IMG|DIR...")
@click.option(
    "--top-k",
    type=click.IntRange(1, 10),
    default=3,
    show_default=True,
    help="How many likely digits to list per file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@RUNS_DIR_OPTION
def predict(
    model_ref: str, paths: tuple[str, ...], top_k: int, as_json: bool, runs_dir: str
) -> None:
    """Predict the digit in image files (directories are searched recursively).

    RUN_OR_MODEL is a run directory, a run name, 'latest', or a .keras file. Each
    image is brought into MNIST form first (see 'mnistlab preprocess'). A file that
    cannot be read is reported in one line and counted; the rest go on, and the exit
    code is 1 if any failed. Files in a folder named by their digit (samples/7/x.png)
    are scored, and the summary gives the accuracy. A run trained on Fashion-MNIST
    prints its class names and scores only folders named by them (Sandal/x.png).

    \b
    Example:
      mnistlab predict runs/latest samples/ --top-k 3
      mnistlab predict model.keras photo.jpg --json
    """
    from mnistlab.predict import load_predictor, predict_files, summarise

    predictor = load_predictor(model_ref, runs_dir)
    results = []
    for r in predict_files(predictor, paths, top_k=top_k):
        results.append(r)
        if as_json:
            continue
        if not r.ok:
            click.echo(f"{r.file}: error: {r.error}", err=True)
            continue
        top = ", ".join(f"{r.class_name(d)} {p:.3f}" for d, p in r.top_k)
        label = "" if r.label is None else r.class_name(r.label)
        mark = "" if r.label is None else ("  ok" if r.correct else f"  WRONG (label {label})")
        name = r.class_name(r.top_k[0][0])  # the predicted class, named
        click.echo(f"{r.file}  {name}  {r.probability:.3f}  [top {top_k}: {top}]{mark}")
    summary = summarise(results)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": predictor.source,
                    "summary": summary,
                    "results": [r.to_dict() for r in results],
                },
                indent=2,
            )
        )
    else:
        line = (
            f"{summary['files']} files: {summary['predicted']} predicted, "
            f"{summary['failed']} failed"
        )
        if summary["labelled"]:
            line += (
                f"; accuracy {summary['correct']}/{summary['labelled']} = "
                f"{100 * summary['accuracy']:.1f}% on files labelled by their folder"
            )
        click.echo(line)
    if summary["failed"]:
        raise MnistlabError(
            f"{summary['failed']} of {summary['files']} files could not be read (listed above)"
        )


@cli.command()
@click.argument("run", default="latest")
@click.option(
    "--format",
    "formats",
    type=click.Choice(["savedmodel", "onnx", "tflite"]),
    multiple=True,
    required=True,
    help="Repeatable: savedmodel, onnx, tflite.",
)
@click.option("--out", type=click.Path(), help="Destination (only with one --format).")
@RUNS_DIR_OPTION
def export(run: str, formats: tuple[str, ...], out: str | None, runs_dir: str) -> None:
    """Export a run's model for TF Serving (savedmodel), onnxruntime (onnx) or TFLite.

    Default destinations are inside the run: export/savedmodel/1/ (a TF Serving model
    base path with version 1), export/model.onnx, export/model.tflite. Every format
    takes float32 (N, 28, 28, 1) in [0, 1] and returns softmax (N, 10).

    \b
    Example:
      mnistlab export runs/latest --format onnx --format tflite
    """
    from mnistlab.export import export_model

    if out and len(formats) > 1:
        raise MnistlabError("--out names one destination; give one --format with it")
    for fmt in formats:
        path = export_model(run, fmt, out, runs_dir=runs_dir)
        click.echo(f"{fmt}: {path}")


@cli.command()
@click.argument("run", default="latest")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["auto", "onnx", "tf"]),
    default="auto",
    show_default=True,
    help="Forward pass: onnxruntime, tf.function, or auto (onnx if it converts).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.001, 1024),
    default=10.0,
    show_default=True,
    help="Larger request bodies get 413.",
)
@click.option(
    "--bench",
    type=click.IntRange(0, None),
    default=0,
    metavar="N",
    help="Instead of serving: start on a free loopback port, send N requests "
    "(one at a time, then 32 at a time), print latencies and exit.",
)
@RUNS_DIR_OPTION
def serve(
    run: str, host: str, port: int, engine: str, max_upload_mb: float, bench: int, runs_dir: str
) -> None:
    """Serve a model over HTTP (FastAPI + Uvicorn) with a drawing page at /.

    POST /v1/predict (image upload, raw image or JSON 28x28), POST /v1/predict/batch,
    GET /v1/model, GET /v1/stats (in-server latency), GET /healthz, docs at /docs.

    \b
    Example:
      mnistlab serve runs/latest --port 8000
      curl -F file=@samples/7/photo.jpg http://127.0.0.1:8000/v1/predict
      mnistlab serve runs/latest --bench 2000
    """
    import logging
    import urllib.request

    from mnistlab.serve import benchmark, server_process

    if bench:
        # The server runs as its own process (as in use), the client here.
        with server_process(run, runs_dir=runs_dir, engine=engine) as url:
            rows = {
                "sequential": benchmark(url, requests=bench, concurrency=1),
                "concurrent-32": benchmark(url, requests=bench, concurrency=32),
            }
            with urllib.request.urlopen(f"{url}/v1/stats") as resp:
                stats = json.loads(resp.read())
        inference = stats["inference"]
        click.echo(f"engine {stats['engine']}, JSON 28x28 requests to {url} (loopback)")
        click.echo(
            f"{'HTTP round trip':<18} {'requests':>8} {'errors':>6} {'req/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8}"
        )
        for name, r in rows.items():
            click.echo(
                f"{name:<18} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8}"
            )
        click.echo(
            f"in-server inference (model call only, {inference['n']} single images): "
            f"p50 {inference['p50_ms']} ms, p99 {inference['p99_ms']} ms"
        )
        if any(r["errors"] for r in rows.values()):
            raise MnistlabError(f"the benchmark saw errors: {rows}")
        return

    from mnistlab.serve import create_app, listen_socket, load_for_serving, run_server

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    sock = listen_socket(host, port)  # a port in use or a bad --host: one line, before loading
    port = sock.getsockname()[1]  # the one the system chose for --port 0
    predictor = load_for_serving(run, runs_dir, engine=engine)
    app = create_app(predictor, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    announce = f"serving {predictor.name} ({predictor.engine}) on http://{host}:{port}/"
    run_server(app, host=host, port=port, announce=announce, sock=sock)


@cli.command("ensemble")
@click.argument("runs", nargs=-1, required=True)
@click.option("--name", "run_name", default=None, help="Name of the new run directory.")
@RUNS_DIR_OPTION
def ensemble_command(runs: tuple[str, ...], run_name: str | None, runs_dir: str) -> None:
    """Average the softmax outputs of several finished runs into a new run directory.

    The new run is evaluated and reported like any other (this command runs both).

    \b
    Example:
      mnistlab ensemble runs/cnn-best-s0 runs/cnn-best-s1 runs/cnn-best-s2
    """
    from mnistlab.ensemble import ensemble
    from mnistlab.evaluate import evaluate as run_evaluation
    from mnistlab.evaluate import format_metrics
    from mnistlab.report import write_report

    run = ensemble(runs, runs_dir=runs_dir, run_name=run_name)
    click.echo(f"ensemble of {len(runs)} runs: {run.path}")
    click.echo(format_metrics(run_evaluation(run)))
    click.echo(f"report: {write_report(run)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="mnistlab", standalone_mode=False)
    except MnistlabError as err:
        click.echo(f"mnistlab: error: {err}", err=True)
        return 1
    except click.exceptions.Abort as err:
        # Click turns Ctrl-C into Abort; an interrupted training's message says how to resume.
        cause = str(err.__cause__) if isinstance(err.__cause__, KeyboardInterrupt) else ""
        click.echo(f"mnistlab: {cause or 'aborted'}", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("mnistlab: interrupted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
