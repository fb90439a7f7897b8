"""The `rdzoo` command. Heavy libraries (torch, timm, optuna) are imported
inside the commands that need them, so `rdzoo --help` and `rdzoo list` start fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .spec import SpecError

app = typer.Typer(
    help="A model zoo and architecture search for NLP encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a spec key: key.path=value (repeatable).")]


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit status 2."""


def human(n: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def console():
    from rich.console import Console

    return Console()


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command("list")
def list_cmd(pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'densenet*'.")] = "*",
             as_json: JsonOpt = False):
    """List the named models in the zoo with family, skip type and parameter count."""
    from . import plan, registry, spec

    rows = []
    for name in registry.list_models(pattern):
        s = spec.load(name)
        rows.append({"name": name, "family": s.family, "skip": s.skip, "params": plan.count_params(s),
                     "description": s.description})
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    cells = [(r["name"], r["family"], r["skip"], human(r["params"])) for r in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(("name", "family", "skip", "params"))]
    out = console()
    room = max(out.width - sum(widths) - 2 * 5, 10)  # the description gets what the other columns leave
    table = Table("name", "family", "skip", "params", "description", box=None)
    for r, c in zip(rows, cells):
        text = r["description"]
        table.add_row(*c, text if len(text) <= room else text[: room - 1] + "…")
    out.print(table if rows else f"no model matches {pattern!r}")


@app.command()
def show(name: Annotated[str, typer.Argument(help="Zoo name or spec file.")], set_: SetOpt = None,
         as_json: JsonOpt = False):
    """Print the fully resolved spec (defaults filled in, bases merged) as YAML."""
    from . import spec

    s = spec.load(name, set_ or [])
    if as_json:
        return emit_json(s.to_dict())
    sys.stdout.write(s.to_yaml())


@app.command()
def build(name: Annotated[str, typer.Argument(help="Zoo name or spec file.")], set_: SetOpt = None,
          out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Save the initial weights as .safetensors.")] = None,
          batch: Annotated[int, typer.Option(min=1, help="Dummy batch size for the latency.")] = 8,
          seq_len: Annotated[Optional[int], typer.Option(min=1, help="Sequence length (default: min(max_len, 128)).")] = None,
          as_json: JsonOpt = False):
    """Build a model, run a dummy batch, and print stages, parameters, FLOPs and latency."""
    from . import spec

    s = spec.load(name, set_ or [])
    import torch

    from . import profile
    from .families import build_model

    torch.manual_seed(0)
    model = build_model(s).eval()
    length = seq_len or min(s.embedding.max_len, 128)
    if length > s.embedding.max_len and s.embedding.positions in ("learned", "sinusoidal"):
        raise UsageError(f"--seq-len {length} is longer than embedding.max_len {s.embedding.max_len}")
    one = profile.dummy_batch(s, 1, length)
    tokens = profile.dummy_batch(s, batch, length)
    stages = profile.stage_shapes(model, tokens)
    result = {
        "name": s.name, "family": s.family, "skip": s.skip,
        "params": profile.count_params(model),
        "flops": profile.flops(model, one),
        "seq_len": length, "batch": batch,
        "latency_ms": round(profile.latency(model, tokens, repeats=3) * 1000, 3),
        "output_shape": stages[-1]["output_shape"],
        "stages": stages,
    }
    if out is not None:
        from .weights import save

        result["out"] = str(save(model, out))
    if as_json:
        return emit_json(result)
    from rich.table import Table

    table = Table("module", "type", "output shape", "params", title=f"{s.name} ({s.family}, skip: {s.skip})")
    for row in stages:
        table.add_row(row["name"], row["type"], "x".join(map(str, row["output_shape"])), human(row["params"]))
    c = console()
    c.print(table)
    c.print(f"params {result['params']:,}  |  FLOPs/sequence ({length} tokens) {human(result['flops'])}  |  "
            f"latency {result['latency_ms']:.1f} ms for a batch of {batch}")
    if out is not None:
        c.print(f"saved {out}")


def main() -> None:
    from .weights import WeightsError

    try:
        app(standalone_mode=True)
    except (SpecError, UsageError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(2)
    except WeightsError as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("rdzoo: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
