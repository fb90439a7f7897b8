"""The encoder families: one module each, built from a validated Spec."""

from __future__ import annotations


def build_model(spec):
    """Spec -> nn.Module of the spec's family."""
    if spec.family == "resnet":
        from .resnet import ResNetText as cls
    elif spec.family == "densenet":
        from .densenet import DenseNetText as cls
    else:
        from .transformer import TransformerText as cls
    return cls(spec)
