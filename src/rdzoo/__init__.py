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
    """A `.safetensors` file -> the model; a run folder -> a Run (model, tokenizer,
    label names, `.predict(texts)`)."""
    from pathlib import Path

    if Path(path).is_dir():
        from .runs import load_run

        return load_run(path)
    from .weights import load as load_weights

    return load_weights(path)


__all__ = ["build", "list_models", "load", "load_spec", "Spec", "SpecError", "__version__"]
