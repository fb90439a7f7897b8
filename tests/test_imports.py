"""The import graph points one way: no module of rdzoo imports, directly or through others,
a module that imports it back, counting imports inside functions too (only imports under
`if TYPE_CHECKING:` are for typing and run never). And every module imports on its own."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the rdzoo package."""
    out = {}
    for path in sorted((SRC / "rdzoo").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imported(name: str, path: Path, known: dict) -> set[str]:
    """The rdzoo modules that `name` imports anywhere in its body, typing-only imports left out;
    a module's own parent packages are left out too (Python imports them first anyway)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                   for stmt in block.body for node in ast.walk(stmt)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            targets = subs if len(subs) == len(node.names) else [target, *subs]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name and not name.startswith(t + ".")}
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert len(graph) > 30 and graph["rdzoo.spec"]  # the walk found the package and its imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "rdzoo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
                              "def f():\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("from ..a import y\n")
    known = {"rdzoo": pkg / "__init__.py", "rdzoo.sub": pkg / "sub" / "__init__.py", "rdzoo.a": pkg / "a.py",
             "rdzoo.b": pkg / "b.py", "rdzoo.sub.c": pkg / "sub" / "c.py"}
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert graph["rdzoo.b"] == {"rdzoo.sub.c"}  # the typing-only import is not an edge
    assert find_cycle(graph) == ["rdzoo.a", "rdzoo.b", "rdzoo.sub.c", "rdzoo.a"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_imports_alone_in_a_fresh_interpreter(name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
