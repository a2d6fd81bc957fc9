"""Training and scoring the folds of one cross-validation; resuming an interrupted one.

The layout of the output directory is in the package docstring (:mod:`mnistlab.cv`).
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig
from mnistlab.cv.folds import fold_indices, subset_indices
from mnistlab.cv.summary import summarise, write_summary
from mnistlab.data import Dataset, load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import build_model
from mnistlab.progress import ProgressLine, reporter
from mnistlab.runtime import configure_threads, threads_per_worker

PLAN_FILE = "plan.json"

# -- one fold ------------------------------------------------------------------------------------

# Set in each worker process by _init_worker: the images and labels of the
# cross-validation, so tasks carry only indices.
_WORKER: dict[str, Any] = {}


def _init_worker(data: dict[str, Any], threads: int) -> None:
    # A fresh (spawned) process: TensorFlow's thread pools are not created yet,
    # so this caps them before the first op and the workers share the cores.
    configure_threads(threads)
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
        source=f"cross-validation fold {fold}/{folds} of {data['source']}",
        cache_path=data["cache_path"],
        class_names=data["class_names"],
    )
    runs_dir = out_dir / "folds"
    stale = runs_dir / f"fold_{fold}"
    if stale.exists():  # an interrupted earlier attempt at this fold: start it again
        shutil.rmtree(stale)
    run = train(
        config,
        runs_dir=runs_dir,
        dataset=fold_data,
        verbose=verbose,
        run_name=f"fold_{fold}",
        kind="cv-fold",  # run.json says what this run is; evaluate and report read it
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
    progress: bool | ProgressLine | None = None,
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
    progress : where a line goes as each fold starts, is skipped or ends: ``True``
        stderr (:mod:`mnistlab.progress`), a callable receives each line, None: nowhere.

    Returns
    -------
    The summary written to ``summary.json``: ``per_fold`` records and
    ``accuracy`` / ``macro_f1`` as ``{"mean", "std", "min", "max"}`` (std over
    folds, ddof=1).

    Examples
    --------
    >>> summary = cross_validate(make_config("fnn"), folds=5, out="cv/fnn")  # doctest: +SKIP
    >>> summary["accuracy"]["mean"], summary["accuracy"]["std"]  # doctest: +SKIP
    """
    say = reporter(progress)
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

    def task(fold: int) -> tuple[int, np.ndarray, np.ndarray, dict[str, Any], str]:
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

        threads = threads_per_worker(workers)
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
        old: Any
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
