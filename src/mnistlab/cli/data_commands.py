"""Commands about the inputs: ``data`` (fetch and verify a dataset) and ``models``."""

from __future__ import annotations

import json
from typing import Any

import click

from mnistlab.cli.options import format_setting, json_option


@click.command()
@click.option("--dataset", default="mnist", show_default=True, help="mnist or fashion-mnist.")
@click.option(
    "--idx-dir",
    type=click.Path(file_okay=False),
    help="Directory with the four official IDX files (.gz or not).",
)
@json_option()
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


@click.command()
@json_option()
def models(as_json: bool) -> None:
    """List the registered models with their parameter counts, settings and recipes.

    \b
    Example:
      mnistlab models
    """
    from mnistlab.models import count_params, list_models

    rows: list[dict[str, Any]] = [
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
        settings = " ".join(f"{k}={format_setting(v)}" for k, v in row["settings"].items())
        click.echo(f"{'':<{width + 11}} settings: {settings or '(none: a fixed network)'}")
