"""Building models: a zoo name, a spec file, a checkpoint folder, a dict or a Spec -> nn.Module.

`create_model(spec)` is the one road from a validated Spec to a model (timm's
`build_model_with_cfg`): `build`, `rdzoo build`, `train.fit` (and through it the
search and the teachers) and `weights.load` all call it, so what a spec asks of a
fresh model (a checkpoint's body, word vectors, a frozen embedding, a CRF's
forbidden transitions) happens in one place. The zoo's names are found by `zoo`
(re-exported here: `list_models`, `spec_path`); the family table (`families`) says
which module builds each family.
"""

from __future__ import annotations

from .spec import load, parse_override
from .zoo import UnknownModelError, list_models, resource_dir, spec_path, zoo_index

__all__ = ["build", "build_model", "create_model", "list_models", "spec_path", "zoo_index", "resource_dir", "UnknownModelError"]


def create_model(spec, *, tokenizer=None, label_names: list[str] | None = None, pretrained: bool = True,
                 seed: int | None = None):
    """A validated Spec -> its nn.Module (a `families.base.TextModel`), ready to train or run.

    In order: torch's generator seeded with `seed` (None: left as it is, e.g. seeded by
    `train.fit` already); the family's model (`build_model`); with `pretrained`,
    a `pretrained:` checkpoint's body (`pretrained.load_body`), else `embedding.pretrained`
    word vectors for the vocabulary of `tokenizer` (`pretrained.init_word_vectors`; skipped
    without a tokenizer); `embedding.freeze`; and a tagger's CRF told the transitions the tag
    scheme of `label_names` forbids (`crf.CRF.constrain`). `pretrained=False` is for weights
    loaded next (weights files and runs hold the trained ones). Raises WeightsError for
    checkpoint tensors that do not fit, SpecError for a checkpoint that cannot be found.
    """
    from .pretrained import freeze, init_word_vectors, load_body

    if seed is not None:
        import torch

        torch.manual_seed(seed)
    model = build_model(spec)
    if pretrained and spec.pretrained:
        load_body(model, spec)
    elif pretrained and spec.embedding.pretrained and tokenizer is not None:
        init_word_vectors(model, spec, tokenizer)
    freeze(model, spec)
    crf = getattr(model.head, "crf", None)
    if crf is not None and label_names is not None:
        crf.constrain(label_names)
    return model


def build_model(spec):
    """A validated Spec -> its family's untrained nn.Module (a `families.base.TextModel`:
    (B, T) token ids -> logits), with no checkpoint, word vectors or freezing: those are
    `create_model`'s. The family table names the model class, as a class or a "module:Class"
    string imported now; it is given the head's input width (`plan.encoder_width`) and, for
    a spec with a `neck:`, a function that builds the neck's encoder by this same road
    (`neck.as_spec`), so that model modules need neither the table nor the plan.
    """
    import importlib

    from . import neck, plan
    from .families import get_family

    model = get_family(spec.family).model
    if isinstance(model, str):
        module, _, name = model.partition(":")
        model = getattr(importlib.import_module(module), name)
    build_neck = (lambda: build_model(neck.as_spec(spec))) if spec.neck else None
    return model(spec, encoder_width=plan.encoder_width(spec), neck=build_neck)


def build(source, overrides=(), **kwargs):
    """Build a model from a zoo name, a YAML path, a checkpoint folder, a dict or a Spec
    (`create_model` on the loaded spec: a spec with `pretrained:` gets the checkpoint's weights).

    Overrides are dotted keys (`{"encoder.growth_rate": 24}`, or a list of
    "key=value" strings) or nested dicts passed as keyword arguments
    (`build("resnet-text-18", head={"num_classes": 6})`).
    """
    if isinstance(overrides, dict):
        overrides = {**overrides, **kwargs}
    elif kwargs:
        overrides = {**dict(_parse_all(overrides)), **kwargs}
    return create_model(load(source, overrides))


def _parse_all(items):
    return [parse_override(item) for item in items]


def zoo_rows(pattern: str = "*") -> list[dict]:
    """One row a zoo model matching `pattern` (fnmatch): name, family, skip, parameters (counted from
    the spec, no tensor built), vocabulary cap and description; an entry that does not load (a
    pretrained one whose checkpoint is not installed) is listed with its reason as description."""
    from .errors import SpecError
    from .plan import count_params

    rows = []
    for name in list_models(pattern):
        try:
            s = load(name)
        except SpecError as exc:
            rows.append({"name": name, "family": "-", "skip": "-", "params": None, "description": exc.message})
            continue
        rows.append({"name": name, "family": s.family, "skip": s.skip, "params": count_params(s),
                     "vocab_size": s.embedding.vocab_size, "description": s.description})
    return rows
