"""Execute notebooks/walkthrough.ipynb and save the README's figures from its outputs.

The README shows two figures of the walkthrough notebook. They are not drawn
separately: this script runs the notebook top to bottom (as CI does, in a
kernel started from this interpreter, with runs in a temporary directory that
is deleted afterwards), then writes the first image output of every cell tagged
``readme:NAME.png`` to ``docs/NAME.png``. It also prints how long the slowest
cells took and the kernel's CPU time (user + system, all threads): on an idle
machine with C cores the notebook cannot run faster than CPU time / C, however
busy the machine was during this run. The committed notebook is not modified.

Run from the repository root::

    .venv/bin/python tools/export_notebook_figures.py
    .venv/bin/python tools/export_notebook_figures.py --executed /tmp/walkthrough.ipynb
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from mnistlab import files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
DOCS = ROOT / "docs"
TAG = "readme:"
KERNEL = "mnistlab-export"


def execute(nb: nbformat.NotebookNode, work: Path) -> None:
    """Run every cell of ``nb`` in place, in a kernel of this interpreter, inside ``work``."""
    spec_dir = work / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "mnistlab", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    manager = KernelManager(
        kernel_name=KERNEL,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(work / "kernels")]),
    )
    client = nbclient.NotebookClient(
        nb, km=manager, timeout=1800, resources={"metadata": {"path": str(work)}}
    )
    client.execute(env={**os.environ, "TMPDIR": str(work)})


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Wall-clock seconds a cell took, from the timestamps nbclient records."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="where to write the PNGs")
    parser.add_argument("--executed", type=Path, help="also save the executed notebook here")
    args = parser.parse_args(argv)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # One extra cell, removed again below: the kernel process's own CPU time.
    nb.cells.append(nbformat.v4.new_code_cell("import os; print(sum(os.times()[:2]))"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnistlab-notebook-") as tmp:
        execute(nb, Path(tmp))
    total = time.perf_counter() - started
    cpu_seconds = float(nb.cells.pop().outputs[0].text)

    code = [c for c in nb.cells if c.cell_type == "code"]
    print(f"executed {len(code)} code cells in {total:.0f} s (kernel start included)")
    print(
        f"kernel CPU time {cpu_seconds:.0f} s (user + system); at least "
        f"{cpu_seconds / 2:.0f} s of wall-clock time on an idle 2-core machine"
    )
    for cell in sorted(code, key=cell_seconds, reverse=True)[:5]:
        first_line = cell.source.splitlines()[0] if cell.source else ""
        print(f"  {cell_seconds(cell):6.1f} s  {first_line[:70]}")

    written = []
    for cell in code:
        for tag in cell.metadata.get("tags", []):
            if not tag.startswith(TAG):
                continue
            pngs = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
            if not pngs:
                print(f"error: the cell tagged {tag} shows no image", file=sys.stderr)
                return 1
            path = args.docs / tag[len(TAG) :]
            with files.atomic_path(path, suffix=".png") as out:
                out.write_bytes(base64.b64decode(pngs[0]))
            written.append(path)
    for path in written:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    if args.executed:
        nbformat.write(nb, args.executed)
        print(f"executed notebook saved to {args.executed}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
