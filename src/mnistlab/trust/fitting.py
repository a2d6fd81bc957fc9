"""Making a run trustworthy after training: calibrate it, choose when it abstains.

::

    train (mnistlab.train) -> calibrate on the validation split (mnistlab.evaluate)
    -> penultimate features of training digits -> FeatureStats (class means, shared
       covariance, a kNN bank)
    -> OOD scores of validation digits and validation outliers (mnistlab.trust.outliers)
       -> the method with the best mean AUROC over the outlier kinds becomes the score
    -> thresholds on validation digits only, for TARGET_KEEP of them answered:
       max_ink (the input check), ood_threshold, then min_confidence
    -> abstention.json + ood_detector.npz in the run

The test set plays no part: everything here is fitted on the run's training and
validation splits and on training/validation outliers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.config import TrainConfig
from mnistlab.data import Dataset, to_float, train_val_split
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import apply_calibration, calibrate, run_dataset
from mnistlab.runs import RunDir, load_calibration, load_run_model
from mnistlab.trust.checks import ink_fraction, several_side_by_side
from mnistlab.trust.exposure import fine_tune_outlier_exposure, load_ood_model
from mnistlab.trust.scores import METHODS, FeatureStats, ModelOutputs, feature_model, ood_score

__all__ = ["TARGET_KEEP", "choose_thresholds", "fit_trust", "prepare_trained", "train_trusted"]

# The operating point: answer (not abstain on) 99% of real validation digits.
TARGET_KEEP = 0.99
# Of the 1% abstained on, half may go to "not a digit" (the OOD score), the rest to
# "unsure"; the ink check may take at most 0.1%.
OOD_SHARE = 0.5
INK_KEEP = 0.999
TRAIN_FEATURES = 10_000  # training digits the feature statistics are fitted on
VAL_OUTLIERS = 200  # validation outliers per kind, for choosing the score
OE_OUTLIERS = 2000  # training outliers per kind for outlier exposure
RENDERED = 2000  # validation digits rendered as predict sees them (~10 ms each)
Render = Callable[[np.ndarray], np.ndarray]
# How much of the abstention budget (1 - target_keep) the OOD score may take; the rest
# goes to "unsure". Chosen per run on validation outliers (the share catching most).
OOD_SHARES = (0.5, 0.75, 0.9)


def choose_thresholds(
    val_images: np.ndarray,
    val_probs: np.ndarray,
    val_scores: np.ndarray,
    target_keep: float = TARGET_KEEP,
    ood_share: float = OOD_SHARE,
) -> dict[str, Any]:
    """Thresholds that keep ``target_keep`` of validation digits answered.

    Parameters
    ----------
    val_images : float (N, 28, 28) validation digits (MNIST form).
    val_probs : float (N, 10) their calibrated probabilities.
    val_scores : float (N,) their OOD scores.
    target_keep : share of validation digits that must keep an answer.
    ood_share : the share of the digits abstained on that the OOD score may take.

    Returns
    -------
    ``{"max_ink", "split_blobs", "ood_threshold", "min_confidence", "ood_share",
    "validation"}``.
    """
    if not 0.5 <= target_keep < 1:
        raise MnistlabError(f"invalid target_keep={target_keep!r}: expected 0.5 <= t < 1")
    n = len(val_images)
    ink = ink_fraction(val_images)
    max_ink = float(min(1.0, np.quantile(ink, INK_KEEP) + 0.02))
    blobs = np.array([several_side_by_side(im) for im in val_images])
    # The side-by-side check earns its place only if it (almost) never fires on digits.
    split_blobs = bool(blobs.mean() <= 0.002)
    passed = (ink <= max_ink) & ~(blobs & split_blobs)
    ood_threshold = float(np.quantile(val_scores[passed], 1 - (1 - target_keep) * ood_share))
    passed_ood = passed & (val_scores <= ood_threshold)
    # min_confidence: the largest value still answering target_keep of all digits.
    conf = np.sort(val_probs.max(axis=1)[passed_ood])
    drop = int(passed_ood.sum() - np.ceil(target_keep * n))
    min_confidence = float(conf[drop]) if 0 <= drop < len(conf) else 0.0
    unsure = passed_ood & (val_probs.max(axis=1) < min_confidence)
    return {
        "max_ink": max_ink,
        "split_blobs": split_blobs,
        "ood_threshold": ood_threshold,
        "min_confidence": min_confidence,
        "ood_share": ood_share,
        "validation": {
            "n": n,
            "kept": float((passed_ood & ~unsure).mean()),
            "not_a_digit": float(
                ((ink > max_ink) | (passed & (val_scores > ood_threshold))).mean()
            ),
            "unsure": float(unsure.mean()),
            "not_a_single_digit": float((blobs & split_blobs & (ink <= max_ink)).mean()),
        },
    }


def digit_splits(run: RunDir, dataset: Dataset) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val) exactly as the run's training split them."""
    config = run.train_config()
    if config.val_size == 0:
        raise MnistlabError(
            f"run {run.name} trained on all training images (val_size 0): no validation "
            "split is left to choose thresholds on; train with a validation split"
        )
    return train_val_split(
        dataset.x_train, dataset.y_train, val_size=config.val_size, seed=config.seed
    )


def outputs_of(
    both: Any,
    images: np.ndarray,
    calibration: dict[str, Any] | None,
    oe_model: Any | None = None,
) -> ModelOutputs:
    """Features, logits and calibrated probabilities of MNIST-form images (and the
    outlier-exposure model's probabilities when ``oe_model`` is given)."""
    from mnistlab.trust.scores import model_outputs

    feats, logits, probs = model_outputs(both, images)
    oe_probs = None
    if oe_model is not None:
        x = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
        oe_probs = np.asarray(oe_model.predict(x, batch_size=512, verbose=0), np.float32)
    calibrated = apply_calibration(probs, calibration).astype(np.float32)
    return ModelOutputs(feats, logits, calibrated, oe_probs)


def caught_at_operating_point(
    digit_scores: np.ndarray, outlier_scores: np.ndarray, keep: float
) -> float:
    """Share of outliers scoring above the threshold that keeps ``keep`` of the digits."""
    return float((outlier_scores > np.quantile(digit_scores, keep)).mean())


def fit_trust(
    run: RunDir | str | Path,
    *,
    dataset: Dataset | None = None,
    runs_dir: str | Path = "runs",
    target_keep: float = TARGET_KEEP,
    calibrate_first: bool = True,
    outlier_exposure: bool = True,
    oe_outliers: int = OE_OUTLIERS,
    refit_exposure: bool = True,
    render: Render | None = None,
) -> dict[str, Any]:
    """Calibrate a finished MNIST run and choose its abstention rule; write both.

    Parameters
    ----------
    run : a :class:`RunDir`, path, run name or ``"latest"``.
    dataset : the run's dataset if already loaded.
    runs_dir : where run names are looked up.
    target_keep : share of validation digits that must keep an answer (0.99).
    calibrate_first : fit ``calibration.json`` first (else use the run's own).
    outlier_exposure : also fine-tune an outlier-exposure model (``ood_model.keras``,
        :mod:`~mnistlab.trust.exposure`) on ``oe_outliers`` training outliers per kind,
        and let its score compete.
    refit_exposure : False keeps the run's ``ood_model.keras`` when it has one.
    render : how ``predict`` would see a batch of MNIST-form images (drawn large and
        brought back through its preprocessing; :func:`mnistlab.predict.as_predict_sees`).
        When given, the score, the thresholds and the split of the abstention budget
        are chosen on :data:`RENDERED` validation digits and the validation outliers so
        rendered, since that is what the rule judges in use; else on the arrays.

    Returns
    -------
    The dict written to ``abstention.json`` (:class:`~mnistlab.runs.AbstentionRecord`),
    with ``compared``: each score's validation AUROC per outlier kind and ``caught``:
    the share of validation outliers abstained on at the operating point. The score
    catching most (mean over kinds) becomes the run's ``score``.
    """
    from sklearn.metrics import roc_auc_score

    from mnistlab.trust.outliers import KINDS, make_outliers

    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    dataset = run_dataset(run, dataset)
    if dataset.name != "mnist":
        raise MnistlabError(
            f"run {run.name} classifies {dataset.name}; abstention ('not a digit') is "
            "for digit runs only"
        )
    if calibrate_first:
        calibrate(run, dataset=dataset)
    calibration = load_calibration(run)
    x_train, y_train, x_val, y_val = digit_splits(run, dataset)
    both = feature_model(load_run_model(run))
    oe_model = None
    if outlier_exposure and not refit_exposure:
        oe_model = load_ood_model(run)
    if outlier_exposure and oe_model is None:
        oe_model = fine_tune_outlier_exposure(
            run,
            x_train,
            y_train,
            outliers_per_kind=oe_outliers,
            seed=run.train_config().seed,
            render=render,
        )
    train_out = outputs_of(both, to_float(x_train[:TRAIN_FEATURES]), calibration)
    stats = FeatureStats.fit(train_out.features, y_train[:TRAIN_FEATURES])
    val_images = to_float(x_val)[..., 0]
    outliers = {kind: make_outliers(kind, "val", VAL_OUTLIERS) for kind in KINDS}
    if render is not None:
        # Digits and outliers as predict sees them: the score, the thresholds and the
        # split of the budget are chosen for the images the rule will judge.
        val_images = render(val_images[:RENDERED])
        outliers = {kind: render(x) if len(x) else x for kind, x in outliers.items()}
    val_out = outputs_of(both, val_images, calibration, oe_model)
    out_outputs = {
        k: outputs_of(both, x, calibration, oe_model) for k, x in outliers.items() if len(x)
    }

    keep = 1 - (1 - target_keep) * OOD_SHARE  # the OOD score's share of the digits kept
    methods = [m for m in METHODS if m != "oe" or oe_model is not None]
    compared: dict[str, dict[str, float]] = {}
    caught: dict[str, dict[str, float]] = {}
    for method in methods:
        digit_scores = ood_score(method, val_out, stats)
        compared[method], caught[method] = {}, {}
        for kind, outs in out_outputs.items():
            scores = ood_score(method, outs, stats)
            y = np.r_[np.zeros(len(digit_scores)), np.ones(len(scores))]
            compared[method][kind] = float(roc_auc_score(y, np.r_[digit_scores, scores]))
            caught[method][kind] = caught_at_operating_point(digit_scores, scores, keep)
        compared[method]["mean"] = float(np.mean(list(compared[method].values())))
        caught[method]["mean"] = float(np.mean(list(caught[method].values())))
    best = max(methods, key=lambda m: (caught[m]["mean"], compared[m]["mean"]))

    # The split of the abstention budget between "not a digit" and "unsure": the one
    # that abstains on most validation outliers (mean over kinds) under the whole rule.
    digit_scores = ood_score(best, val_out, stats)
    candidates = []
    for share in OOD_SHARES:
        rule = choose_thresholds(val_images, val_out.probs, digit_scores, target_keep, share)
        rates = [
            float(
                (
                    (ink_fraction(outliers[kind]) > rule["max_ink"])
                    | (ood_score(best, outs, stats) > rule["ood_threshold"])
                    | (outs.probs.max(axis=1) < rule["min_confidence"])
                ).mean()
            )
            for kind, outs in out_outputs.items()
        ]
        candidates.append((float(np.mean(rates)), share, rule))
    _, _, chosen = max(candidates, key=lambda c: (c[0], c[1]))
    record = {
        "score": best,
        **chosen,
        "target_keep": target_keep,
        "fitted_on": "validation",
        "n_fit": int(len(val_images)),
        "rendered_like_predict": render is not None,
        "val_size": run.train_config().val_size,
        "seed": run.train_config().seed,
        "compared_auroc": compared,
        "caught_at_operating_point": caught,
        "run": str(run.path),
    }
    run.write_abstention(record, stats.to_arrays() if best in ("mahalanobis", "knn") else None)
    return record


def train_trusted(
    config: TrainConfig,
    *,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    oe_outliers: int = OE_OUTLIERS,
    render: Render | None = None,
    **train_kwargs: Any,
) -> RunDir:
    """Train a run, then calibrate it and choose its abstention rule (:func:`fit_trust`).

    What ``mnistlab train`` does (with ``render=mnistlab.predict.as_predict_sees``); a
    run on another dataset than MNIST (or without a validation split) is calibrated
    when it can be and gets no abstention rule. ``render``: see :func:`fit_trust`.

    Examples
    --------
    >>> from mnistlab.config import make_config
    >>> run = train_trusted(make_config("cnn-fast"))  # doctest: +SKIP
    >>> run.abstention_record().score  # doctest: +SKIP
    'mahalanobis'
    """
    from mnistlab.train import train

    run = train(config, runs_dir=runs_dir, dataset=dataset, **train_kwargs)
    prepare_trained(run, dataset=dataset, oe_outliers=oe_outliers, render=render)
    return run


def prepare_trained(
    run: RunDir,
    *,
    dataset: Dataset | None = None,
    oe_outliers: int = OE_OUTLIERS,
    render: Render | None = None,
) -> str:
    """After training: calibrate (and for MNIST choose the abstention rule) when possible.

    Returns
    -------
    What was done, in a few words (for the CLI).
    """
    if run.state().get("state") != "finished":
        return "not finished: no calibration"
    config = run.train_config()
    if config.val_size == 0:
        return "no validation split: not calibrated, no abstention rule"
    if config.dataset == "mnist":
        record = fit_trust(run, dataset=dataset, oe_outliers=oe_outliers, render=render)
        return (
            f"calibrated; abstains with the {record['score']} score, answering "
            f"{100 * record['target_keep']:.0f}% of validation digits"
        )
    calibrate(run, dataset=dataset)
    return "calibrated"
