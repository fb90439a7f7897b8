"""The family table: every encoder family by name.

A family is registered once (`register`) and then read everywhere: spec loading
checks `family:` and the `encoder:` section against it, plans count its
parameters, search spaces branch on it and `rdzoo best --family` lists it. The
built-in families are `resnet`, `densenet` and `transformer`; each package holds its
torch-free part (`__init__.py`: encoder section, rules, plan) and its `model.py`,
named by a "module:Class" string that `registry.build_model` imports when a model is
built. Importing this package does not import torch.
"""

from __future__ import annotations

from ..errors import SpecError
from ..names import did_you_mean
from .densenet import FAMILY as DENSENET
from .family import Family
from .resnet import FAMILY as RESNET
from .transformer import FAMILY as TRANSFORMER

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the table; raises ValueError if its name is taken."""
    if family.name in FAMILIES:
        raise ValueError(f"a family called {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str, key: str = "family") -> Family:
    """The family called `name`; raises SpecError at `key`, with the known names and a hint."""
    if name not in FAMILIES:
        raise SpecError(key, f"{name!r} is not one of: {', '.join(FAMILIES)}{did_you_mean(name, FAMILIES)}")
    return FAMILIES[name]


for _family in (RESNET, DENSENET, TRANSFORMER):
    register(_family)
