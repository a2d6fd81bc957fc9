"""What ensembles of screened jobs make on the shared validation split, by combination rule.

``tools/screen_variants.py`` keeps every job's softmax outputs on its shared,
stratified 10,000-image validation split. This script averages random draws of
distinct jobs (``--members ep30:3,dsk:3``: three jobs of ``ep30`` and three of
``dsk``) and counts the validation errors of each draw under three rules:

- ``mean``: the mean of the members' probabilities (what ``mnistlab ensemble`` does);
- ``logmean``: the mean of their logarithms (a geometric mean);
- ``vote``: the members' majority answer, ties broken by ``mean``.

``--svm`` adds a member of another kind: an RBF support-vector machine on 60
principal components of the deskewed training images of the split (C = 30;
about 15 seconds on 2 cores), its softmax of decision values mixed into
``mean`` with the weights of ``--svm-weights``. The weights are not fitted:
every weight is reported, so the best row is an optimistic estimate.

It imports the installed ``mnistlab`` (``make dev``). The test set is never read.
Examples::

    python tools/ensemble_screen.py screen5.jsonl --members ep30:3 --members ep30:3,b64:3
    python tools/ensemble_screen.py screen5.jsonl --members ep30:3 --svm
"""

from __future__ import annotations

import argparse
import base64
import json
from collections import defaultdict
from collections.abc import Callable

import numpy as np

# The screen's shared split. Python puts a script's own folder (tools/) first on
# sys.path, so its sibling imports as it is; mnistlab is the installed package.
from screen_variants import in_chunks, split

Rule = Callable[[np.ndarray], np.ndarray]


def _vote(stack: np.ndarray) -> np.ndarray:
    votes = np.eye(stack.shape[-1])[stack.argmax(-1)].sum(0)
    return votes + 1e-3 * stack.mean(0)  # a tie goes to the higher mean probability


RULES: dict[str, Rule] = {
    "mean": lambda stack: stack.mean(0),
    "logmean": lambda stack: np.log(np.clip(stack, 1e-7, 1.0)).mean(0),
    "vote": _vote,
}
"""Combination rules: (members, images, classes) probabilities -> (images, classes) scores."""


def decode_probs(text: str, classes: int = 10) -> np.ndarray:
    """A job's probabilities as ``screen_variants.run_job`` stores them (base64 float16)."""
    return np.frombuffer(base64.b64decode(text), "float16").astype("float64").reshape(-1, classes)


def load_jobs(paths: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """``{variant: {job: probabilities}}`` from screen result files (a repeated job counts once)."""
    jobs: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for path in paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                jobs[row["variant"]][row["job"]] = decode_probs(row["probs"])
    return dict(jobs)


def parse_members(spec: str) -> list[tuple[str, int]]:
    """``"ep30:3,dsk:3"`` -> ``[("ep30", 3), ("dsk", 3)]``."""
    members = []
    for part in spec.split(","):
        variant, _, count = part.partition(":")
        if not variant or not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad member spec {part!r}: write VARIANT:COUNT, e.g. ep30:3")
        members.append((variant, int(count)))
    return members


def draw(
    jobs: dict[str, dict[str, np.ndarray]], members: list[tuple[str, int]], rng: np.random.Generator
) -> np.ndarray:
    """One random ensemble: distinct jobs of each variant, stacked (members, images, classes)."""
    stack = []
    for variant, count in members:
        names = sorted(jobs[variant])
        stack += [jobs[variant][names[i]] for i in rng.choice(len(names), count, replace=False)]
    return np.stack(stack)


def errors(scores: np.ndarray, y: np.ndarray) -> int:
    """How many images the highest score gets wrong."""
    return int((scores.argmax(1) != y).sum())


def svm_probabilities() -> np.ndarray:
    """Softmax of a deskewed-PCA RBF SVM's decision values on the split's validation images."""
    from scipy.special import softmax
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    from mnistlab.data import load_mnist
    from mnistlab.models import deskew_images

    ds = load_mnist()
    x = ds.x_train.astype("float32")[..., None] / 255
    x = in_chunks(lambda images: np.asarray(deskew_images(images)), x).reshape(len(x), -1)
    train, val = split(ds.y_train)
    pca = PCA(60, random_state=0).fit(x[train])
    svm = SVC(C=30, gamma="scale").fit(pca.transform(x[train]), ds.y_train[train])
    return softmax(svm.decision_function(pca.transform(x[val])), axis=1)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _weights(text: str) -> list[float]:
    try:
        weights = [float(t) for t in text.split(",")]
    except ValueError:
        weights = []
    if not weights or not all(0 < w < 1 for w in weights):
        raise argparse.ArgumentTypeError(f"{text!r}: give weights between 0 and 1, e.g. 0.05,0.1")
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="result files of tools/screen_variants.py")
    parser.add_argument(
        "--members", action="append", required=True, help="VARIANT:COUNT[,VARIANT:COUNT...]"
    )
    parser.add_argument("--draws", type=_count, default=500, help="random ensembles per line")
    parser.add_argument("--svm", action="store_true", help="also mix in an RBF SVM member")
    parser.add_argument("--svm-weights", type=_weights, default="0.05,0.1,0.2,0.3")
    args = parser.parse_args()
    try:
        jobs = load_jobs(args.files)
    except (OSError, ValueError, KeyError) as e:
        parser.error(f"cannot read the screen results ({e}): give files that screen_variants wrote")
    try:
        specs = [(m, parse_members(m)) for m in args.members]
    except ValueError as e:
        parser.error(str(e))
    for spec, members in specs:
        for variant, count in members:
            if len(jobs.get(variant, {})) < count:
                have = len(jobs.get(variant, {}))
                parser.error(f"{spec}: {variant} has {have} jobs in these files, not {count}")

    from mnistlab.data import load_mnist

    y = load_mnist().y_train.astype("int64")
    y_val = y[split(y)[1]]
    extra = {}
    if args.svm:
        svm = svm_probabilities()
        everyone = np.mean([p for v in jobs.values() for p in v.values()], 0)
        wrong = everyone.argmax(1) != y_val
        print(
            f"svm alone: {errors(svm, y_val)} errors of {len(y_val)}; of the {wrong.sum()} errors"
            f" of all {sum(map(len, jobs.values()))} jobs averaged, it makes"
            f" {(wrong & (svm.argmax(1) != y_val)).sum()}"
        )
        for w in args.svm_weights:
            extra[f"mean + svm {w:g}"] = w
    print(f"{'members':<24} {'rule':<16} mean errors  10th-90th percentile  ({args.draws} draws)")
    for spec, members in specs:
        rng = np.random.default_rng(0)
        counts: dict[str, list[int]] = defaultdict(list)
        for _ in range(args.draws):
            stack = draw(jobs, members, rng)
            for name, rule in RULES.items():
                counts[name].append(errors(rule(stack), y_val))
            for name, w in extra.items():
                counts[name].append(errors((1 - w) * stack.mean(0) + w * svm, y_val))
        for name, c in counts.items():
            lo, hi = np.percentile(c, [10, 90])
            print(f"{spec:<24} {name:<16} {np.mean(c):>11.1f}  {lo:.0f}-{hi:.0f}")


if __name__ == "__main__":
    main()
