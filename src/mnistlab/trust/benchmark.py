"""The out-of-distribution comparison: each score against each kind of outlier.

``mnistlab ood RUN`` scores the run's test digits (negatives) and test outliers of each
kind (positives, unseen fonts and seeds) with every method of
:mod:`mnistlab.trust.scores`, and reports AUROC and the false-positive rate at 95%
true-positive rate (FPR@95: the share of outliers still taken for digits when 95% of
digits are kept), per kind. It also reports what the run's own abstention rule
(``abstention.json``) does: the share of test digits and of each kind abstained on.
Nothing here is used to choose anything: the choice is made on validation data by
:mod:`mnistlab.trust.fitting`.

:func:`write_samples` writes a folder of test outliers as PNG files, the set
``mnistlab predict RUN DIR`` is measured on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import files
from mnistlab.data import to_float
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import run_dataset
from mnistlab.runs import RunDir, load_calibration, load_run_model
from mnistlab.trust.abstention import Abstainer
from mnistlab.trust.exposure import load_ood_model
from mnistlab.trust.fitting import TRAIN_FEATURES, digit_splits, outputs_of
from mnistlab.trust.outliers import FOLDER_KINDS, KINDS, make_outliers
from mnistlab.trust.scores import METHODS, FeatureStats, feature_model, ood_score

__all__ = ["format_ood", "ood_benchmark", "store_ood", "write_samples"]


def _fpr_at_95(digit_scores: np.ndarray, outlier_scores: np.ndarray) -> float:
    """Share of outliers scoring at or below the score that keeps 95% of digits."""
    cut = np.quantile(digit_scores, 0.95)
    return float((outlier_scores <= cut).mean())


def ood_benchmark(
    run: RunDir | str | Path,
    *,
    runs_dir: str | Path = "runs",
    n: int = 500,
    split: str = "test",
    render: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """AUROC and FPR@95 per method and outlier kind, and the run's abstention rates.

    Parameters
    ----------
    run : a finished MNIST run (with ``abstention.json`` for the abstention rows).
    runs_dir : where run names are looked up.
    n : outliers per kind (and at most 10 x n test digits).
    split : ``"test"`` (report) or ``"val"``.
    render : how ``predict`` sees an image (``mnistlab.predict.as_predict_sees``); when
        given, the abstention rates are measured on the images so rendered (as
        ``predict`` judges files: 2,000 digits and the ``n`` outliers of each kind).

    Returns
    -------
    ``{"methods": {method: {kind: {"auroc", "fpr95"}}}, "abstention": {...} | None,
    "n_digits", "n_outliers": {kind: count}, "split"}``.
    """
    from sklearn.metrics import roc_auc_score

    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    dataset = run_dataset(run)
    calibration = load_calibration(run)
    model = load_run_model(run)
    both = feature_model(model)
    x_train, y_train, x_val, _ = digit_splits(run, dataset)
    stats = FeatureStats.fit(
        outputs_of(both, to_float(x_train[:TRAIN_FEATURES]), calibration).features,
        y_train[:TRAIN_FEATURES],
    )
    oe_model = load_ood_model(run)
    digits = to_float(dataset.x_test if split == "test" else x_val)[: 10 * n, ..., 0]
    digit_out = outputs_of(both, digits, calibration, oe_model)
    outliers = {kind: make_outliers(kind, split, n) for kind in KINDS}
    outs = {k: outputs_of(both, x, calibration, oe_model) for k, x in outliers.items() if len(x)}

    table: dict[str, dict[str, dict[str, float]]] = {}
    for method in (m for m in METHODS if m != "oe" or oe_model is not None):
        base = ood_score(method, digit_out, stats)
        table[method] = {}
        for kind, o in outs.items():
            s = ood_score(method, o, stats)
            y = np.r_[np.zeros(len(base)), np.ones(len(s))]
            table[method][kind] = {
                "auroc": float(roc_auc_score(y, np.r_[base, s])),
                "fpr95": _fpr_at_95(base, s),
            }
    abstention = None
    abstainer = Abstainer.from_run(run, model)
    if abstainer is not None and render is not None:
        digits = render(digits[:2000])
        digit_out = outputs_of(both, digits, calibration)
        outliers = {k: render(x) for k, x in outliers.items()}
        outs = {k: outputs_of(both, x, calibration) for k, x in outliers.items() if len(x)}
    if abstainer is not None:
        rates = {"digits": _abstained(abstainer, digits, digit_out.probs)}
        for kind, x in outliers.items():
            if len(x):
                rates[kind] = _abstained(abstainer, x, outs[kind].probs)
        folder = [outliers[k] for k in FOLDER_KINDS if len(outliers[k])]
        if folder:
            xs = np.concatenate(folder)
            probs = np.concatenate([outs[k].probs for k in FOLDER_KINDS if len(outliers[k])])
            rates["not-digits folder"] = _abstained(abstainer, xs, probs)
        abstention = {
            "score": abstainer.record.score,
            "rates": rates,
            "as_predict_sees": render is not None,
        }
    return {
        "split": split,
        "n_digits": len(digits),
        "n_outliers": {k: len(x) for k, x in outliers.items()},
        "methods": table,
        "abstention": abstention,
        "run": str(run.path),
    }


def store_ood(
    run: RunDir | str | Path, result: dict[str, Any], runs_dir: str | Path = "runs"
) -> None:
    """Keep a test-split comparison in the run's ``abstention.json`` (for the report)."""
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    record = run.abstention_record()
    if record is not None and result["split"] == "test":
        run.write_abstention({**record.model_dump(), "ood_benchmark": result})


def _abstained(abstainer: Abstainer, images: np.ndarray, probs: np.ndarray) -> float:
    reasons = abstainer.decide(images, probs)
    return float(np.mean([r is not None for r in reasons]))


def format_ood(result: dict[str, Any]) -> str:
    """The comparison as Markdown tables (AUROC / FPR@95 per method and kind)."""
    kinds = list(next(iter(result["methods"].values())).keys())
    lines = [
        f"OOD on {result['split']}: {result['n_digits']} digits vs outliers "
        f"({', '.join(f'{k} {n}' for k, n in result['n_outliers'].items())})",
        "",
        "| method | " + " | ".join(kinds) + " | mean |",
        "| --- |" + " --- |" * (len(kinds) + 1),
    ]
    for method, row in result["methods"].items():
        cells = [f"{row[k]['auroc']:.3f} / {row[k]['fpr95']:.2f}" for k in kinds]
        mean_auc = np.mean([row[k]["auroc"] for k in kinds])
        mean_fpr = np.mean([row[k]["fpr95"] for k in kinds])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {mean_auc:.3f} / {mean_fpr:.2f} |")
    lines.append("")
    lines.append("cells: AUROC / FPR@95%TPR (higher / lower is better)")
    if result["abstention"]:
        ab = result["abstention"]
        seen = " (images as predict sees them)" if ab.get("as_predict_sees") else ""
        lines += ["", f"abstention rule of the run (score {ab['score']}){seen}: share abstained on"]
        lines += [f"  {k:<18} {100 * v:6.1f}%" for k, v in ab["rates"].items()]
    return "\n".join(lines)


def write_samples(directory: str | Path, *, n: int = 100, split: str = "test") -> dict[str, int]:
    """Write ``n`` outliers of each folder kind as PNG files under ``directory/<kind>/``.

    Returns
    -------
    {kind: files written}.
    """
    import io

    from PIL import Image

    if n < 1:
        raise MnistlabError(f"invalid n={n!r}: expected an integer >= 1")
    directory = Path(directory)
    written = {}
    for kind in FOLDER_KINDS:
        images = make_outliers(kind, split, n)
        (directory / kind).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            # Dark ink on white paper, 4x: what a user's scan would look like.
            paper = Image.fromarray(np.round(255 * (1 - image)).astype(np.uint8))
            buffer = io.BytesIO()
            paper.resize((112, 112), Image.Resampling.NEAREST).save(buffer, format="PNG")
            files.write_bytes(directory / kind / f"{kind}-{i:04d}.png", buffer.getvalue())
        written[kind] = len(images)
    return written
