"""The house rules of ARCHITECTURE.md, checked: no import cycle, layers that do not look up,
nothing outside `orchestrator/methods/` that knows a BMad file name, and modules of a readable
size. Imports are read from the source (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
import graphlib
import os
from pathlib import Path

import pytest

from tests.helpers import REPO

# `state`, `nodes` and `graphs` sit at the top of the repository and are installed (and imported,
# through the links in orchestrator/) as `orchestrator.state` & co.
PACKAGES = ("orchestrator",)
MAX_LINES = 400
# Layers: a module of the left never imports a module of the right.
NEVER_IMPORTS = {
    "orchestrator.tmux": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.methods",
        "orchestrator.app",
    ),
    "orchestrator.watch": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.tmux",
        "orchestrator.methods",
    ),
    "orchestrator.filewatch": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.tmux",
        "orchestrator.methods",
    ),
    "orchestrator.methods": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.app",
        "orchestrator.tmux",
    ),
    "orchestrator.agents": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.app",
        "orchestrator.tmux",
    ),
    "orchestrator.git": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.tmux",
        "orchestrator.methods",
        "orchestrator.app",
        "orchestrator.agents",
    ),
    "orchestrator.files": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.tmux",
        "orchestrator.methods",
    ),
    "orchestrator.state": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.app",
        "orchestrator.ui",
    ),
    # Temporal replays workflow code in a sandbox: nothing of ours with side effects there.
    "orchestrator.executors.workflows": (
        "orchestrator.nodes",
        "orchestrator.graphs",
        "orchestrator.state",
        "orchestrator.app",
        "orchestrator.tmux",
        "orchestrator.methods",
        "orchestrator.agents",
        "orchestrator.git",
    ),
    "orchestrator.nodes": (
        "orchestrator.graphs",
        "orchestrator.app",
        "orchestrator.ui",
        "orchestrator.methods.bmad_v4",
    ),
}
# BMad v4's own words: file names, config keys, Status values and star commands.
BMAD_WORDS = (
    ".bmad-core",
    "core-config",
    "devStoryLocation",
    "qaLocation",
    ".story.md",
    "Ready for Review",
    '"InProgress"',
    '"Approved"',
    "*develop-story",
    "*review-qa",
    "po-validation",
)


def modules() -> dict[str, Path]:
    """Every module of the product, by dotted name."""
    found = {}
    for package in PACKAGES:
        walked = os.walk(REPO / package, followlinks=True)  # through the links to state/ & co.
        files = [Path(folder, name) for folder, _, names in walked for name in names]
        for path in sorted(p for p in files if p.suffix == ".py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The product modules `path` imports (outside `if TYPE_CHECKING:` blocks)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known)
    return {name: imports_of(path, name, names) for name, path in known.items()}


def test_no_module_takes_part_in_an_import_cycle() -> None:
    graph = import_graph()
    # A package's __init__ re-exporting its own modules is not a cycle of design.
    design = {
        name: {t for t in targets if not t.startswith(name + ".")}
        for name, targets in graph.items()
    }
    try:
        graphlib.TopologicalSorter(design).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("layer", sorted(NEVER_IMPORTS))
def test_layers_never_import_what_sits_above_them(layer: str) -> None:
    graph = import_graph()
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in NEVER_IMPORTS[layer])
    ]
    assert wrong == []


def test_nothing_outside_methods_knows_a_bmad_file_name_or_status_word() -> None:
    methods = REPO / "orchestrator" / "methods"
    found = [
        f"{path.relative_to(REPO)}: {word}"
        for path in modules().values()
        if methods not in path.parents
        for word in BMAD_WORDS
        if word in path.read_text()
    ]
    assert found == []


def test_modules_are_short_or_say_why_not() -> None:
    long = []
    for path in modules().values():
        text = path.read_text()
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and "lines because" not in docstring:
            long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert long == []
