"""Building models: a zoo name, a spec file, a checkpoint folder, a dict or a Spec -> nn.Module.

The zoo's names are found by `zoo` (re-exported here: `list_models`, `spec_path`);
the family table (`families`) says which module builds each family.
"""

from __future__ import annotations

from .spec import load, parse_override
from .zoo import UnknownModelError, list_models, resource_dir, spec_path, zoo_index

__all__ = ["build", "list_models", "spec_path", "zoo_index", "resource_dir", "UnknownModelError"]


def build(source, overrides=(), **kwargs):
    """Build a model from a zoo name, a YAML path, a checkpoint folder, a dict or a Spec.
    A spec with `pretrained:` gets the checkpoint's weights (rdzoo.pretrained).

    Overrides are dotted keys (`{"encoder.growth_rate": 24}`, or a list of
    "key=value" strings) or nested dicts passed as keyword arguments
    (`build("resnet-text-18", head={"num_classes": 6})`).
    """
    from .families import build_model

    if isinstance(overrides, dict):
        overrides = {**overrides, **kwargs}
    elif kwargs:
        overrides = {**dict(_parse_all(overrides)), **kwargs}
    spec = load(source, overrides)
    model = build_model(spec)
    if spec.pretrained:
        from .pretrained import prepare

        prepare(model, spec)
    return model


def _parse_all(items):
    return [parse_override(item) for item in items]
