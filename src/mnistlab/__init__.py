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
import sys
import types
from typing import Any

from mnistlab import _tf_startup

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_tf_startup.install()  # and what that setting does not silence (see the module)

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
    "TrainingInterrupted": "train",
    "evaluate": "evaluate",
    "write_report": "report",
    "tune": "tune",
    "TuneResult": "tune",
    "calibrate": "evaluate",
    "cross_validate": "cv",
    "compare_runs": "compare",
    "preprocess_image": "preprocess",
    "load_predictor": "predict",
    "predict_files": "predict",
    "export_model": "export",
    "create_app": "serve",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f"mnistlab.{_API[name]}"), name)
        globals()[name] = value  # cache: later lookups skip this function
        return value
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keeps ``mnistlab.train`` (and evaluate, tune) the function, not the submodule.

    Importing a submodule sets it as an attribute of its package, which would
    replace a function of the same name (``mnistlab.train`` the function by
    ``mnistlab.train`` the module) as soon as anything imports that module.
    The submodules stay importable as usual (``from mnistlab.train import ...``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if _API.get(name) == name and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
