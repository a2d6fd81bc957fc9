"""notebooks/walkthrough.ipynb, executed top to bottom the way a reader runs it.

The notebook trains two real models on the full MNIST training set (fnn for 5
epochs, cnn-fast with its own short recipe), so executing it is one slow test
module: the notebook runs once, in a kernel started from this interpreter (the
project's virtual environment), and the tests below read its outputs. A cell
that raises fails the fixture and with it every test here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from mnistlab.data import Dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
KERNEL = "mnistlab-test"
CELL_TIMEOUT_S = 900  # the CNN's training cell on a busy 2-core CI machine
README_TAG = "readme:"  # cells whose figure is exported to docs/ for the README


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def _pngs(cell: nbformat.NotebookNode) -> list[bytes]:
    return [
        base64.b64decode(out.data["image/png"])
        for out in cell.get("outputs", [])
        if out.output_type in ("execute_result", "display_data") and "image/png" in out.data
    ]


def _png_size(png: bytes) -> tuple[int, int]:
    # PNG signature, then the IHDR chunk: length, b"IHDR", width, height (big-endian).
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


# -- the committed file (quick) ---------------------------------------------------------


def test_committed_notebook_is_valid_and_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = _code_cells(nb)
    assert len(code) >= 20
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} has stored outputs; clear them before committing"
        assert cell.execution_count is None, f"code cell {i} has an execution count"


def test_committed_notebook_uses_the_library_not_copies_of_it() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in _code_cells(nb))
    # The notebook drives the public API; it neither defines library-like functions
    # nor builds Keras models or fits them itself.
    assert not re.search(r"^\s*(def|class) ", source, re.MULTILINE)
    for fragment in ("keras.", ".fit(", "import tensorflow", "sklearn"):
        assert fragment not in source
    for call in ("mnistlab.load_mnist(", "mnistlab.make_config(", "train(", "evaluate("):
        assert call in source
    assert "mnistlab.compare_runs(" in source


def test_readme_shows_the_exported_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    names = [
        t[len(README_TAG) :] for c in _code_cells(nb) for t in _tags(c) if t.startswith(README_TAG)
    ]
    assert len(names) == 2
    readme = (ROOT / "README.md").read_text()
    assert "notebooks/walkthrough.ipynb" in readme
    assert "make notebook" in readme
    for name in names:
        assert (ROOT / "docs" / name).is_file(), (
            f"docs/{name} missing: run tools/export_notebook_figures.py"
        )
        assert f"docs/{name}" in readme
        width, height = _png_size((ROOT / "docs" / name).read_bytes())
        assert width >= 400 and height >= 200


# -- the executed notebook (slow) --------------------------------------------------------


@pytest.fixture(scope="module")
def executed(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Execute the notebook once; return it with the directory it ran in."""
    work = tmp_path_factory.mktemp("notebook")
    # A kernel spec that starts this very interpreter, so the notebook runs in the
    # project's environment whatever other "python3" kernels this machine has.
    spec_dir = work / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "mnistlab (tests)",
                "language": "python",
            }
        )
    )
    manager = KernelManager(
        kernel_name=KERNEL,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(work / "kernels")]),
    )
    tmp = work / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "MNISTLAB_HOME": str(mnist.cache_path.parent),  # the session's verified MNIST cache
        "MNISTLAB_OFFLINE": "1",
        "TMPDIR": str(tmp),  # the notebook's tempfile.mkdtemp() lands here
    }
    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_cells = len(_code_cells(nb))
    # One extra cell, in this copy only: which interpreter ran the kernel.
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable, sys.prefix)"))
    client = nbclient.NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,  # the first failing cell raises CellExecutionError
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )
    client.execute(env=env)
    return {"nb": nb, "work": work, "tmp": tmp, "n_cells": n_cells}


def _find(nb: nbformat.NotebookNode, pattern: str) -> re.Match:
    for cell in _code_cells(nb):
        match = re.search(pattern, _text(cell))
        if match:
            return match
    raise AssertionError(f"no cell output matches {pattern!r}")


@pytest.mark.slow
def test_every_cell_ran_in_the_project_environment(executed: dict) -> None:
    cells = _code_cells(executed["nb"])
    assert len(cells) == executed["n_cells"] + 1
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, errors
    assert _text(cells[-1]).split() == [sys.executable, sys.prefix]


@pytest.mark.slow
def test_figures_are_shown(executed: dict) -> None:
    cells = _code_cells(executed["nb"])
    figure_cells = [c for c in cells if "figure" in _tags(c)]
    assert len(figure_cells) >= 12
    for cell in figure_cells:
        pngs = _pngs(cell)
        assert pngs, f"no image output from cell:\n{cell.source[:200]}"
        for png in pngs:
            width, height = _png_size(png)
            assert width >= 300 and height >= 150, (width, height, cell.source[:120])
    assert sum(len(_pngs(c)) for c in cells) >= len(figure_cells)


@pytest.mark.slow
def test_printed_numbers_are_sane_and_match_the_runs(executed: dict) -> None:
    nb, tmp = executed["nb"], executed["tmp"]
    fnn = float(_find(nb, r"fnn: test accuracy (\d\.\d{4})").group(1))
    cnn = float(_find(nb, r"cnn-fast: test accuracy (\d\.\d{4})").group(1))
    assert fnn > 0.95
    assert cnn > 0.97

    # The runs went to the notebook's temporary directory, and the printed numbers
    # are the ones evaluate() wrote there.
    metrics = {}
    for path in tmp.glob("mnistlab-walkthrough-*/runs/*/metrics.json"):
        m = json.loads(path.read_text())
        metrics[m["model"]] = m
    assert set(metrics) == {"fnn", "cnn-fast"}
    assert round(metrics["fnn"]["test_accuracy"], 4) == fnn
    assert round(metrics["cnn-fast"]["test_accuracy"], 4) == cnn
    assert not (executed["work"] / "runs").exists()

    p = float(_find(nb, r"McNemar exact test \(two-sided\): p = (\S+)").group(1))
    assert 0.0 <= p <= 1.0
    both_right = int(_find(nb, r"both right ([\d,]+)").group(1).replace(",", ""))
    assert 9000 < both_right <= 10000
