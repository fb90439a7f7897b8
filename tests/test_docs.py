"""The examples of README.md and docs/ run, and the commands they show exist.

- Every ```python block runs, each on its own in a fresh folder (pytest-codeblocks reads the
  blocks and its markers: `<!--pytest-codeblocks:cont-->` joins a block to the one above,
  `<!--pytest-codeblocks:importorskip(mod)-->` and `<!--pytest.mark.skip(...)-->` skip one).
- Every ```console block is runnable: its `$ ` lines run in a slow test, a page's blocks in
  order in one temporary folder, with `rdzoo` calling this checkout's code. A command whose
  shown output starts with `rdzoo: error:` must fail with that line; any other must succeed.
  A python block marked `<!--pytest.mark.slow-->` runs there too, after the commands above it.
- Every `rdzoo COMMAND --option` written in README.md or docs/ (in a code block or in inline
  code) names a command of the typer app and options it has.
- The README's relative links point at files of the repository.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
from pytest_codeblocks import extract_from_file

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list:
    """The page's fenced code blocks, as pytest-codeblocks reads them (with their markers)."""
    return extract_from_file(page)


def marks(block) -> list:
    """The block's `<!--pytest.mark.X-->` markers as pytest marks."""
    return [eval(m, {"pytest": pytest}) for m in block.marks]  # the markers are pytest expressions


def is_slow(block) -> bool:
    return any(m.name == "slow" for m in marks(block))


def python_blocks() -> list:
    return [pytest.param(page, block, marks=marks(block), id=f"{rel(page)}:{block.lineno}")
            for page in PAGES for block in blocks(page) if block.syntax == "python" and not is_slow(block)]


def console_pages() -> list:
    return [pytest.param(page, id=rel(page)) for page in PAGES if any(b.syntax == "console" for b in blocks(page))]


def run_python(block, where: str) -> None:
    """Execute a python block as a script of its own; families it registers are removed after."""
    from rdzoo.families import FAMILIES

    if block.importorskip:
        pytest.importorskip(block.importorskip)
    before = dict(FAMILIES)
    module = types.ModuleType("rdzoo_docs_example")  # a module of its own: dataclasses look theirs up
    sys.modules[module.__name__] = module
    try:
        exec(compile(block.code, where, "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
        FAMILIES.clear()
        FAMILIES.update(before)


@pytest.mark.parametrize(("page", "block"), python_blocks())
def test_python_block_runs(page, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_python(block, f"{rel(page)}:{block.lineno}")


# --- console blocks ------------------------------------------------------------------------------


def commands(block) -> list[tuple[str, list[str]]]:
    """A console block's `$ ` lines, each with the output lines shown under it."""
    out: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def skipped(block) -> str | None:
    """Why a console block does not run here (its skip marks, a module it needs), or None."""
    for m in marks(block):
        if m.name == "skip" or (m.name == "skipif" and m.args and m.args[0]):
            return m.kwargs.get("reason", "marked skip")
    if block.importorskip:
        try:
            __import__(block.importorskip)
        except ImportError:
            return f"needs {block.importorskip}"
    return None


def shell_env(bin_dir: Path) -> dict:
    """PATH with an `rdzoo` that runs this checkout's code under this Python."""
    bin_dir.mkdir()
    script = bin_dir / "rdzoo"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rdzoo.cli "$@"\n')
    script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_command(command: str, shown: list[str], cwd: Path, env: dict, where: str) -> None:
    """Run one `$ ` line with bash; an `rdzoo: error:` shown under it must be what it prints."""
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    error = next((line.strip() for line in shown if line.startswith("rdzoo: error:")), None)
    if error:
        assert done.returncode != 0, f"{where}: `{command}` succeeded, the page shows it failing"
        assert error in done.stderr.splitlines(), f"{where}: `{command}` printed\n{done.stderr}\nthe page shows\n{error}"
    else:
        assert done.returncode == 0, (f"{where}: `{command}` exited {done.returncode}\n"
                                      f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("page", console_pages())
def test_console_blocks_run(page, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    env = shell_env(tmp_path / "bin")
    monkeypatch.chdir(work)
    ran = 0
    for block in blocks(page):
        where = f"{rel(page)}:{block.lineno}"
        if block.syntax == "console" and not skipped(block):
            for command, shown in commands(block):
                run_command(command, shown, work, env, where)
                ran += 1
        elif block.syntax == "python" and is_slow(block):
            run_python(block, where)
    assert ran, f"{rel(page)}: every console block was skipped"


# --- documented options ----------------------------------------------------------------------------

FENCE = re.compile(r"^ *(`{3,})[^\n]*\n(.*?)^ *\1 *$", re.S | re.M)
INLINE = re.compile(r"`((?:[^`\n]|\n(?!\n))+)`")  # a code span may wrap onto the next line
# `rdzoo` where a command starts (a line's start, after a `$ ` prompt, `&&`, `;`, `|`, `(` or a
# search summary's `next:`), a command (or an option of rdzoo itself), then the rest of that
# command: up to a comment, a pipe, `&&`, `;`, a redirection, a closing parenthesis or the line's end
COMMAND = re.compile(r"(?:^|[;&|(]|\$ |next:)[ \t]*rdzoo ((?:[a-z][a-z-]*|--?[a-z][\w-]*))([^\n#|&;<>)`]*)", re.M)


def code_texts(text: str) -> list[str]:
    """The code of a Markdown text: its fenced blocks and its inline code spans."""
    fenced = [m.group(2) for m in FENCE.finditer(text)]
    prose = FENCE.sub("", text)
    return fenced + [" ".join(m.group(1).split()) for m in INLINE.finditer(prose)]


def documented_options(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) for every `rdzoo COMMAND ...` in the text's code; command '' is rdzoo itself."""
    found = []
    for code in code_texts(text):
        for m in COMMAND.finditer(code):
            command, rest = m.group(1), m.group(2)
            if command.startswith("-"):
                command, rest = "", f"{command} {rest}"
            try:
                words = shlex.split(rest, comments=False)
            except ValueError:  # an unclosed quote in a shortened example
                words = rest.split()
            options = [w.split("=", 1)[0] for w in words if re.match(r"--?[a-zA-Z]", w)]
            found.append((command, options))
    return found


def cli_options() -> dict[str, set[str]]:
    """Each command of the typer app -> the option names it takes ('' for rdzoo itself)."""
    import typer

    from rdzoo.cli import app

    group = typer.main.get_command(app)
    names = lambda cmd: {o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    out = {name: names(cmd) | {"--help"} for name, cmd in group.commands.items()}
    out[""] = names(group) | {"--help"}
    return out


def unknown_options(text: str, known: dict[str, set[str]]) -> list[str]:
    """`rdzoo COMMAND --option` texts whose command or option the app does not have."""
    bad = []
    for command, options in documented_options(text):
        if command not in known:
            bad.append(f"rdzoo {command}: no such command")
            continue
        bad += [" ".join(filter(None, ["rdzoo", command, o])) + ": no such option"
                for o in options if o not in known[command]]
    return bad


def test_documented_options_exist():
    known = cli_options()
    bad = [f"{rel(page)}: {b}" for page in PAGES for b in unknown_options(page.read_text(encoding="utf-8"), known)]
    assert not bad, "\n".join(bad)


def test_documented_options_are_found_and_checked():
    """The check reads code blocks and inline code, and names a renamed option or command."""
    text = ("```bash\nrdzoo train kim-cnn --data sst2 -o runs/r --no-such-flag  # --not-an-option\n"
            "rdzoo eval runs/r --device cpu && rdzoo predict runs/r 'a film' --devise cuda\n```\n"
            "Run `rdzoo serach --trials 5`, or `rdzoo --verison`; rdzoo builds --models in prose;\n"
            "`rdzoo export RUN\n--formt onnx` wraps.\n")
    assert documented_options(text) == [("train", ["--data", "-o", "--no-such-flag"]), ("eval", ["--device"]),
                                        ("predict", ["--devise"]), ("serach", ["--trials"]), ("", ["--verison"]),
                                        ("export", ["--formt"])]
    assert unknown_options(text, cli_options()) == [
        "rdzoo train --no-such-flag: no such option", "rdzoo predict --devise: no such option",
        "rdzoo serach: no such command", "rdzoo --verison: no such option",
        "rdzoo export --formt: no such option"]


def test_console_commands_are_read_with_their_output():
    from pytest_codeblocks.main import CodeBlock

    block = CodeBlock("$ rdzoo build x\nrdzoo: error: unknown model 'x'\n$ rdzoo list --json > l.json\n", 1, "console")
    assert commands(block) == [("rdzoo build x", ["rdzoo: error: unknown model 'x'"]), ("rdzoo list --json > l.json", [])]


def test_readme_links_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text)) if "://" not in t]
    missing = [t for t in targets if t and not (ROOT / t).exists()]
    assert targets and not missing, missing


def test_generated_references_build():
    """The tables docs/hooks/generated.py puts into the site come out of the code as it is."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks" / "generated.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    from rdzoo.families import FAMILIES

    cli = hooks.cli()
    assert all(f"## `rdzoo {c}`" in cli for c in cli_options() if c)
    keys = hooks.spec_keys()
    for family in FAMILIES.values():
        assert f"`encoder:` of the {family.name} family" in keys
        assert all(f"`encoder.{f}`" in keys for f in family.encoder.__dataclass_fields__)
    for name in ("skip-types", "families", "zoo", "spaces"):
        assert hooks.GENERATORS[name]().count("\n") >= 3


def test_api_reference_names_every_public_name():
    """`import rdzoo` gives `rdzoo.__all__`; the API reference's index lists each of them."""
    import rdzoo

    index = (ROOT / "docs" / "reference" / "api" / "index.md").read_text(encoding="utf-8")
    missing = [n for n in rdzoo.__all__ if n != "__version__" and f"`rdzoo.{n}`" not in index]
    assert not missing, f"docs/reference/api/index.md does not list {missing}"
