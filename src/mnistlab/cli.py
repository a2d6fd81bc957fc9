"""The ``mnistlab`` command: a thin shell over the Python API.

Every command maps to one public function; errors a user can fix are printed
as one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mnistlab.errors import MnistlabError

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
    width = max(len(n) for n in ds.class_names)
    click.echo(f"{'class':<{width}}  {'train':>6}  {'test':>6}")
    for name, n_tr, n_te in zip(
        ds.class_names, info["train_counts"], info["test_counts"], strict=True
    ):
        click.echo(f"{name:<{width}}  {n_tr:>6}  {n_te:>6}")


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
    click.echo(f"{'model':<10} {'params':>9}  description")
    for row in rows:
        click.echo(f"{row['name']:<10} {row['params']:>9,}  {row['description']}")
        settings = " ".join(f"{k}={_fmt(v)}" for k, v in row["settings"].items())
        click.echo(f"{'':<21} settings: {settings}")


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
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
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
@click.option("--label-smoothing", type=float, default=None)
@click.option("--weight-decay", type=float, default=None, help="AdamW weight decay.")
@click.option("--augment", type=float, default=None, help="Augmentation strength, 0 = off.")
@click.option("--val-size", type=int, default=None, help="Validation images (default 5000).")
@click.option(
    "--deterministic",
    is_flag=True,
    default=None,
    help="TensorFlow op determinism (bit-identical reruns, slower).",
)
@click.option(
    "--idx-dir", type=click.Path(file_okay=False), help="Directory with the official IDX files."
)
@RUNS_DIR_OPTION
def train(
    model_name: str, params: tuple[str, ...], idx_dir: str | None, runs_dir: str, **settings: Any
) -> None:
    """Train a model with early stopping on validation accuracy; save a run directory.

    The run directory (runs/<id>, also runs/latest) gets config.json, history.csv,
    model.keras, checkpoints/ and TensorBoard logs/. Settings left out come from the
    model's recipe ('mnistlab models --json' shows them).

    \b
    Example:
      mnistlab train --model fnn --epochs 20 -p hidden=512,256 --seed 1
    """
    from mnistlab.config import make_config

    config = make_config(model_name, params=_parse_params(params), **settings)
    from mnistlab.train import train as run_training

    run = run_training(config, runs_dir=runs_dir, idx_dir=idx_dir)
    state = run.state()
    click.echo(
        f"finished {run.path}: {state['epochs_run']} epochs in {state['train_seconds']:.1f} s, "
        f"best val_accuracy {state['best_val_accuracy']:.4f} (epoch {state['best_epoch']})"
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="mnistlab", standalone_mode=False)
    except MnistlabError as err:
        click.echo(f"mnistlab: error: {err}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("mnistlab: aborted", err=True)
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
