"""Every public definition in src/rdzoo has a docstring.

The rule, read from the source with ``ast`` (no module is imported, so the test takes well under a
second):

- every module-level function and class whose name does not start with ``_`` needs a docstring;
- so does every method and property of such a class (and of a public class nested in it) whose name
  does not start with ``_``. ``forward`` counts: it states its own input and output shapes, even on a
  small ``nn.Module`` whose class docstring already describes them, so that one rule covers every
  module. Dunder methods (``__init__``, ``__call__``...) and ``_private`` names are exempt;
- a property's ``@x.setter`` / ``@x.deleter`` and ``@overload`` stubs are exempt: the property or
  the implementation carries the docstring.

Functions nested inside functions are not public and are not checked.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rdzoo"

Def = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _exempt_decorator(node: ast.AST) -> bool:
    """True for ``@name.setter`` / ``@name.deleter`` and ``@overload`` / ``@typing.overload``."""
    for dec in getattr(node, "decorator_list", []):
        if isinstance(dec, ast.Attribute) and dec.attr in ("setter", "deleter", "overload"):
            return True
        if isinstance(dec, ast.Name) and dec.id == "overload":
            return True
    return False


def _missing_in(body: list, prefix: str, rel: str) -> list[str]:
    """'file:line qualified.name' for each public definition in ``body`` (and in public classes) without a docstring."""
    out = []
    for node in body:
        if not isinstance(node, Def) or node.name.startswith("_") or _exempt_decorator(node):
            continue
        name = prefix + node.name
        if ast.get_docstring(node) is None:
            out.append(f"{rel}:{node.lineno} {name}")
        if isinstance(node, ast.ClassDef):
            out += _missing_in(node.body, name + ".", rel)
    return out


def missing_docstrings(root: Path = SRC) -> list[str]:
    """Every public definition under ``root`` without a docstring, as 'path:line name', in file order."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parents[1]).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out += _missing_in(tree.body, "", rel)
    return out


def test_checker_finds_what_it_should(tmp_path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text(
        "def ok():\n    '''Doc.'''\n"
        "def bare():\n    pass\n"
        "def _private():\n    pass\n"
        "class C:\n    '''Doc.'''\n"
        "    def __init__(self):\n        pass\n"
        "    def forward(self, x):\n        return x\n"
        "    @property\n    def p(self):\n        '''Doc.'''\n"
        "    @p.setter\n    def p(self, v):\n        pass\n"
        "    def _helper(self):\n        pass\n"
        "class _Hidden:\n    def run(self):\n        pass\n"
        "def outer():\n    '''Doc.'''\n    def inner():\n        pass\n"
        "class D:\n    '''Doc.'''\n    class Inner:\n        async def run(self):\n            pass\n"
    )
    assert missing_docstrings(pkg) == ["src/pkg/m.py:3 bare", "src/pkg/m.py:11 C.forward",
                                       "src/pkg/m.py:30 D.Inner", "src/pkg/m.py:31 D.Inner.run"]


def test_every_public_definition_has_a_docstring():
    missing = missing_docstrings()
    if missing:
        pytest.fail(f"{len(missing)} public definitions lack a docstring:\n" + "\n".join(missing), pytrace=False)
