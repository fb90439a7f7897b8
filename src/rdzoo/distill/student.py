"""A student's whole path: teachers, transfer set, teacher outputs, training.

`fit_student` holds out the dev split first when the data has none (as `train.fit`
would, with the student's train.dev_fraction and seed), so that the teachers fine-tuned
here, the transfer set and the student all share one training split and one dev split,
and nothing of dev or test reaches the student's training texts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path


def with_dev(data, train_cfg):
    """`data` with a dev split: its own, else the one `train.fit` holds out of train
    (train_cfg.dev_fraction, seeded with train_cfg.seed)."""
    from ..text.heldout import training_splits

    train, dev = training_splits(data, train_cfg.dev_fraction, train_cfg.seed)
    return replace(data, train=train, dev=dev)


def fit_student(spec, data, teachers: list[str], *, unlabeled: list | None = None,
                teacher_dir: str | Path = "runs/teachers", targets: str | Path | None = None,
                epochs: int | None = None, progress: bool = False, device="auto", precision="auto"):
    """Train `spec` as a student of `teachers` (run folders, zoo names or specs; several: their
    mean logits) on `data`, and return (train.FitResult, what the distillation did).

    `spec.train.distill` holds the settings (its defaults when the spec has no such section);
    `unlabeled`: extra in-domain texts (word lists for tagging data) taught by the teachers
    alone; `teacher_dir`: where teachers fine-tuned here are kept (teacher.fine_tune);
    `targets`: where the teacher outputs are cached, a folder or a storage URL
    (`targets.teacher_targets`; default: the folder `<first teacher>/targets`).
    The second value is {"teachers": [Teacher.describe()...], "transfer": TransferSet.summary(),
    "targets": where the cache keeps them (a file, or a database's table and key)}.

    Raises SpecError at `teachers` for a teacher that is not there or does not fit the data, at
    `targets` for a cache that cannot be named so (before any teacher is fine-tuned),
    and what train.fit raises."""
    from ..device import resolve_device, resolve_precision
    from ..train import fit
    from .augment import transfer_set
    from .cache import open_cache
    from .teacher import resolve_teachers
    from .targets import teacher_targets

    if spec.train.distill is None:
        spec = spec.replace({"train.distill": {}})
    settings = spec.train.distill
    device = resolve_device(device) if isinstance(device, str) else device
    precision = resolve_precision(precision, device) if isinstance(precision, str) else precision
    if targets is not None:
        open_cache(targets)  # a cache that cannot be named so is refused before any teacher is fine-tuned
    data = with_dev(data, spec.train)
    found = resolve_teachers(list(teachers), data, teacher_dir=teacher_dir, progress=progress, device=device,
                             precision=precision)
    transfer = transfer_set(data.train.texts, data.train.labels, settings, spec.train.seed, unlabeled)
    soft = teacher_targets([t.run for t in found], transfer.texts, transfer.settings, data.label_names, targets,
                           device=device, precision=precision, progress=progress)
    info = {"teachers": [t.describe() for t in found], "transfer": transfer.summary(), "targets": soft.source}
    del found  # the teachers' weights are done with: their memory goes to the student
    result = fit(spec, data, epochs=epochs, progress=progress, device=device, precision=precision,
                 transfer=transfer, targets=soft)
    return result, info
