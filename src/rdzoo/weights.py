"""Weights as safetensors, with the resolved spec in the file's metadata.

Nothing is unpickled: a weights file is tensors plus a JSON spec, and a model
is rebuilt from the spec before the tensors are loaded strictly.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import WeightsError

FORMAT = "rdzoo.weights/1"


def save(model, path: str | Path, extra: dict | None = None) -> Path:
    """Write the model's state dict to `path` as safetensors, with its spec (and `extra`, each
    value JSON-encoded) in the metadata; returns the path.

    Written to a temporary file then renamed, so a failed write leaves no partial file.
    Raises WeightsError when the file cannot be written (a full disk, say).
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "spec": json.dumps(model.spec.to_dict())}
    metadata.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file(state, str(tmp), metadata=metadata)
    except (SafetensorError, OSError) as exc:  # a full disk: leave no partial file behind
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"{path}: could not write the weights ({exc})") from None
    tmp.chmod(0o666 & ~_umask())  # save_file creates 0600: give it the mode of the run's other files
    tmp.replace(path)  # a crash mid-write never leaves a half-written file under the real name
    return path


def _umask() -> int:
    import os

    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def read_metadata(path: str | Path) -> dict:
    """The safetensors metadata of an rdzoo weights file (str -> str, the spec as JSON under "spec").

    Raises WeightsError when the file is missing, unreadable, or not one rdzoo saved.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no such weights file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if metadata.get("format") != FORMAT or "spec" not in metadata:
        raise WeightsError(f"{path}: a safetensors file without an rdzoo spec; rdzoo can only load weights it saved")
    return metadata


def load(path: str | Path):
    """Rebuild the model from the file's spec and load its tensors; returns it in eval mode.

    `path` is a .safetensors file or a folder holding model.safetensors. Raises WeightsError when
    the file is missing or damaged, its spec is invalid, or its tensors do not match the spec.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .registry import create_model
    from .spec import SpecError, from_dict

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    metadata = read_metadata(path)
    try:
        spec = from_dict(json.loads(metadata["spec"]))
    except (json.JSONDecodeError, SpecError) as exc:
        raise WeightsError(f"{path}: the spec in its metadata is invalid: {exc}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged weights ({exc})") from None
    with torch.device("meta"):
        model = create_model(spec, pretrained=False)  # the file's tensors replace the initial ones
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{path}: the tensors do not match the spec: {first}") from None
    model.eval()
    _restore_buffers(model, spec)
    return model


def _restore_buffers(model, spec) -> None:
    """Non-persistent buffers are not in the file; recompute them off the meta device."""
    from .text.embedding import sinusoidal_table

    emb = model.embed
    if hasattr(emb, "position_table"):
        emb.position_table = sinusoidal_table(spec.embedding.max_len, spec.embedding.dim)
