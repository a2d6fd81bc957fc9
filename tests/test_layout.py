"""The shape of the package: module sizes, the import graph, and imports without side effects.

The layering itself is declared in pyproject.toml ([tool.importlinter]) and checked by
``lint-imports`` (``make lint``); these tests also run it, and look for import cycles
inside a layer, which a layers contract does not see.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "mnistlab"
MAX_LINES = 600


def _python(code):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_no_module_is_over_600_lines():
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 20
    too_long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}


def test_no_file_of_the_package_is_ignored_by_git():
    # .gitignore names output folders (runs/, cv/) that are also package names: a new
    # module there would silently stay out of every commit.
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*") if path.is_file()]
    files = [f for f in files if "__pycache__" not in f]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(files),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: none ignored
    assert done.stdout.split() == []


def _cycles(graph, modules):
    """The strongly connected components of more than one module (Tarjan), each a cycle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_tarjan_finds_a_cycle_and_only_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph, set(graph.modules)) == [{"a.x", "a.y"}]


def test_there_is_no_import_cycle_among_mnistlab_modules():
    # Every import counts, also those inside functions: a lazy import is still a
    # dependency, and two modules that need each other are one module in two files.
    graph = grimp.build_graph("mnistlab", cache_dir=None)
    modules = {m for m in graph.modules if m == "mnistlab" or m.startswith("mnistlab.")}
    assert "mnistlab.cli" in modules and "mnistlab.train" in modules
    cycles = _cycles(graph, modules)
    chains = []
    for component in cycles:
        first = min(component)
        back = [
            graph.find_shortest_chain(importer=imported, imported=first)
            for imported in graph.find_modules_directly_imported_by(first)
            if imported in component
        ]
        chains.append(" -> ".join((first, *min(back, key=len))))
    assert chains == []


def test_the_declared_layers_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_importing_the_drawing_modules_keeps_the_users_matplotlib_backend():
    done = _python(
        """
        import matplotlib
        matplotlib.use("svg")
        import mnistlab.report, mnistlab.serve, mnistlab.predict, mnistlab.tune
        import mnistlab.cv, mnistlab.bench
        print(matplotlib.get_backend())
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg"]


def test_importing_every_module_changes_no_global_state():
    done = _python(
        """
        import importlib, importlib.util, logging, pkgutil, sys
        import PIL.Image

        def state():
            return (
                sys.stderr,
                sys.stdout,
                tuple(logging.root.handlers),
                logging.root.level,
                PIL.Image.MAX_IMAGE_PIXELS,
            )

        before = state()  # before mnistlab itself is imported: its __init__ counts too
        path = importlib.util.find_spec("mnistlab").submodule_search_locations
        names = ["mnistlab"] + [
            m.name
            for m in pkgutil.walk_packages(path, "mnistlab.")
            if m.name != "mnistlab.__main__"  # runs the command line
        ]
        for name in names:
            importlib.import_module(name)
        after = state()
        print(len(names))
        for label, old, new in zip(
            ("sys.stderr", "sys.stdout", "root handlers", "root level", "MAX_IMAGE_PIXELS"),
            before,
            after,
        ):
            if old != new:
                print(f"changed: {label}: {old!r} -> {new!r}")
        """
    )
    assert done.returncode == 0, done.stderr
    count, *changed = done.stdout.splitlines()
    assert int(count) > 20
    assert changed == []


@pytest.mark.parametrize("module", ["mnistlab.cli", "mnistlab.progress"])
def test_the_command_line_and_progress_modules_import_without_tensorflow(module):
    done = _python(f"import sys, {module}; print('tensorflow' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
