"""mnistlab: train, understand, compare and use MNIST digit classifiers.

The pipeline flows one way, one module per stage::

    data -> models -> train -> evaluate -> report

>>> import mnistlab
>>> data = mnistlab.load_mnist()
>>> run = mnistlab.train(mnistlab.make_config("fnn", epochs=5))
>>> metrics = mnistlab.evaluate(run)

Heavy modules (TensorFlow) load on first use, so ``import mnistlab`` is quick.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "MnistlabError": "errors",
    "TrainConfig": "config",
    "make_config": "config",
    "Dataset": "data",
    "load_dataset": "data",
    "load_mnist": "data",
    "train_val_split": "data",
    "build_model": "models",
    "list_models": "models",
    "RunDir": "runs",
    "train": "train",
    "evaluate": "evaluate",
    "write_report": "report",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f"mnistlab.{_API[name]}"), name)
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
