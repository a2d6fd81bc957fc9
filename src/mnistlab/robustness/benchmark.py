"""The robustness benchmark: a run's accuracy on corrupted test digits, two ways.

::

    the run's test images (the first N with ``limit``)
    -> each MNIST-C corruption (mnistlab.robustness.corruptions, seeded)
    -> on arrays:      uint8 / 255 -> the model -> accuracy
    -> through predict: PNG bytes -> mnistlab.predict's preprocessing (as
                        ``mnistlab predict`` does on a file) -> the model -> accuracy
    -> robustness.json (mnistlab.runs), figures/robustness_*.png

"On arrays" measures the model alone, on images already in MNIST form; "through
predict" measures what a user of ``mnistlab predict`` gets, preprocessing
included. An image the preprocessing refuses (no ink found) counts as wrong.

The test set is only measured here: nothing is chosen or fitted on it. A
calibrated run's temperature is applied, which never changes the predicted class.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.data import Dataset
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import run_dataset
from mnistlab.predict import ImageError, Predictor, load_predictor, preprocess_image, to_png
from mnistlab.progress import ProgressLine, format_table, reporter
from mnistlab.robustness.corruptions import corrupt, corruption_names
from mnistlab.robustness.figures import write_figures
from mnistlab.runs import RunDir

EXAMPLES = 8  # digits per corruption in the examples figure


def robustness(
    run: RunDir | str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    through_predict: bool = True,
    runs_dir: str | Path = "runs",
    dataset: Dataset | None = None,
    progress: bool | ProgressLine | None = False,
) -> dict[str, Any]:
    """Measure a finished run under the 15 corruptions of MNIST-C; write robustness.json.

    Parameters
    ----------
    run : a :class:`RunDir`, a run directory path, a run name inside ``runs_dir``,
        or ``"latest"``.
    limit : score the first ``limit`` test images only (all of them if None or
        more than there are).
    seed : seed of the corruptions' random draws (the same seed, the same images).
    through_predict : also measure the whole ``predict`` pipeline on images (about
        10 ms an image); False: on arrays only.
    runs_dir : where run names are looked up.
    dataset : the run's dataset if already loaded; loaded from the cache if None.
    progress : True: a line per corruption on stderr; a callable receives them.

    Returns
    -------
    What ``robustness.json`` holds (:class:`~mnistlab.runs.RobustnessRecord`):
    ``n``, ``seed``, ``clean``, ``corruptions`` (a list in MNIST-C's order of
    ``name``, ``arrays``, ``predict``, ``predict_failed``, ``seconds``), their
    ``mean``, ``figures``, ``model``, ``dataset``, ``run`` and ``seconds``.

    Raises
    ------
    MnistlabError
        A bad ``limit`` or ``seed``, no such run, or a run that did not finish.

    Examples
    --------
    >>> record = robustness("latest", limit=1000)  # doctest: +SKIP
    >>> record["mean"]["arrays"], record["corruptions"][0]  # doctest: +SKIP
    (0.93, {'name': 'shot_noise', 'arrays': 0.98, 'predict': 0.97, ...})
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise MnistlabError(f"invalid limit={limit!r}: expected an integer >= 1 (test images)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MnistlabError(f"invalid seed={seed!r}: expected an integer >= 0")
    run = run if isinstance(run, RunDir) else RunDir.open(run, runs_dir)
    run.require_finished()
    dataset = run_dataset(run, dataset)
    images, labels = dataset.x_test[:limit], dataset.y_test[:limit]
    predictor = load_predictor(run.path)
    say = reporter(progress)
    started = time.perf_counter()

    clean = _score(predictor, images, labels, through_predict)
    say(f"clean: {_describe(clean)}")
    examples = {"clean": images[:EXAMPLES]}
    scores: list[dict[str, Any]] = []
    names = corruption_names()
    for i, name in enumerate(names, 1):
        begun = time.perf_counter()
        corrupted = corrupt(images, name, seed=seed)
        score = {"name": name, **_score(predictor, corrupted, labels, through_predict)}
        score["seconds"] = round(time.perf_counter() - begun, 2)
        scores.append(score)
        examples[name] = corrupted[:EXAMPLES]
        say(f"[{i}/{len(names)}] {name}: {_describe(score)}")

    mean: dict[str, Any] = {"arrays": _mean(s["arrays"] for s in scores)}
    if through_predict:
        mean["predict"] = _mean(s["predict"] for s in scores)
    record: dict[str, Any] = {
        "model": run.config().model,
        "dataset": dataset.name,
        "run": str(run.path),
        "n": int(len(images)),
        "seed": seed,
        "clean": clean,
        "corruptions": scores,
        "mean": mean,
    }
    record["figures"] = write_figures(record, examples, run.path)
    record["seconds"] = round(time.perf_counter() - started, 1)
    run.write_robustness(record)
    return record


def format_robustness(record: dict[str, Any]) -> str:
    """The table ``mnistlab robustness`` prints: accuracy per corruption, clean and mean.

    >>> score = {"arrays": 0.9, "predict": 0.95}
    >>> record = {"n": 200, "seed": 0, "clean": {"arrays": 0.99, "predict": 0.98},
    ...           "corruptions": [{"name": "fog", **score}], "mean": score}
    >>> print(format_robustness(record))
    corruption   on arrays   through predict
    ────────────────────────────────────────
    clean           0.9900            0.9800
    fog             0.9000            0.9500
    mean            0.9000            0.9500
    <BLANKLINE>
    200 test images, seed 0
    """
    rows = [
        ("clean", record["clean"]),
        *[(s["name"], s) for s in record["corruptions"]],
        ("mean", record["mean"]),
    ]
    table = format_table(
        ["corruption", "on arrays", "through predict"],
        [[name, f"{s['arrays']:.4f}", _cell(s.get("predict"))] for name, s in rows],
    )
    return f"{table}\n\n{record['n']:,} test images, seed {record['seed']}"


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _score(
    predictor: Predictor, images: np.ndarray, labels: np.ndarray, through_predict: bool
) -> dict[str, Any]:
    """Accuracy of uint8 (N, 28, 28) images on arrays and, if asked, through predict."""
    probs = predictor.probabilities(images.astype(np.float32) / np.float32(255))
    score: dict[str, Any] = {"arrays": _accuracy(probs.argmax(axis=1) == labels)}
    if through_predict:
        correct, failed = _through_predict(predictor, images, labels)
        score["predict"] = _accuracy(correct)
        score["predict_failed"] = failed
    return score


def _through_predict(
    predictor: Predictor, images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, int]:
    """Which images ``mnistlab predict`` gets right, given each as a PNG file's bytes."""
    prepared = np.zeros((len(images), 28, 28), np.float32)
    readable = np.ones(len(images), bool)
    for i, image in enumerate(images):
        try:
            prepared[i] = preprocess_image(to_png(image / 255)).image
        except ImageError:  # e.g. no ink found: predict reports an error, not a digit
            readable[i] = False
    predicted = predictor.probabilities(prepared).argmax(axis=1)
    return readable & (predicted == labels), int((~readable).sum())


def _accuracy(correct: np.ndarray) -> float:
    return round(float(np.mean(correct)), 6)


def _mean(values: Any) -> float:
    return round(float(np.mean(list(values))), 6)


def _describe(score: dict[str, Any]) -> str:
    text = f"arrays {score['arrays']:.4f}"
    if "predict" in score:
        text += f", predict {score['predict']:.4f}"
    if "seconds" in score:
        text += f" ({score['seconds']:.1f} s)"
    return text
