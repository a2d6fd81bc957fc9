"""Commands of the pipeline on one run: ``train``, ``ensemble``, ``evaluate``,
``calibrate``, ``report``, and ``compare`` (two evaluated runs)."""

from __future__ import annotations

import json
from typing import Any

import click

from mnistlab.cli.options import RUNS_DIR_OPTION, SEED, json_option, parse_params
from mnistlab.errors import MnistlabError


@click.command()
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
    "--perturb", type=float, default=None, help="Share of training digits perturbed, 0 = off."
)
@click.option(
    "--perturbations",
    default=None,
    metavar="A,B,...",
    help="Perturbation families to draw from (default all; docs/training.md).",
)
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
@click.option(
    "--trust/--no-trust",
    "fit_trust",
    default=True,
    show_default=True,
    help="Then calibrate and fit the abstention rule on validation (a few minutes); "
    "--no-trust leaves that to 'mnistlab trust RUN'.",
)
@RUNS_DIR_OPTION
def train(
    model_name: str,
    params: tuple[str, ...],
    idx_dir: str | None,
    resume: str | None,
    runs_dir: str,
    fit_trust: bool,
    **settings: Any,
) -> None:
    """Train a model with early stopping on validation accuracy; save a run directory.

    The run directory (runs/<id>, also runs/latest) gets config.json, history.csv,
    model.keras, checkpoints/ and TensorBoard logs/; then, fitted on the validation
    split, calibration.json and (for MNIST) abstention.json ('mnistlab trust').
    Settings left out come from the model's recipe ('mnistlab models --json' shows them).

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
            if param.name not in ("resume", "runs_dir", "idx_dir", "fit_trust")
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise MnistlabError(
                f"--resume continues a run with its own config.json; drop {', '.join(given)}"
            )
        config, resume_run = None, RunDir.open(resume, runs_dir)
    else:
        config = make_config(model_name, params=parse_params(params), **settings)
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
    if fit_trust:
        from mnistlab.predict.predictor import as_predict_sees
        from mnistlab.trust import prepare_trained

        # Calibrated by default: the calibrator and the abstention rule, fitted on validation.
        click.echo(f"trust: {prepare_trained(run, render=as_predict_sees)}")
    else:
        click.echo(f"trust: not fitted (--no-trust); mnistlab trust {run.path} fits it")
    click.echo(f"next: mnistlab evaluate {run.path}")


@click.command("ensemble")
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


@click.command()
@click.argument("run", default="latest")
@json_option("Print metrics.json instead of tables.")
@click.option(
    "--uncalibrated", is_flag=True, help="Score the model's own probabilities, not calibrated."
)
@RUNS_DIR_OPTION
def evaluate(run: str, as_json: bool, uncalibrated: bool, runs_dir: str) -> None:
    """Evaluate a finished run on the test set once; write metrics.json.

    The probabilities are calibrated when the run is (calibration.json).

    \b
    Example:
      mnistlab evaluate runs/latest
    """
    from mnistlab.evaluate import evaluate as run_evaluation
    from mnistlab.evaluate import format_metrics
    from mnistlab.trust import measure_abstention

    metrics = run_evaluation(run, runs_dir=runs_dir, uncalibrated=uncalibrated)
    # The abstention rule (chosen on validation) applied to the test digits, for the report.
    test = None if uncalibrated else measure_abstention(run, runs_dir=runs_dir)
    click.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics))
    if test is not None and not as_json:
        click.echo(
            f"abstention (thresholds from validation): answers {test['coverage']:.2%} of test "
            f"digits, {test['selective_accuracy']:.2%} of them right"
        )


@click.command()
@click.argument("run", default="latest")
@json_option("Print calibration.json instead of a table.")
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


@click.command()
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


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@json_option()
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
    from mnistlab.evaluate import compare_runs, format_comparison

    result = compare_runs(run_a, run_b, runs_dir=runs_dir, n_resamples=resamples, seed=seed)
    click.echo(json.dumps(result, indent=2) if as_json else format_comparison(result))
