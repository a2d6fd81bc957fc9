"""Abstention through ``mnistlab predict`` on image files (issue 25's acceptance measurement).

Writes two folders, then predicts every file in them exactly as ``mnistlab predict RUN
FOLDER`` does (the same :func:`mnistlab.predict.predict_files` on the run's predictor)::

    OUT/not-digits/<kind>/*.png   test not-digits (letters, symbols, doodles, scribbles;
                                  test fonts and test seeds, never used to train or choose),
                                  as ``mnistlab ood RUN --write-samples`` writes them
    OUT/mnist-test/<digit>/*.png  random MNIST test digits, drawn the same way (dark ink
                                  on white paper, 112 px)

and prints the share abstained on per kind, and the accuracy of the digits answered.
The same numbers with the CLI::

    mnistlab predict RUN OUT/not-digits --json
    mnistlab predict RUN OUT/mnist-test --json

Usage::

    .venv/bin/python tools/abstention_folders.py runs/latest [--out DIR] [--digits 1000]
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from mnistlab.data import load_mnist
from mnistlab.predict import load_predictor, predict_files, summarise
from mnistlab.trust.benchmark import write_samples


def write_digits(directory: Path, n: int, seed: int = 0) -> None:
    """``n`` random MNIST test digits as 112 px PNG files under ``directory/<label>/``."""
    data = load_mnist()
    pick = np.random.default_rng(seed).choice(len(data.x_test), size=n, replace=False)
    for i in pick:
        folder = directory / str(int(data.y_test[i]))
        folder.mkdir(parents=True, exist_ok=True)
        paper = Image.fromarray(255 - data.x_test[i])
        buffer = io.BytesIO()
        paper.resize((112, 112), Image.Resampling.NEAREST).save(buffer, format="PNG")
        (folder / f"test-{i:05d}.png").write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--out", type=Path, default=Path("abstention-folders"))
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--per-kind", type=int, default=100)
    args = parser.parse_args()
    not_digits, digits = args.out / "not-digits", args.out / "mnist-test"
    if not not_digits.exists():
        write_samples(not_digits, n=args.per_kind)
    if not digits.exists():
        write_digits(digits, args.digits)
    predictor = load_predictor(args.run)
    report: dict[str, object] = {"run": args.run}
    for kind in sorted(p.name for p in not_digits.iterdir()):
        results = list(predict_files(predictor, [not_digits / kind]))
        report[kind] = summarise(results)["abstained"] / len(results)
    folder = list(predict_files(predictor, [not_digits]))
    report["not-digits"] = summarise(folder)
    report["not-digits abstained"] = summarise(folder)["abstained"] / len(folder)
    results = list(predict_files(predictor, [digits]))
    report["mnist-test"] = summarise(results)
    report["mnist-test abstained"] = summarise(results)["abstained"] / len(results)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
