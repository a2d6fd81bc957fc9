"""The public API: `import mnistlab` gives the functions, however often they are used."""

import importlib

import mnistlab


def test_stage_functions_stay_functions_after_their_modules_are_imported():
    importlib.import_module("mnistlab.train")
    importlib.import_module("mnistlab.evaluate")
    importlib.import_module("mnistlab.tune")
    for _ in range(2):  # a notebook cell run twice
        assert callable(mnistlab.train) and mnistlab.train.__name__ == "train"
        assert callable(mnistlab.evaluate) and mnistlab.evaluate.__name__ == "evaluate"
        assert callable(mnistlab.tune) and mnistlab.tune.__name__ == "tune"
    from mnistlab.train import make_pipeline  # the submodules stay importable

    assert callable(make_pipeline)


def test_every_public_name_resolves():
    for name in mnistlab.__all__:
        value = getattr(mnistlab, name)
        # The function or class of that name, defined in one of the package's modules.
        assert value.__name__ == name and value.__module__.startswith("mnistlab."), name
