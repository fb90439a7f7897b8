"""rdzoo: a model zoo and architecture search for NLP encoders.

    import rdzoo
    rdzoo.list_models("densenet*")
    model = rdzoo.build("resnet-text-18", {"head.num_classes": 6})

Importing rdzoo does not import torch; building a model does.
"""

from .registry import build, list_models
from .spec import Spec, SpecError
from .spec import load as load_spec

__version__ = "0.1.0"


def load(path):
    """A model from a `.safetensors` file or a run folder (see rdzoo.weights)."""
    from .weights import load as _load

    return _load(path)


__all__ = ["build", "list_models", "load", "load_spec", "Spec", "SpecError", "__version__"]
