"""Stratified K-fold cross-validation on the training images.

How much of a model's accuracy is the model, and how much the luck of one
split? Train it K times, each time holding out a different fifth (or K-th)::

    the 60,000 training images (or a stratified subset: limit)
    -> StratifiedKFold(K, shuffle=True, random_state=seed): K held-out folds
       with the class proportions of the whole
    -> per fold: train() on the other K-1 folds, early stopping on a validation
       split carved from those folds only; evaluate() on the held-out fold
    -> <out>/fold_<i>.json (atomic) the moment fold i finishes
    -> mean and standard deviation of accuracy and macro-F1 over the folds

The test set is not used at all: each fold is scored on its held-out fold.

Layout of ``<out>``::

    plan.json          what this cross-validation is: config, folds, seed, images
    fold_<i>.json      result of fold i (1..K): accuracy, macro-F1, sizes, held-out indices
    folds/fold_<i>/    the fold's run directory (config.json, model.keras, metrics.json, ...)
    summary.json       per fold and mean/std (also summary.csv and summary.md)
    cv.png             accuracy and macro-F1 per fold with the mean +- std band

Running the same cross-validation again resumes it: folds whose
``fold_<i>.json`` exists are not trained again, a fold that was interrupted
is trained from the start. Folds can train in parallel processes
(``workers``); each process gets an equal share of the CPU cores.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.data import Dataset, load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import build_model
from mnistlab.runs import CV_FOLD_SOURCE

PLAN_FILE = "plan.json"
SUMMARY_FILES = ("summary.json", "summary.csv", "summary.md", "cv.png")

# Standard deviations over folds are sample standard deviations (ddof=1):
# the folds are a sample of the splits the model could have been trained on.
STD_DDOF = 1


# -- splitting (pure) --------------------------------------------------------------------------


def fold_indices(y: np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """The held-out indices of each fold of a stratified, shuffled K-fold split.

    Parameters
    ----------
    y : int (N,), class labels; every fold keeps their proportions.
    folds : K >= 2; every class needs at least K images.
    seed : ``random_state`` of scikit-learn's ``StratifiedKFold(shuffle=True)``.

    Returns
    -------
    K sorted int arrays, disjoint, together covering ``0 .. N-1``.

    Examples
    --------
    >>> parts = fold_indices(np.array([0, 1] * 5), folds=5)
    >>> [len(p) for p in parts]
    [2, 2, 2, 2, 2]
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    if not (isinstance(folds, int | np.integer) and folds >= 2):
        raise MnistlabError(f"invalid folds={folds!r}: expected an integer >= 2")
    present = np.bincount(y) if len(y) else np.zeros(1, dtype=int)
    smallest = int(present[present > 0].min()) if present.any() else 0
    if smallest < folds:
        raise MnistlabError(
            f"cannot make {folds} stratified folds: the smallest class has only {smallest} "
            "images; use fewer folds or more images"
        )
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    return [np.sort(held) for _, held in splitter.split(np.zeros(len(y)), y)]


def subset_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A stratified, seeded subset of ``n`` of the images (for quick trials).

    Parameters
    ----------
    y : int (N,), class labels.
    n : subset size, ``1 <= n <= N``; ``n == N`` returns every index.
    seed : the same seed picks the same images.

    Returns
    -------
    Sorted int (n,) indices into ``y``.
    """
    y = np.asarray(y)
    if not (isinstance(n, int | np.integer) and 1 <= n <= len(y)):
        raise MnistlabError(f"invalid limit={n!r}: expected 1 to {len(y):,} images")
    if n == len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    try:
        chosen, _ = train_test_split(
            np.arange(len(y)), train_size=int(n), random_state=seed, stratify=y
        )
    except ValueError as err:
        raise MnistlabError(f"cannot draw a stratified subset of {n} images: {err}") from err
    return np.sort(chosen)


# -- one fold ------------------------------------------------------------------------------------

# Set in each worker process by _init_worker: the images and labels of the
# cross-validation, so tasks carry only indices.
_WORKER: dict[str, Any] = {}


def _init_worker(data: dict[str, Any], threads: int) -> None:
    # A fresh (spawned) process: TensorFlow's thread pools are not created yet,
    # so this caps them before the first op and the workers share the cores.
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads // 2))
    _WORKER.update(data)


def _fold_path(out: Path, fold: int) -> Path:
    return out / f"fold_{fold}.json"


def _run_fold(
    fold: int,
    train_index: np.ndarray,
    heldout_index: np.ndarray,
    config_dict: dict[str, Any],
    out: str,
    verbose: int | str,
) -> dict[str, Any]:
    """Train on ``train_index``, score on ``heldout_index``; write ``fold_<fold>.json``."""
    import keras

    from mnistlab.evaluate import evaluate
    from mnistlab.train import train

    data = _WORKER
    out_dir = Path(out)
    config = TrainConfig.from_dict(config_dict)
    folds = data["folds"]
    # The fold's own Dataset: its "training set" is the K-1 training folds (train()
    # carves the validation split from these only), its "test set" the held-out fold.
    x, y = data["x"], data["y"]
    fold_data = Dataset(
        name=data["name"],
        x_train=x[train_index],
        y_train=y[train_index],
        x_test=x[heldout_index],
        y_test=y[heldout_index],
        source=f"{CV_FOLD_SOURCE} {fold}/{folds} of {data['source']}",
        cache_path=data["cache_path"],
        class_names=data["class_names"],
    )
    runs_dir = out_dir / "folds"
    stale = runs_dir / f"fold_{fold}"
    if stale.exists():  # an interrupted earlier attempt at this fold: start it again
        shutil.rmtree(stale)
    run = train(
        config, runs_dir=runs_dir, dataset=fold_data, verbose=verbose, run_name=f"fold_{fold}"
    )
    metrics = evaluate(run, dataset=fold_data)
    state = run.state()
    k = len(data["class_names"])
    record = {
        "fold": fold,
        "folds": folds,
        "n_train": int(len(train_index) - config.val_size),
        "n_val": int(config.val_size),
        "n_heldout": int(len(heldout_index)),
        "accuracy": metrics["test_accuracy"],
        "macro_f1": metrics["macro_avg"]["f1"],
        "loss": metrics["test_loss"],
        "epochs_run": state["epochs_run"],
        "best_epoch": state.get("best_epoch"),
        "best_val_accuracy": state.get("best_val_accuracy"),
        "train_seconds": state["train_seconds"],
        "heldout_class_counts": np.bincount(y[heldout_index], minlength=k).tolist(),
        # Indices into the dataset's training images (not into a subset), so a fold
        # can be looked up in the original data.
        "heldout_indices": data["original_index"][heldout_index].tolist(),
        "run": str(run.path),
        "finished": time.time(),
    }
    files.write_json(_fold_path(out_dir, fold), record)
    keras.backend.clear_session()  # free this fold's graph before the next one
    return record


def _read_fold(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
        float(record["accuracy"]), float(record["macro_f1"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, or not a finished fold: (re)train it
    return record


# -- the whole cross-validation ------------------------------------------------------------------


def cross_validate(
    config: TrainConfig,
    folds: int = 5,
    *,
    out: str | Path,
    workers: int = 1,
    dataset: Dataset | None = None,
    limit: int | None = None,
    verbose: int | str = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Stratified K-fold cross-validation of one training recipe; resumable.

    Parameters
    ----------
    config : the recipe every fold trains with (``make_config(...)``); its
        ``seed`` also seeds the fold split and ``val_size`` is the validation
        split carved from each fold's training images.
    folds : K >= 2.
    out : directory for the results (layout in the module docstring). Running
        again with the same settings resumes; different settings are refused.
    workers : folds trained at the same time, each in its own process.
    dataset : the data if already loaded (must be ``config.dataset``); loaded if None.
    limit : use a stratified subset of this many training images (quick trials);
        all 60,000 if None.
    verbose : Keras verbosity of each fold's training (only with ``workers=1``).
    progress : called with one line of text as each fold starts, is skipped or ends.

    Returns
    -------
    The summary written to ``summary.json``: ``per_fold`` records and
    ``accuracy`` / ``macro_f1`` as ``{"mean", "std", "min", "max"}`` (std over
    folds, ddof=1).

    Examples
    --------
    >>> summary = cross_validate(make_config("fnn"), folds=5, out="cv/fnn")
    >>> summary["accuracy"]["mean"], summary["accuracy"]["std"]
    """
    say = progress or (lambda line: None)
    if not (isinstance(folds, int) and folds >= 2):
        raise MnistlabError(f"invalid folds={folds!r}: expected an integer >= 2")
    if not (isinstance(workers, int) and workers >= 1):
        raise MnistlabError(f"invalid workers={workers!r}: expected an integer >= 1")
    out = Path(out)
    if dataset is None:
        dataset = load_dataset(config.dataset)
    elif dataset.name != config.dataset:
        raise MnistlabError(
            f"the config is for {config.dataset!r} but the dataset passed is {dataset.name!r}; "
            "pass the matching dataset or none"
        )

    index = (
        np.arange(len(dataset.y_train))
        if limit is None
        else subset_indices(dataset.y_train, limit, seed=config.seed)
    )
    y = dataset.y_train[index]
    parts = fold_indices(y, folds, seed=config.seed)
    smallest_train = len(y) - max(len(p) for p in parts)
    if not config.val_size < smallest_train // 2:
        raise MnistlabError(
            f"val_size={config.val_size} is too large for folds with {smallest_train:,} "
            f"training images; pass a val_size below {smallest_train // 2:,} (--val-size)"
        )

    # Settings the model refuses (-p width=0, ...) fail here, before plan.json pins them.
    build_model(config.model, **config.params)
    _check_plan(out, config, folds, limit, len(y), dataset.name)
    done: dict[int, dict[str, Any]] = {}
    for fold in range(1, folds + 1):
        record = _read_fold(_fold_path(out, fold))
        if record is not None:
            done[fold] = record
            say(
                f"fold {fold}/{folds}: finished earlier (accuracy {record['accuracy']:.4f}), "
                "not trained again"
            )
    todo = [f for f in range(1, folds + 1) if f not in done]

    data = {
        "name": dataset.name,
        "x": dataset.x_train[index],
        "y": y,
        "original_index": index,
        "source": dataset.source,
        "cache_path": dataset.cache_path,
        "class_names": dataset.class_names,
        "folds": folds,
    }
    everything = np.arange(len(y))

    def task(fold: int) -> tuple:
        held = parts[fold - 1]
        return (fold, np.setdiff1d(everything, held), held, config.to_dict(), str(out))

    def report(record: dict[str, Any]) -> None:
        say(
            f"fold {record['fold']}/{folds}: accuracy {record['accuracy']:.4f}, macro-F1 "
            f"{record['macro_f1']:.4f} ({record['epochs_run']} epoch(s), "
            f"{record['train_seconds']:.1f} s)"
        )

    workers = min(workers, max(len(todo), 1))
    if todo and workers == 1:
        _WORKER.clear()
        _WORKER.update(data)
        try:
            for fold in todo:
                n_rest = len(y) - len(parts[fold - 1])
                say(
                    f"fold {fold}/{folds}: training on {n_rest - config.val_size:,} images, "
                    f"validating on {config.val_size:,}"
                )
                record = _run_fold(*task(fold), verbose)
                done[fold] = record
                report(record)
        finally:
            _WORKER.clear()
    elif todo:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // workers)
        say(
            f"training folds {', '.join(map(str, todo))} in {workers} processes "
            f"({threads} TensorFlow thread(s) each)"
        )
        # spawn, not fork: a forked TensorFlow runtime can deadlock.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(data, threads),
        ) as pool:
            futures = [pool.submit(_run_fold, *task(fold), 0) for fold in todo]
            try:
                for future in futures:
                    record = future.result()
                    done[record["fold"]] = record
                    report(record)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    summary = summarise(
        [done[f] for f in range(1, folds + 1)],
        config=config,
        dataset=dataset.name,
        n_images=len(y),
    )
    write_summary(summary, out)
    return summary


def _check_plan(
    out: Path, config: TrainConfig, folds: int, limit: int | None, n_images: int, dataset: str
) -> None:
    # plan.json pins what the fold files in `out` belong to; resuming with another
    # recipe would silently mix two experiments in one mean.
    plan = {
        "config": config.to_dict(),
        "folds": folds,
        "seed": config.seed,
        "limit": limit,
        "n_images": n_images,
        "dataset": dataset,
        "splitter": "sklearn.model_selection.StratifiedKFold(shuffle=True)",
    }
    path = out / PLAN_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        # Round-trip through JSON so tuples and lists compare equal.
        new = json.loads(json.dumps(plan))
        if old != new:
            old = old if isinstance(old, dict) else {}
            differ = [k for k in new if k != "config" and old.get(k) != new[k]]
            old_config = old.get("config") if isinstance(old.get("config"), dict) else {}
            differ += [
                f"{k} {old_config.get(k)!r} -> {v!r}"
                for k, v in new["config"].items()
                if old_config.get(k) != v
            ]
            raise MnistlabError(
                f"{out} holds a cross-validation with other settings ({', '.join(differ)}); "
                "pass another --out, or delete it to start again"
            )
        return
    files.write_json(path, plan)


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=STD_DDOF)) if len(v) > STD_DDOF else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
    }


SUMMARY_COLUMNS = (
    "fold",
    "n_train",
    "n_val",
    "n_heldout",
    "epochs_run",
    "best_epoch",
    "accuracy",
    "macro_f1",
    "loss",
    "train_seconds",
)


def summarise(
    records: Sequence[dict[str, Any]], *, config: TrainConfig, dataset: str, n_images: int
) -> dict[str, Any]:
    """Per-fold rows and mean/std/min/max of accuracy and macro-F1.

    Parameters
    ----------
    records : the ``fold_<i>.json`` records, in fold order.
    config : the recipe the folds trained with.
    dataset : dataset name.
    n_images : training images cross-validated.

    Returns
    -------
    The summary dict (``summary.json``).
    """
    return {
        "model": config.model,
        "dataset": dataset,
        "folds": len(records),
        "seed": config.seed,
        "n_images": n_images,
        "config": config.to_dict(),
        "per_fold": [{k: r[k] for k in SUMMARY_COLUMNS} for r in records],
        "accuracy": _stats([r["accuracy"] for r in records]),
        "macro_f1": _stats([r["macro_f1"] for r in records]),
        "std_ddof": STD_DDOF,
        "train_seconds": float(sum(r["train_seconds"] for r in records)),
    }


def format_summary(summary: dict[str, Any], markdown: bool = False) -> str:
    """The per-fold table and the mean +- std line, as text or a Markdown table.

    Parameters
    ----------
    summary : as returned by :func:`cross_validate`.
    markdown : a GitHub-flavoured Markdown table instead of aligned text.

    Returns
    -------
    Multi-line text (no trailing newline).
    """
    acc, f1 = summary["accuracy"], summary["macro_f1"]
    head = (
        f"{summary['folds']}-fold stratified cross-validation of {summary['model']} on "
        f"{summary['n_images']:,} {summary['dataset']} training images (seed {summary['seed']})"
    )
    cols = ["fold", "train", "val", "held-out", "epochs", "accuracy", "macro-F1", "seconds"]
    rows = [
        [
            str(r["fold"]),
            f"{r['n_train']:,}",
            f"{r['n_val']:,}",
            f"{r['n_heldout']:,}",
            str(r["epochs_run"]),
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            f"{r['train_seconds']:.1f}",
        ]
        for r in summary["per_fold"]
    ]
    mean = [
        "mean ± std",
        "",
        "",
        "",
        "",
        f"{acc['mean']:.4f} ± {acc['std']:.4f}",
        f"{f1['mean']:.4f} ± {f1['std']:.4f}",
        f"{summary['train_seconds']:.1f}",
    ]
    if markdown:
        align = ["---:" if i else "---" for i in range(len(cols))]
        lines = [head, "", "| " + " | ".join(cols) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("| **" + mean[0] + "** | " + " | ".join(mean[1:]) + " |")
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    widths[0] = max(widths[0], 4)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [head, "", line(cols), "-" * len(line(cols)), *(line(r) for r in rows)]
    lines.append("-" * len(line(cols)))
    lines.append(
        f"accuracy  {acc['mean']:.4f} ± {acc['std']:.4f}  (min {acc['min']:.4f}, "
        f"max {acc['max']:.4f})"
    )
    lines.append(
        f"macro-F1  {f1['mean']:.4f} ± {f1['std']:.4f}  (min {f1['min']:.4f}, max {f1['max']:.4f})"
    )
    lines.append(f"(± is the sample standard deviation over the {summary['folds']} folds)")
    return "\n".join(lines)


def write_summary(summary: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write summary.json, summary.csv, summary.md and cv.png into ``out``.

    Parameters
    ----------
    summary : as returned by :func:`summarise`.
    out : the cross-validation directory.

    Returns
    -------
    The four paths by file name.
    """
    out = Path(out)
    paths = {name: out / name for name in SUMMARY_FILES}
    files.write_json(paths["summary.json"], summary)

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(SUMMARY_COLUMNS)
    for r in summary["per_fold"]:
        writer.writerow([r[k] for k in SUMMARY_COLUMNS])
    for stat in ("mean", "std"):
        row = [""] * len(SUMMARY_COLUMNS)
        row[0] = stat
        row[SUMMARY_COLUMNS.index("accuracy")] = summary["accuracy"][stat]
        row[SUMMARY_COLUMNS.index("macro_f1")] = summary["macro_f1"][stat]
        writer.writerow(row)
    files.write_text(paths["summary.csv"], buf.getvalue())
    files.write_text(paths["summary.md"], format_summary(summary, markdown=True) + "\n")
    plot_summary(summary, paths["cv.png"])
    return paths


def plot_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Accuracy and macro-F1 of every fold, with each metric's mean and +- 1 std band.

    Parameters
    ----------
    summary : as returned by :func:`summarise`.
    path : PNG file to write.

    Returns
    -------
    ``path`` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    folds = [r["fold"] for r in summary["per_fold"]]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    try:
        for key, label, color, shift in (
            ("accuracy", "accuracy", "#1f77b4", -0.08),
            ("macro_f1", "macro-F1", "#ff7f0e", 0.08),
        ):
            values = [r[key] for r in summary["per_fold"]]
            stats = summary[key]
            ax.plot(
                np.array(folds) + shift,
                values,
                "o",
                color=color,
                ms=7,
                label=f"{label}: {stats['mean']:.4f} ± {stats['std']:.4f}",
            )
            ax.axhline(stats["mean"], color=color, lw=1.2)
            ax.axhspan(
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=color,
                alpha=0.12,
                lw=0,
            )
        ax.set_xticks(folds)
        ax.set_xlabel("held-out fold")
        ax.set_ylabel("score on the held-out fold")
        ax.set_title(
            f"{summary['folds']}-fold cross-validation of {summary['model']} "
            f"({summary['n_images']:,} images): mean ± std"
        )
        ax.grid(alpha=0.3)
        # Below the axes, so it never hides a fold.
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False
        )
        fig.tight_layout()
        with files.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(
                tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None}
            )
    finally:
        plt.close(fig)
    return Path(path)
