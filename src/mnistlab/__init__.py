"""mnistlab: train, understand, compare and use MNIST digit classifiers.

The pipeline flows one way, one package per stage (docs/architecture.md)::

    data -> models -> train -> evaluate -> report

>>> import mnistlab
>>> data = mnistlab.load_mnist()
>>> run = mnistlab.train(mnistlab.make_config("fnn", epochs=5))  # doctest: +SKIP
>>> metrics = mnistlab.evaluate(run)  # doctest: +SKIP

Heavy modules (TensorFlow) load on first use, so ``import mnistlab`` is quick.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from mnistlab import runtime

# Before anything imports TensorFlow or Keras: quiet C++ logs and the TensorFlow backend,
# where the user has not chosen otherwise. Nothing else is set up at import: the CLI
# installs the filter for TensorFlow's start-up lines (runtime.install_startup_filter).
runtime.set_environment_defaults()

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
    "robustness": "robustness",
    "compare_runs": "evaluate",
    "preprocess_image": "predict",
    "load_predictor": "predict",
    "predict_files": "predict",
    "export_model": "predict",
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
