"""What `rdzoo train` does once its options are checked: fit a spec on data (or cross-validate
it, or train it as a student of teachers) and save the run with what `rdzoo eval` needs to read
its data again. The command line checks the options and prints the result; this does the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Training:
    """How a spec is trained: the data as given (`data`, a built-in name or a path) and how it
    was read (columns, the bad-line rule, a label-names file), an epochs override, K folds of
    cross-validation (`cv`), the run folder to save (`out`, which `overwrite` may replace), the
    teachers of a student (`teachers`: run folders, zoo names or specs) with unlabelled text,
    where fine-tuned teachers and their outputs are kept, and whether to show progress."""

    data: str
    text_col: str | None = None
    label_col: str | None = None
    on_bad_line: str = "error"
    label_names: Path | None = None
    epochs: int | None = None
    cv: int | None = None
    out: Path | None = None
    overwrite: bool = False
    teachers: list = field(default_factory=list)
    unlabeled: Path | None = None
    teacher_dir: Path = Path("runs/teachers")
    targets: str | None = None  # a folder or a storage URL (distill.cache)
    progress: bool = True


def train_run(spec, dataset, how: Training, device, precision) -> tuple[dict, str | None]:
    """Train `spec` on `dataset` (a text.data.TextData read as `how` says) on `device` at
    `precision`: K folds (`how.cv`, their mean and sd), a student of `how.teachers`, or one
    fit; save the run to `how.out` with its split record. Returns the result (the metrics, the
    data's report, `distill` for a student, `out` once saved) and, when the run could not be
    saved (a full disk), the reason: what was trained is still reported.

    Raises what train.fit, train.cross_validate and distill.student.fit_student raise."""
    from .text.data import data_report
    from .train import check_optimizer, cross_validate, fit

    report = data_report(dataset, None if how.cv else spec.train)
    if how.cv:
        report["notes"].append(f"--cv {how.cv}: {how.cv} folds of the {len(dataset.train)} training examples (seed "
                               f"{spec.train.seed}); each fold trains on the rest and holds "
                               f"{spec.train.dev_fraction:.0%} of it out as dev")
    check_optimizer(spec.train.optimizer)
    split = None
    if how.out is not None:  # the files' sha256 taken now, right after they were read
        from .text.heldout import SplitRecord

        split = SplitRecord.of(dataset, spec.train.dev_fraction, spec.train.seed)
    if how.cv:
        folds = cross_validate(spec, dataset, how.cv, epochs=how.epochs, progress=how.progress, device=device,
                               precision=precision)
        return {"name": spec.name, "data": how.data, **folds, "data_report": report}, None
    distilled = None
    if how.teachers:
        from .distill.augment import read_unlabeled
        from .distill.student import fit_student

        extra = None
        if how.unlabeled is not None:
            extra, notes = read_unlabeled(how.unlabeled, dataset.tagging)
            report["notes"] += notes
        fitted, distilled = fit_student(spec, dataset, how.teachers, unlabeled=extra, teacher_dir=how.teacher_dir,
                                        targets=how.targets, epochs=how.epochs, progress=how.progress,
                                        device=device, precision=precision)
    else:
        fitted = fit(spec, dataset, epochs=how.epochs, progress=how.progress, device=device, precision=precision)
    result = {"name": spec.name, "data": how.data, **fitted.metrics, "data_report": report}
    if distilled is not None:
        result["distill"] = distilled
    if how.out is None:
        return result, None
    from .errors import WeightsError
    from .runs import save_run
    from .text.data import builtin_names, read_label_names

    data = how.data
    # what `rdzoo eval RUN` reads the data with again: columns, label names, the held-out split's seed
    config = {"data": data, "data_path": None if data in builtin_names() else str(Path(data).expanduser().resolve()),
              "epochs": how.epochs or spec.train.epochs, "text_col": how.text_col, "label_col": how.label_col,
              "on_bad_line": how.on_bad_line,
              "label_names": read_label_names(how.label_names) if how.label_names else None,
              "label_values": dataset.label_values,  # whichever names were applied (a folder's own too)
              "data_seed": spec.train.seed, "data_report": report,
              **({"distill": distilled} if distilled is not None else {})}
    try:
        save_run(fitted, how.out, config, overwrite=how.overwrite, split=split)
        result["out"] = str(how.out)
    except (OSError, WeightsError) as exc:  # a full disk: still report what was trained, then fail
        return result, f"could not save the run to {how.out}: {getattr(exc, 'strerror', None) or exc}"
    return result, None
