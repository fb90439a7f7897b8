"""A trained run on disk: weights, tokenizer, training config and metrics.

    runs/r18/
      model.safetensors   weights, with the spec and label names in the metadata
      tokenizer.json      the vocabulary built from the training split
      config.json         what was trained on, and how
      metrics.json        dev/test accuracy, macro-F1, time, parameters
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .weights import WeightsError, read_metadata


@dataclass
class Run:
    model: object
    tokenizer: object
    label_names: list[str]
    path: Path | None = None

    @property
    def tagger(self) -> bool:
        from .train import is_tagger

        return is_tagger(self.model)

    def predict(self, texts: list[str]) -> list:
        """A label a text; a tagger gives a tag for each whitespace-separated word (None past max_len)."""
        from .train import predict_ids

        if not self.tagger:
            return [self.label_names[i] for i in predict_ids(self.model, self.tokenizer.encode_batch(texts))]
        words = [t.split() for t in texts]
        pred = predict_ids(self.model, self.tokenizer.encode_batch(words), words=[len(w) for w in words])
        return [[self.label_names[i] if i >= 0 else None for i in tags] for tags in pred]

    def entities(self, texts: list[str]) -> list[list[dict]]:
        """An entity tagger's entities in each text: {text, type, start, end}, character offsets (end exclusive)."""
        from .text.conll import entity_spans

        return [entity_spans(t, tags) for t, tags in zip(texts, self.predict(texts))]

    def evaluate(self, split) -> dict:
        from .train import evaluate

        return evaluate(self.model, self.tokenizer, split, self.label_names)


def save_run(result, out: str | Path, config: dict) -> Path:
    from .text.tokenize import save_tokenizer
    from .weights import save

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save(result.model, out / "model.safetensors", extra={"label_names": result.label_names})
    save_tokenizer(result.tokenizer, out / "tokenizer.json")
    (out / "config.json").write_text(json.dumps({**config, "spec": result.spec.to_dict()}, indent=2))
    (out / "metrics.json").write_text(json.dumps({**result.metrics, "history": result.history}, indent=2))
    return out


def load_run(path: str | Path) -> Run:
    from .text.tokenize import load_tokenizer
    from .weights import load

    path = Path(path)
    if not (path / "model.safetensors").is_file():
        raise WeightsError(f"{path}: not a run folder (no model.safetensors); train one with `rdzoo train ... --out {path}`")
    metadata = read_metadata(path / "model.safetensors")
    model = load(path / "model.safetensors")
    try:
        tokenizer = load_tokenizer(path / "tokenizer.json")
        label_names = json.loads(metadata["label_names"])
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: incomplete run folder ({exc})") from None
    return Run(model, tokenizer, label_names, path)
