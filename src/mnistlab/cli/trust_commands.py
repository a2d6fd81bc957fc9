"""Commands of trust: ``trust`` (calibrate and choose when to abstain) and ``ood`` (the
out-of-distribution comparison, and the folder of not-digits it is measured on)."""

from __future__ import annotations

import json

import click

from mnistlab.cli.options import RUNS_DIR_OPTION, json_option


@click.command("trust")
@click.argument("run", default="latest")
@click.option(
    "--target-keep",
    type=click.FloatRange(0.5, 0.9999),
    default=0.99,
    show_default=True,
    help="Share of validation digits that must keep an answer.",
)
@json_option("Print abstention.json.")
@RUNS_DIR_OPTION
def trust(run: str, target_keep: float, as_json: bool, runs_dir: str) -> None:
    """Calibrate a run and choose when it says 'not a digit' or 'unsure' (validation only).

    'mnistlab train' does this after training; run it for older runs. Writes
    calibration.json, abstention.json and ood_detector.npz into the run.

    \b
    Example:
      mnistlab trust runs/latest --target-keep 0.99
    """
    from mnistlab.predict.predictor import as_predict_sees
    from mnistlab.trust import fit_trust

    record = fit_trust(run, runs_dir=runs_dir, target_keep=target_keep, render=as_predict_sees)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    val = record["validation"]
    click.echo(
        f"score {record['score']} (catches most validation outliers); ood_threshold "
        f"{record['ood_threshold']:.4g}, min_confidence {record['min_confidence']:.4f}, "
        f"max_ink {record['max_ink']:.3f}"
    )
    click.echo(
        f"validation digits: {100 * val['kept']:.2f}% answered, "
        f"{100 * val['not_a_digit']:.2f}% not a digit, {100 * val['unsure']:.2f}% unsure, "
        f"{100 * val['not_a_single_digit']:.2f}% not a single digit"
    )


@click.command("ood")
@click.argument("run", default="latest")
@click.option(
    "-n",
    "n",
    type=click.IntRange(10, 5000),
    default=500,
    show_default=True,
    help="Outliers per kind.",
)
@click.option(
    "--split",
    type=click.Choice(["test", "val"]),
    default="test",
    show_default=True,
    help="Test outliers (unseen fonts and seeds) or validation ones.",
)
@click.option(
    "--write-samples",
    "samples_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Instead: write test not-digits (letters, symbols, scripts, doodles, scribbles) "
    "as PNG files here, n per kind.",
)
@json_option()
@RUNS_DIR_OPTION
def ood(
    run: str, n: int, split: str, samples_dir: str | None, as_json: bool, runs_dir: str
) -> None:
    """Compare OOD scores (MSP, energy, Mahalanobis, kNN) on digits vs not-digits.

    AUROC and FPR@95%TPR per outlier kind, and what the run's abstention rule abstains on;
    the test comparison is kept in the run for its report.

    \b
    Example:
      mnistlab ood runs/latest
      mnistlab ood runs/latest --write-samples not-digits -n 100
      mnistlab predict runs/latest not-digits/
    """
    if samples_dir is not None:
        from mnistlab.trust.benchmark import write_samples

        written = write_samples(samples_dir, n=n)
        click.echo(f"wrote {sum(written.values())} images to {samples_dir}: {written}")
        return
    from mnistlab.predict.predictor import as_predict_sees
    from mnistlab.trust.benchmark import format_ood, ood_benchmark, store_ood

    result = ood_benchmark(run, runs_dir=runs_dir, n=n, split=split, render=as_predict_sees)
    store_ood(run, result, runs_dir=runs_dir)  # the report's OOD table
    click.echo(json.dumps(result, indent=2) if as_json else format_ood(result))
