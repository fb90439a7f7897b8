"""MkDocs hook: the reference tables that are generated from the code, so they follow it.

A page asks for one with a marker line, `<!-- generated: NAME -->`, which this hook replaces
with Markdown before the page is rendered:

- `cli`: the `rdzoo` command, every command with its usage, arguments and options, written by
  typer's own documentation generator (`typer.cli.get_docs_for_click`, what `typer MODULE utils
  docs` prints) from the app in `rdzoo.cli`, in this process. (The mkdocs-typer2 plugin does not
  fit typer 0.29, whose options no longer carry click's `type`: its native engine fails on them,
  and its subprocess engine leaves the page empty when the command fails and reads `[x](y)` in
  help text as links.)
- `spec-keys`: every spec section's keys (spec.py's dataclasses, the neck's, and each registered
  family's encoder dataclass): type, default, allowed values and the comment beside the field;
- `skip-types`: `skips.SKIP_TYPES` with each type's rule, paper, parameter cost (a block of 256
  channels, a stack of 12 blocks) and the families that take it;
- `families`: `families.FAMILIES` with their encoder dataclass, skip types and abilities;
- `zoo`: the named models (`rdzoo list`: family, skip, parameters, description);
- `spaces`: the named search spaces, their start models and the keys they choose.

An unknown marker name fails the build. The benchmark figures in `bench/results/` are added to
the site under `benchmarks/img/`, so the pages show the images the benchmarks wrote, and the
repository's ARCHITECTURE.md is the site's design page (`architecture.md`), one file for both.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import sys
import textwrap
import tokenize
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:  # this checkout's rdzoo, installed or not
    sys.path.insert(0, str(ROOT / "src"))

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
FIGURES = ("search_efficiency.png", "skip_types.png")


# --- hooks ----------------------------------------------------------------------------------------


def on_files(files, config):
    """Add the benchmark figures under benchmarks/img/, and ARCHITECTURE.md as the design page."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, "architecture.md", abs_src_path=str(ROOT / "ARCHITECTURE.md")))
    for name in FIGURES:
        source = ROOT / "bench" / "results" / name
        files.append(File.generated(config, f"benchmarks/img/{name}", abs_src_path=str(source)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Replace each `<!-- generated: NAME -->` line with its table."""

    def table(match):
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown generated table {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(table, markdown)


# --- the CLI -------------------------------------------------------------------------------------


def cli() -> str:
    """typer's Markdown for the app, less its title line: one `## rdzoo COMMAND` section a command."""
    import typer
    from typer.cli import MARKUP_MODE_KEY, get_docs_for_click

    from rdzoo.cli import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="rdzoo")
    ctx.ensure_object(dict)
    ctx.obj[MARKUP_MODE_KEY] = app.rich_markup_mode
    text = get_docs_for_click(obj=command, ctx=ctx, name="rdzoo")
    missing = [c for c in command.commands if f"## `rdzoo {c}`" not in text]
    if missing:
        raise ValueError(f"typer's documentation of the app lacks {', '.join(missing)}")
    return text.split("\n", 1)[1].strip() + "\n"


# --- spec keys --------------------------------------------------------------------------------------


def field_comments(cls) -> dict[str, str]:
    """Field name -> the comment at the end of its line, else the comment lines just above it."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    out = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, n = [], node.lineno - 1
        while n >= 1 and lines[n - 1].strip().startswith("#"):
            above.insert(0, comments[n])
            n -= 1
        out[node.target.id] = comments.get(node.end_lineno) or " ".join(above)
    return out


def type_text(tp) -> str:
    """A field's type as a reader writes it in YAML: `int`, `list of int`, `one of a, b`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [type_text(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" or `null`" if type(None) in args else "")
    if origin is list:
        return f"list of {type_text(args[0])}" if args else "list"
    if tp is typing.Any:
        return "section"
    if dataclasses.is_dataclass(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def default_text(f: dataclasses.Field) -> str:
    """The field's default as YAML shows it, or `required`."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "required"
    if value is None:
        return "`null`"
    if value == "":
        return '`""`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def range_text(f: dataclasses.Field) -> str:
    """`bounded`'s range: [lo, hi] or (lo, hi], with the list limit."""
    meta = f.metadata
    if "lo" not in meta:
        return ""
    lo, hi = meta["lo"], meta["hi"]
    fmt = lambda x: "" if x is None else (f"{x:,}" if isinstance(x, int) and abs(x) >= 10_000 else f"{x:g}")
    text = f"{'(' if meta['lo_open'] else '['}{fmt(lo)}, {fmt(hi)}]"
    if isinstance(f.default, list) or f.default_factory is not dataclasses.MISSING:
        text += f", at most {meta['max_items']} items"
    return text


def section_table(cls, prefix: str) -> str:
    """One Markdown table of a dataclass's fields."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    rows = ["| key | type | default | allowed | note |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        note = re.sub(r"\bNone\b", "`null`", comments.get(f.name, ""))  # YAML's word for it
        note = note.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{prefix}{f.name}` | {type_text(hints[f.name])} | {default_text(f)} | "
                    f"{range_text(f)} | {note} |")
    return "\n".join(rows)


def first_paragraph(cls) -> str:
    """The class docstring's first paragraph, on one line."""
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def spec_keys() -> str:
    """Every section of a spec, then each family's `encoder:` section."""
    from rdzoo import neck, spec
    from rdzoo.families import FAMILIES

    parts = []
    sections = [("Top level", spec.Spec, ""), ("`embedding:`", spec.Embedding, "embedding."),
                ("`head:`", spec.Head, "head."), ("`train:`", spec.Train, "train."),
                ("`train.distill:`", spec.Distill, "train.distill."), ("`neck:`", neck.Neck, "neck.")]
    for title, cls, prefix in sections:
        parts += [f"### {title}", "", first_paragraph(cls), "", section_table(cls, prefix), ""]
    for name, family in FAMILIES.items():
        cls = family.encoder
        skips = ", ".join(f"`{s}`" for s in family.skips)
        parts += [f"### `encoder:` of the {name} family", "",
                  f"`{cls.__module__}.{cls.__qualname__}`: {first_paragraph(cls)} Skip types: {skips}.", "",
                  section_table(cls, "encoder."), ""]
    return "\n".join(parts)


# --- tables of the registries ---------------------------------------------------------------------


def skip_types() -> str:
    """`skips.SKIP_TYPES`, with the families that take each."""
    from rdzoo.families import FAMILIES
    from rdzoo.skips import SKIP_TYPES

    rows = ["| skip | rule | source | parameters per block, at 256 channels | per stack of 12 blocks | families |",
            "|---|---|---|---|---|---|"]
    for s in SKIP_TYPES.values():
        fams = ", ".join(name for name, fam in FAMILIES.items() if s.name in fam.skips)
        rows.append(f"| `{s.name}` | {s.rule} | {s.source} | {s.params(256):,} | {s.stack_params(12):,} | {fams} |")
    return "\n".join(rows)


def families() -> str:
    """`families.FAMILIES`: encoder section, skip types, what each family can do."""
    from rdzoo.families import FAMILIES

    rows = ["| family | `encoder:` dataclass | skip types (default first) | rotary positions | token types | "
            "BERT checkpoints | description |", "|---|---|---|---|---|---|---|"]
    yes = lambda b: "yes" if b else "no"
    for name, fam in FAMILIES.items():
        default = fam.encoder().skip
        skips = [default] + [s for s in fam.skips if s != default]
        rows.append(f"| `{name}` | `{fam.encoder.__qualname__}` | {', '.join(f'`{s}`' for s in skips)} | "
                    f"{yes(fam.rotary)} | {yes(fam.token_types)} | {yes(fam.checkpoint)} | {fam.description} |")
    return "\n".join(rows)


def zoo() -> str:
    """The named models, as `rdzoo list` shows them (an entry whose checkpoint is not installed: its reason)."""
    from rdzoo import plan, registry, spec
    from rdzoo.render import human
    from rdzoo.errors import SpecError

    rows = ["| name | family | skip | parameters | description |", "|---|---|---|---|---|"]
    for name in registry.list_models("*"):
        try:
            s = spec.load(name)
        except SpecError as exc:
            rows.append(f"| `{name}` | - | - | - | {exc.message} |")
            continue
        desc = s.description.replace("|", "\\|")
        rows.append(f"| `{name}` | {s.family} | {s.skip} | {human(plan.count_params(s))} | {desc} |")
    return "\n".join(rows)


def spaces() -> str:
    """The named search spaces: their start models and what they choose."""
    from rdzoo.space import list_spaces, space_path
    from rdzoo.yamlio import read_yaml_file

    rows = ["| space | start models | keys chosen for every family | keys chosen per family |", "|---|---|---|---|"]
    for name in list_spaces():
        data = read_yaml_file(space_path(name))
        choose = data.get("choose") or {}
        common = ", ".join(f"`{k}`" for k in choose if k != "family") or "-"
        branches = "; ".join(f"{fam}: " + ", ".join(f"`{k}`" for k in (sub or {})) for fam, sub in
                             (choose.get("family") or {}).items()) or "-"
        start = ", ".join(f"`{s}`" for s in data.get("start", [])) or "-"
        rows.append(f"| `{name}` | {start} | {common} | {branches} |")
    return "\n".join(rows)


GENERATORS = {"cli": cli, "spec-keys": spec_keys, "skip-types": skip_types, "families": families, "zoo": zoo,
              "spaces": spaces}
