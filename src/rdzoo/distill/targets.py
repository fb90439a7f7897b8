"""Teacher outputs over a transfer set, computed once and cached.

`teacher_targets(teachers, texts, settings, label_names, cache)` returns the
teachers' mean logits for each text (an ensemble's targets are its members' mean
logits): one row a text for classifiers; for taggers one row a word, the rows of all
texts stacked, with `offsets` marking where each text's rows begin. Each teacher reads
the texts with its own tokenizer (a masked word as its own mask token, see
`augment.for_tokenizer`) and scores each word from its first sub-word, so a student
with another tokenizer gets targets by example and word, never by token id. A word past
a teacher's `embedding.max_len` has no score: its row is NaN, and the student's soft
loss leaves it out.

The targets are kept under a key that hashes each teacher's weights and tokenizer files,
the label order, the texts and the settings that made them, as the bytes of one
safetensors file, in a cache (`distill.cache`) the caller names: a folder (by default
`<first teacher's run>/targets/`), or a storage URL whose database keeps them in the
table `rdzoo_targets`, so that every worker of a study reads the same outputs. They are
computed once per key: the first process to store them wins, and one that computed them
at the same moment goes on with the stored ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import StoreError

FORMAT = "rdzoo.targets/1"
TEACHER_BATCH = 256  # texts a forward pass


@dataclass
class Targets:
    """Teacher logits for a transfer set, columns in the student's label order.

    `logits` is (texts, classes) for a classifier; for a tagger (words of all texts, tags)
    with `offsets` (texts + 1,): text i's words are rows offsets[i]:offsets[i + 1], NaN for a
    word no teacher saw. `source`: where the cache keeps them (a file, or a database's table
    and key: `distill.cache`)."""

    logits: torch.Tensor
    offsets: torch.Tensor | None = None
    source: str | None = None

    def __len__(self) -> int:
        return len(self.logits) if self.offsets is None else len(self.offsets) - 1

    @property
    def tagged(self) -> bool:
        """Whether the targets are per word (a tagger's)."""
        return self.offsets is not None

    def example(self, i: int) -> torch.Tensor:
        """Text i's targets: (classes,), or (words, tags) for a tagger."""
        if self.offsets is None:
            return self.logits[i]
        return self.logits[int(self.offsets[i]): int(self.offsets[i + 1])]

    def batch(self, group: list[int], positions: list[list[int]] | None = None,
              length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets of the texts in `group` (a batch's indices) and where they hold: a
        classifier's (B, classes) and a (B,) mask of ones; a tagger's (B, length, tags) and
        (B, length) mask, word j of text i placed at the student's token `positions[i][j]` (its
        first sub-word), zero and masked where the student has no word or no teacher saw it."""
        if self.offsets is None:
            return self.logits[group], torch.ones(len(group), dtype=torch.bool)
        out = torch.zeros(len(group), length, self.logits.shape[1])
        mask = torch.zeros(len(group), length, dtype=torch.bool)
        for b, i in enumerate(group):
            rows, pos = self.example(i), positions[i]
            n = min(len(pos), len(rows))
            at = torch.as_tensor(pos[:n], dtype=torch.long)
            out[b, at] = rows[:n]
            mask[b, at] = True
        mask &= out.isfinite().all(-1)  # a word no teacher saw
        return out.nan_to_num(0.0), mask


# --- running a teacher ---------------------------------------------------------------


def column_order(teacher_labels: list[str], label_names: list[str]) -> list[int]:
    """For each student label, its column in the teacher's logits. ValueError naming the labels
    when the two sets differ (`teacher.check_teacher` says it to users first)."""
    index = {name: i for i, name in enumerate(teacher_labels)}
    if set(index) != set(label_names):
        raise ValueError(f"teacher labels {sorted(index)} differ from the student's {sorted(label_names)}")
    return [index[name] for name in label_names]


@torch.inference_mode()
def teacher_outputs(run, texts: list, label_names: list[str], device=None, precision=None,
                    progress=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One teacher's logits for `texts` (strings, or word lists for a tagger), columns in
    `label_names`' order: (texts, classes), or for a tagger (words, tags) and the offsets
    (texts + 1,) of each text's rows (a word past the teacher's max_len: a row of NaN).
    Runs on `device` (default: where the run's model is) at `precision` (default fp32);
    `progress(n)` is called after each batch of n texts."""
    from ..device import to_device
    from ..text.batching import batches
    from ..train import is_tagger, model_device, word_starts
    from .augment import for_tokenizer

    model = run.model.eval()
    if device is not None:
        model.to(device)
    device = model_device(model)
    autocast = precision.autocast if precision is not None else contextlib.nullcontext
    order = torch.tensor(column_order(run.label_names, label_names), dtype=torch.long)
    texts = for_tokenizer(texts, run.tokenizer)
    ids = run.tokenizer.encode_batch(texts)
    tagger = is_tagger(model)
    starts = word_starts(run.tokenizer, texts) if tagger else None
    out: list = [None] * len(texts)
    for tokens, _, group in batches(ids, None, TEACHER_BATCH):
        with autocast():
            logits = model(to_device(tokens, device))
        logits = logits.float().cpu()[..., order]
        for b, i in enumerate(group):
            if not tagger:
                out[i] = logits[b]
                continue
            words = len(texts[i])
            pos = starts[i] if starts is not None else list(range(min(len(ids[i]), words)))
            rows = torch.full((words, len(order)), float("nan"))
            rows[: len(pos)] = logits[b, pos]
            out[i] = rows
        if progress is not None:
            progress(len(group))
    if not tagger:
        return (torch.stack(out) if out else torch.zeros(0, len(order))), None
    lengths = torch.tensor([0] + [len(r) for r in out], dtype=torch.long)
    return (torch.cat(out) if out else torch.zeros(0, len(order))), lengths.cumsum(0)


# --- the cache -------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (a teacher's weights: a retrained teacher gets a new key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(teachers: list, texts: list, settings: dict, label_names: list[str]) -> str:
    """The targets' key: a hash of each teacher's weights and tokenizer files (in order), the
    label order, the texts and the settings; 24 hex digits."""
    digest = hashlib.sha256(FORMAT.encode())
    for run in teachers:
        for name in ("model.safetensors", "tokenizer.json"):
            digest.update(file_digest(Path(run.path) / name).encode())
    digest.update(json.dumps([label_names, settings], sort_keys=True, default=str).encode())
    digest.update(json.dumps(texts, ensure_ascii=False).encode())
    return digest.hexdigest()[:24]


def decode_targets(payload: bytes, n_texts: int) -> Targets | None:
    """The targets in a cached payload (a safetensors file's bytes), or None when it cannot be
    read or does not hold `n_texts` texts' targets (a damaged entry: they are computed again)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(payload)
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    targets = Targets(tensors.get("logits"), tensors.get("offsets"))
    if targets.logits is None or targets.logits.dim() != 2 or len(targets) != n_texts:
        return None
    if targets.offsets is not None and (targets.offsets.dim() != 1 or int(targets.offsets[-1]) != len(targets.logits)):
        return None
    return targets


def encode_targets(targets: Targets, metadata: dict) -> bytes:
    """`targets` as a safetensors file's bytes, `metadata` (JSON-able values) in its header."""
    from safetensors.torch import save

    tensors = {"logits": targets.logits.contiguous()}
    if targets.offsets is not None:
        tensors["offsets"] = targets.offsets.contiguous()
    return save(tensors, metadata={"format": FORMAT, **{k: json.dumps(v) for k, v in metadata.items()}})


def teacher_targets(teachers: list, texts: list, settings: dict, label_names: list[str],
                    cache: str | Path | None = None, *, device=None, precision=None,
                    progress: bool = False) -> Targets:
    """The teachers' mean logits for `texts`, from the cache when it holds them, else computed
    (in batches, with a progress bar when `progress`) and cached.

    `teachers`: runs.Run objects loaded from their folders (their weights file is part of the
    key); `settings`: what made the texts (augmentation settings and seed), part of the key;
    `label_names`: the student's label order; `cache`: a folder, or a storage URL whose
    database keeps them (`distill.cache.open_cache`; default: the folder `<first teacher's
    run>/targets`). Where another process stored the same key first, its targets are
    returned, so every process reads one value. A damaged entry is computed again.

    Raises ValueError for teachers whose labels differ from `label_names`, SpecError at
    `targets` for a cache that cannot be named so, OSError when a folder cannot be written,
    StoreError when a database cannot be used."""
    from .cache import open_cache

    key = cache_key(teachers, texts, settings, label_names)
    store = open_cache(cache if cache is not None else Path(teachers[0].path) / "targets")
    payload = store.get(key)
    if payload is not None:
        cached = decode_targets(payload, len(texts))
        if cached is not None:
            cached.source = store.where(key)
            return cached
        store.discard(key, payload)
    bar = _Bar(len(texts) * len(teachers), f"teacher outputs ({len(texts):,} texts)") if progress else None
    try:
        outputs = [teacher_outputs(run, texts, label_names, device, precision, bar.advance if bar else None)
                   for run in teachers]
    finally:
        if bar:
            bar.close()
    targets = Targets(torch.stack([o[0] for o in outputs]).mean(0), outputs[0][1], store.where(key))
    payload = encode_targets(targets, {"teachers": [str(run.path) for run in teachers], "texts": len(texts),
                                       "label_names": label_names, "settings": settings})
    stored = store.put(key, payload)
    if stored is not payload:  # another process was first: its targets, so that every reader has the same
        first = decode_targets(stored, len(texts))
        if first is None:
            raise StoreError(f"{store.where(key)}: the teacher outputs another process stored are damaged and "
                             "could not be replaced; delete them and run again")
        first.source = targets.source
        return first
    return targets


class _Bar:
    """A rich progress bar over texts scored."""

    def __init__(self, total: int, name: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn())
        self.task = self.progress.add_task(name, total=total)
        self.progress.start()

    def advance(self, n: int) -> None:
        """n more texts scored."""
        self.progress.update(self.task, advance=n)

    def close(self) -> None:
        """Stop drawing the bar."""
        self.progress.stop()
