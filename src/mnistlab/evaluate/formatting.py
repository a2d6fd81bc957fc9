"""Text for the CLI: metrics and a calibration as aligned tables.

Each function takes the dict a stage returns (and writes: ``metrics.json``,
``calibration.json``) and gives multi-line text with no trailing newline;
the numbers are never recomputed here. (A comparison's text is
:func:`~.compare.format_comparison`, beside the statistics it reports.)
"""

from __future__ import annotations

from typing import Any

from mnistlab.evaluate.calibration import N_BINS


def format_metrics(metrics: dict[str, Any]) -> str:
    """Human-readable summary of a metrics dict: headline, per-class table, confusion matrix.

    Parameters
    ----------
    metrics : as returned by :func:`evaluate` or :func:`metrics_from_probs`.

    Returns
    -------
    Multi-line text (no trailing newline).

    Examples
    --------
    >>> import numpy as np
    >>> from mnistlab.evaluate import metrics_from_probs
    >>> m = metrics_from_probs(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    >>> print(format_metrics(m).splitlines()[0])
    test accuracy  1.0000  (0 errors in 2 images)
    """
    names = [str(c) for c in metrics["class_names"]]
    lines = []
    if "model" in metrics:
        lines.append(f"run            {metrics['run']}")
        lines.append(f"model          {metrics['model']} on {metrics['dataset']}")
    lines.append(
        f"test accuracy  {metrics['test_accuracy']:.4f}  "
        f"({metrics['n_errors']:,} errors in {metrics['n_test']:,} images)"
    )
    lines.append(f"test loss      {metrics['test_loss']:.4f}  (mean cross-entropy)")
    # Absent from metrics.json files written before these were added.
    for key, title in (("roc_auc", "ROC-AUC"), ("average_precision", "avg precision")):
        if isinstance(metrics.get(key), dict):
            lines.append(
                f"{title:<14} {_num(metrics[key]['macro'])}  macro, "
                f"{_num(metrics[key]['micro'])}  micro  (one-vs-rest)"
            )
    if metrics.get("ece") is not None:
        lines.append(
            f"ECE            {metrics['ece']:.4f}  "
            f"({metrics.get('ece_bins', N_BINS)} equal-width confidence bins)"
        )
    if isinstance(metrics.get("members"), dict):
        lines += format_members(metrics["members"], metrics["n_errors"])
    lines.append("")

    # Per-class table, scikit-learn's classification_report layout.
    width = max(12, *(len(n) for n in names))  # 12 = len("weighted avg")
    header = f"{'class':<{width}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"
    lines += [header, "-" * len(header)]
    for row in metrics["per_class"]:
        lines.append(
            f"{row['label']:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  "
            f"{row['f1']:>6.4f}  {row['support']:>7,}"
        )
    lines.append("-" * len(header))
    for key, title in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        avg = metrics[key]
        lines.append(
            f"{title:<{width}}  {avg['precision']:>9.4f}  {avg['recall']:>6.4f}  "
            f"{avg['f1']:>6.4f}  {metrics['n_test']:>7,}"
        )
    lines.append("")
    lines += _format_confusion(metrics["confusion_matrix"], names)
    return "\n".join(lines)


def format_members(members: dict[str, Any], ensemble_errors: int) -> list[str]:
    """Two lines on an ensemble's members (``metrics["members"]``, from
    :func:`mnistlab.analysis.member_overlap`): their errors, and how they overlap."""
    errors = ", ".join(f"{e:,}" for e in members["n_errors"])
    return [
        f"members        {members['n_members']} runs with {errors} errors "
        f"(mean {members['mean_member_errors']:.1f}); the ensemble {ensemble_errors:,}",
        f"               images wrong in every member {members['wrong_in_all']:,}, "
        f"in a majority {members['wrong_in_majority']:,}, in at least one "
        f"{members['wrong_in_any']:,}; "
        f"averaging fixed {members['fixed']:,} and missed {members['missed']:,}",
    ]


def _num(value: float | None) -> str:
    # Six decimals: a good convnet's ROC-AUC is 0.99998, which four would round to 1.
    return "    —   " if value is None else f"{value:.6f}"


def _format_confusion(cm: list[list[int]], names: list[str]) -> list[str]:
    # Columns are labelled by index: long names ("Ankle boot") would make the
    # matrix too wide for a terminal. Rows show the index and the name.
    k = len(names)
    cell = max(4, len(f"{max(max(r) for r in cm):,}"))
    show_names = any(name != str(i) for i, name in enumerate(names))
    row_label = [f"{i} {names[i]}" if show_names else str(i) for i in range(k)]
    lw = max(len("true"), *(len(s) for s in row_label))
    lines = ["confusion matrix (rows: true class, columns: predicted class)"]
    lines.append(f"{'true':<{lw}} " + "".join(f"{j:>{cell + 1}}" for j in range(k)))
    for i in range(k):
        lines.append(f"{row_label[i]:<{lw}} " + "".join(f"{v:>{cell + 1},}" for v in cm[i]))
    return lines


def format_calibration(record: dict[str, Any]) -> str:
    """Human-readable summary of a :func:`calibrate` result.

    Parameters
    ----------
    record : as returned by :func:`calibrate` (the content of ``calibration.json``).

    Returns
    -------
    Multi-line text (no trailing newline): the temperature, then ECE and NLL
    before and after scaling on the validation and test images.
    """
    lines = [
        f"run          {record.get('run', '')}",
        f"temperature  {record['temperature']:.4f}  (fitted on {record['n_fit']:,} "
        "validation images; > 1: the model was over-confident, < 1: under-confident)",
        "",
        f"{'':<16}{'before':>9}{'after':>9}",
    ]
    if record.get("method") == "vector":
        lines[1] = f"method       vector scaling (fitted on {record['n_fit']:,} validation images)"
    for split in ("validation", "test"):
        if split not in record:  # calibrated before the run was evaluated: no test numbers
            continue
        for key, title in (("ece", "ECE"), ("nll", "NLL")):
            before, after = record[split][key + "_before"], record[split][key + "_after"]
            lines.append(f"{split + ' ' + title:<16}{before:>9.4f}{after:>9.4f}")
    lines.append("")
    lines.append(
        f"ECE: expected calibration error, {record['ece_bins']} equal-width confidence bins; "
        "NLL: mean negative log-likelihood (nats)"
    )
    lines.append("accuracy is unchanged: scaling by a temperature keeps every prediction's argmax")
    return "\n".join(lines)
