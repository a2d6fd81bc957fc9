"""Compare two evaluated runs on the same test images: is the difference real?

Both runs' saved test predictions (``predictions.npz``, written by
``evaluate``) are lined up image by image::

    correct_a, correct_b (N,) -> 2x2 table: both right, only A, only B, both wrong
    -> accuracies and their difference
    -> McNemar's exact test on the discordant images (only A right vs only B right)
    -> paired bootstrap 95% intervals for each accuracy and for the difference

McNemar's test asks whether, among the images exactly one run gets right,
each run wins half the time; images both get right (or wrong) say nothing
about which run is better. Exact: a two-sided binomial test, valid for any
number of discordant images (the chi-squared version needs many).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.runs import RunDir, load_predictions

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
ALPHA = 0.05  # significance level for the verdict line


# -- statistics (pure) -----------------------------------------------------------------------


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided p-value of McNemar's exact test.

    Parameters
    ----------
    only_a : images run A gets right and run B gets wrong (``b`` in the usual 2x2 table).
    only_b : images run B gets right and run A gets wrong (``c``).

    Returns
    -------
    ``binomtest(min(b, c), b + c, 0.5)`` two-sided p-value; 1.0 when
    ``b + c == 0`` (no evidence either way).

    Examples
    --------
    >>> round(mcnemar_exact(10, 2), 4)  # 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * 79/4096
    0.0386
    """
    from scipy.stats import binomtest

    for name, value in (("only_a", only_a), ("only_b", only_b)):
        if not (isinstance(value, int | np.integer) and value >= 0):
            raise MnistlabError(f"invalid {name}={value!r}: expected a count >= 0")
    n = int(only_a) + int(only_b)
    if n == 0:
        return 1.0
    return float(binomtest(int(min(only_a, only_b)), n, 0.5, alternative="two-sided").pvalue)


def contingency(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, int]:
    """The paired 2x2 table of two runs' right/wrong answers on the same images.

    Parameters
    ----------
    correct_a, correct_b : bool (N,), whether each run got each image right.

    Returns
    -------
    ``{"both_right", "only_a", "only_b", "both_wrong"}`` counts summing to N.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise MnistlabError(
            f"correct_a and correct_b must be non-empty and the same length, "
            f"got {a.shape} and {b.shape}"
        )
    return {
        "both_right": int(np.sum(a & b)),
        "only_a": int(np.sum(a & ~b)),
        "only_b": int(np.sum(~a & b)),
        "both_wrong": int(np.sum(~a & ~b)),
    }


def bootstrap_intervals(
    table: dict[str, int],
    *,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Paired bootstrap percentile intervals for accuracy A, accuracy B and A - B.

    Resampling N images with replacement and counting them into the 2x2 table
    is the same as drawing the table's four counts from a multinomial with the
    observed cell frequencies, so each resample costs four numbers instead of N.

    Parameters
    ----------
    table : as :func:`contingency`.
    n_resamples : bootstrap resamples.
    confidence : central coverage of the intervals, e.g. 0.95.
    seed : the same seed gives the same intervals.

    Returns
    -------
    ``{"accuracy_a": [lo, hi], "accuracy_b": [lo, hi], "difference": [lo, hi]}``
    with difference = accuracy A - accuracy B.

    Examples
    --------
    >>> ci = bootstrap_intervals({"both_right": 90, "only_a": 5, "only_b": 1, "both_wrong": 4})
    >>> ci["accuracy_a"][0] < 0.95 < ci["accuracy_a"][1]
    True
    """
    if not (isinstance(n_resamples, int) and n_resamples >= 1):
        raise MnistlabError(f"invalid n_resamples={n_resamples!r}: expected an integer >= 1")
    if not 0 < confidence < 1:
        raise MnistlabError(f"invalid confidence={confidence!r}: expected a number in (0, 1)")
    keys = ("both_right", "only_a", "only_b", "both_wrong")
    counts = np.array([table[k] for k in keys], dtype=np.int64)
    n = int(counts.sum())
    if n == 0 or np.any(counts < 0):
        raise MnistlabError(f"the 2x2 table needs counts >= 0 and at least one image, got {table}")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_resamples)  # (R, 4)
    acc_a = (draws[:, 0] + draws[:, 1]) / n
    acc_b = (draws[:, 0] + draws[:, 2]) / n
    # A - B is (only A right - only B right) / N: one division, no float noise.
    diff = (draws[:, 1] - draws[:, 2]) / n
    tail = 100 * (1 - confidence) / 2
    return {
        name: [float(v) for v in np.percentile(values, [tail, 100 - tail])]
        for name, values in (
            ("accuracy_a", acc_a),
            ("accuracy_b", acc_b),
            ("difference", diff),
        )
    }


def compare_predictions(
    y_true: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    *,
    n_resamples: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracies, difference, McNemar p-value and bootstrap intervals of two predictions.

    Parameters
    ----------
    y_true : int (N,), the true labels of the images both sets of predictions are for.
    probs_a, probs_b : float (N, K), each run's predicted probabilities.
    n_resamples : bootstrap resamples.
    seed : bootstrap seed.

    Returns
    -------
    ``{"n", "accuracy_a", "accuracy_b", "difference", "table", "mcnemar_p",
    "ci": {...}, "confidence", "n_resamples", "seed"}``; difference = A - B.
    """
    y_true = np.asarray(y_true)
    probs_a, probs_b = np.asarray(probs_a), np.asarray(probs_b)
    if probs_a.shape != probs_b.shape or probs_a.ndim != 2 or probs_a.shape[0] != len(y_true):
        raise MnistlabError(
            f"predictions do not line up: labels {y_true.shape}, A {probs_a.shape}, "
            f"B {probs_b.shape}; compare runs evaluated on the same test set"
        )
    correct_a = probs_a.argmax(axis=1) == y_true
    correct_b = probs_b.argmax(axis=1) == y_true
    table = contingency(correct_a, correct_b)
    n = len(y_true)
    acc_a, acc_b = float(correct_a.mean()), float(correct_b.mean())
    return {
        "n": n,
        "accuracy_a": acc_a,
        "accuracy_b": acc_b,
        "difference": (table["only_a"] - table["only_b"]) / n,
        "table": table,
        "mcnemar_p": mcnemar_exact(table["only_a"], table["only_b"]),
        "ci": bootstrap_intervals(table, n_resamples=n_resamples, seed=seed),
        "confidence": CONFIDENCE,
        "n_resamples": n_resamples,
        "seed": seed,
    }


# -- runs --------------------------------------------------------------------------------------


def compare_runs(
    run_a: RunDir | str | Path,
    run_b: RunDir | str | Path,
    *,
    runs_dir: str | Path = "runs",
    n_resamples: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two evaluated runs on their (identical) test set.

    Parameters
    ----------
    run_a, run_b : a :class:`RunDir`, path, run name inside ``runs_dir``, or ``"latest"``;
        both evaluated (``mnistlab evaluate``) on the same dataset.
    runs_dir : where run names are looked up.
    n_resamples : bootstrap resamples (default 2000).
    seed : bootstrap seed (default 0).

    Returns
    -------
    :func:`compare_predictions`'s dict plus ``run_a``, ``run_b`` (paths),
    ``model_a``, ``model_b`` and ``dataset``.

    Raises
    ------
    MnistlabError
        If a run is not evaluated, or the runs were trained on different
        datasets or evaluated on different test images.

    Examples
    --------
    >>> result = compare_runs("runs/cnn-run", "runs/fnn-run")  # doctest: +SKIP
    >>> result["difference"], result["mcnemar_p"]  # doctest: +SKIP
    """
    runs = [r if isinstance(r, RunDir) else RunDir.open(r, runs_dir) for r in (run_a, run_b)]
    if runs[0].path.resolve() == runs[1].path.resolve():
        raise MnistlabError(f"both arguments are run {runs[0].path}; compare two different runs")
    configs = [r.config() for r in runs]
    if configs[0].dataset != configs[1].dataset:
        raise MnistlabError(
            f"run {runs[0].name} is on {configs[0].dataset!r} but run {runs[1].name} is on "
            f"{configs[1].dataset!r}; compare runs trained on the same dataset"
        )
    (y_a, probs_a), (y_b, probs_b) = (load_predictions(r) for r in runs)
    if y_a.shape != y_b.shape or not np.array_equal(y_a, y_b):
        raise MnistlabError(
            f"runs {runs[0].name} and {runs[1].name} were evaluated on different test images "
            f"({len(y_a):,} vs {len(y_b):,} labels, not the same); re-run 'mnistlab evaluate' "
            "on both"
        )
    if probs_a.shape != probs_b.shape:
        raise MnistlabError(
            f"runs {runs[0].name} and {runs[1].name} predict different numbers of classes "
            f"({probs_a.shape[1]} vs {probs_b.shape[1]}); they cannot be compared"
        )
    result = compare_predictions(
        y_a.astype(np.int64), probs_a, probs_b, n_resamples=n_resamples, seed=seed
    )
    return {
        "run_a": str(runs[0].path),
        "run_b": str(runs[1].path),
        "model_a": configs[0].model,
        "model_b": configs[1].model,
        "dataset": configs[0].dataset,
        **result,
    }


def format_comparison(result: dict[str, Any]) -> str:
    """Human-readable comparison: accuracies with intervals, the 2x2 table, the verdict.

    Parameters
    ----------
    result : as returned by :func:`compare_runs` or :func:`compare_predictions`.

    Returns
    -------
    Multi-line text (no trailing newline).
    """
    pct = round(100 * result["confidence"])
    ci = result["ci"]
    t = result["table"]
    n = result["n"]
    name_a = f"A {result.get('model_a', '')}".rstrip()
    name_b = f"B {result.get('model_b', '')}".rstrip()
    width = max(len(name_a), len(name_b), len("A - B"))
    lines = []
    if "run_a" in result:
        lines += [f"A  {result['run_a']}", f"B  {result['run_b']}", ""]
    lines.append(f"{'':<{width}}  {'accuracy':>9}  {pct}% bootstrap interval")
    for name, acc, key in (
        (name_a, result["accuracy_a"], "accuracy_a"),
        (name_b, result["accuracy_b"], "accuracy_b"),
    ):
        lines.append(f"{name:<{width}}  {acc:>9.4f}  [{ci[key][0]:.4f}, {ci[key][1]:.4f}]")
    lo, hi = ci["difference"]
    lines.append(f"{'A - B':<{width}}  {result['difference']:>+9.4f}  [{lo:+.4f}, {hi:+.4f}]")
    lines.append("")
    lines.append(
        f"on {n:,} test images: both right {t['both_right']:,}, both wrong "
        f"{t['both_wrong']:,}, only A right {t['only_a']:,}, only B right {t['only_b']:,}"
    )
    p = result["mcnemar_p"]
    lines.append(f"McNemar exact test (two-sided): p = {p:.4g}")
    if p < ALPHA:
        better = "A" if result["difference"] > 0 else "B"
        lines.append(
            f"verdict: the difference is significant at the {ALPHA:g} level; {better} is better"
        )
    else:
        lines.append(
            f"verdict: not significant at the {ALPHA:g} level; these test images cannot "
            "tell the runs apart"
        )
    lines.append(
        f"(bootstrap: {result['n_resamples']:,} paired resamples of the test images, "
        f"seed {result['seed']})"
    )
    return "\n".join(lines)
