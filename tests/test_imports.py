"""The import graph points one way: no module of rdzoo imports, directly or through others,
a module that imports it back, counting imports inside functions, imports under
`if TYPE_CHECKING:` (a module typed against another sits above it as surely as one that calls
it), modules named in `import_module("...")` strings and modules named by a "module:Class"
string (the family table's way of naming a model class it imports only when a model is
built). And every module imports on its own."""

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


def _absolute(package: str, level: int, module: str | None) -> str:
    """`from <level dots><module> import ...` inside `package` -> the dotted name it imports from."""
    base = package.split(".")[: len(package.split(".")) - level + 1] if level else []
    return ".".join(base + ([module] if module else []))


def _import_module_string(node: ast.AST, package: str) -> str | None:
    """The module a call `import_module("...")` (or `importlib.import_module`) names, else None."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return None
    func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if func != "import_module":
        return None
    text = node.args[0].value
    level = len(text) - len(text.lstrip("."))
    return _absolute(package, level, text[level:] or None) if level else text


def _class_string(node: ast.AST) -> str | None:
    """The module a string constant "rdzoo.module:Class" names, else None."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    module, colon, name = node.value.partition(":")
    return module if colon and module.startswith("rdzoo.") and name.isidentifier() else None


def imported(name: str, path: Path, known: dict) -> set[str]:
    """The rdzoo modules that `name` imports anywhere in its body: at module level, inside
    functions, under `if TYPE_CHECKING:`, by `import_module("...")`, and those it names by a
    "rdzoo.module:Class" string; a module's own parent packages are left out (Python imports
    them first anyway)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(package, node.level, node.module)
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            targets = subs if len(subs) == len(node.names) else [target, *subs]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif (target := _import_module_string(node, package) or _class_string(node)) is not None:
            targets = [target]
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


def _package(tmp_path, files: dict[str, str]) -> dict[str, set[str]]:
    """The import graph of a package `rdzoo` written under tmp_path: {module path: source}."""
    known = {}
    for rel, text in {"__init__.py": "", "sub/__init__.py": "", **files}.items():
        path = tmp_path / "rdzoo" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        parts = ("rdzoo", *Path(rel).with_suffix("").parts)
        known[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: imported(name, path, known) for name, path in known.items()}


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    graph = _package(tmp_path, {"a.py": "from . import b\n", "b.py": "def f():\n    from .sub import c\n",
                                "sub/c.py": "from ..a import y\n"})
    assert graph["rdzoo.b"] == {"rdzoo.sub.c"}
    assert find_cycle(graph) == ["rdzoo.a", "rdzoo.b", "rdzoo.sub.c", "rdzoo.a"]


def test_a_typing_only_import_and_an_import_module_string_are_edges(tmp_path):
    graph = _package(tmp_path, {
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "b.py": "import importlib\ndef f():\n    return importlib.import_module('rdzoo.sub.c')\n",
        "sub/c.py": "from importlib import import_module\nd = import_module('.d', __package__)\n"
                    "x = import_module('..a', 'rdzoo.sub')\n",
        "sub/d.py": "NAME = 'rdzoo.a'  # a string that is not imported is no edge\n"})
    assert graph["rdzoo.a"] == {"rdzoo.b"} and graph["rdzoo.b"] == {"rdzoo.sub.c"}
    assert graph["rdzoo.sub.c"] == {"rdzoo.sub.d", "rdzoo.a"} and graph["rdzoo.sub.d"] == set()
    assert find_cycle(graph) == ["rdzoo.a", "rdzoo.b", "rdzoo.sub.c", "rdzoo.a"]


def test_a_module_class_string_is_an_edge_from_the_module_that_names_it(tmp_path):
    graph = _package(tmp_path, {"table.py": "MODEL = 'rdzoo.sub.model:Text'\n",
                                "sub/model.py": "from .. import table\n",
                                "other.py": "HELP = 'see rdzoo.table: the table'  # prose, not a class name\n"})
    assert graph["rdzoo.table"] == {"rdzoo.sub.model"} and graph["rdzoo.other"] == set()
    assert find_cycle(graph) == ["rdzoo.sub.model", "rdzoo.table", "rdzoo.sub.model"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_imports_alone_in_a_fresh_interpreter(name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
