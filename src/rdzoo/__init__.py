"""rdzoo: a model zoo and architecture search for NLP encoders.

    import rdzoo
    rdzoo.list_models("densenet*")
    model = rdzoo.build("resnet-text-18", {"head.num_classes": 6})

Importing rdzoo imports neither torch nor the spec machinery; each name below
loads its module on first use, so the query commands start fast.
"""

from .errors import SpecError

__version__ = "0.1.0"
__all__ = ["build", "list_models", "load", "load_spec", "Spec", "SpecError", "__version__"]


def __getattr__(name):
    if name in ("build", "list_models"):
        from . import registry

        return getattr(registry, name)
    if name == "load_spec":
        from .spec import load

        return load
    if name == "Spec":
        from .spec import Spec

        return Spec
    raise AttributeError(f"module 'rdzoo' has no attribute {name!r}")


def load(path):
    """A `.safetensors` file -> the model; a run folder -> a Run (model, tokenizer,
    label names, `.predict(texts)`)."""
    from pathlib import Path

    if Path(path).is_dir():
        from .runs import load_run

        return load_run(path)
    from .weights import load as load_weights

    return load_weights(path)
