"""Fit and evaluate a spec on text data.

The loop: length-bucketed batches (`train.bucket`; else random ones), an optimizer from timm's
`create_optimizer_v2` (AdamW by default; lamb, radam, adadelta, lookahead_*
...), linear warm-up then cosine or linear decay from timm's schedulers,
label smoothing, gradient clipping, Kim's max-norm on the classifier, early
stopping on dev accuracy (dev entity F1 on entity data) with the best weights
kept, and a guard that stops on a NaN or infinite loss. A tagger's loss is
per-word cross-entropy, or with `head.crf` the CRF's negative log-likelihood.
A student (`train.distill`) trains on a transfer set with a teacher's logits as
well (distill.loss). Seeded: the same spec, data, device and precision give the same numbers.

On a GPU the loop never waits for the device: batches go through pinned
memory with `non_blocking`, the loss and its finiteness are summed on the
device and read every `SYNC_EVERY` steps and at the end of an epoch (on the
CPU, where reading costs nothing, every step), and evaluation runs in
inference mode. Mixed precision is autocast (bf16, or fp16 with a gradient
scaler); an out-of-memory error frees the device's cache and becomes a
TrainingError naming the batch size and the memory asked for.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from . import metrics
from .device import MemoryMeter, Precision, asked_for, free_cache, oom_errors, resolve_device, resolve_precision, to_device
from .distill.loss import distill_loss
from .errors import TrainingError
from .predict import crf_of, is_tagger, predict_ids, tag_names, word_starts
from .spec import Spec, SpecError, did_you_mean, load
from .text.batching import IGNORE, batches, word_ids
from .text.conll import is_entity_tagset
from .text.dataset import Split, TextData, label_set
from .text.heldout import training_splits
from .text.tokenize import PAD_ID, UNK_ID, fit_tokenizer

if TYPE_CHECKING:
    from .distill.augment import TransferSet
    from .distill.targets import Targets

SYNC_EVERY = 50  # steps between reads of the loss on a GPU (progress bar, NaN guard)


@dataclass
class FitResult:
    """What `fit` returns: the spec (with the data's real vocabulary size and classes), the trained
    model, its tokenizer, the label names in class order, the metrics and per-epoch history."""
    spec: Spec  # with the real vocabulary size and number of classes
    model: torch.nn.Module
    tokenizer: object
    label_names: list[str]
    metrics: dict
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators and make cuDNN deterministic."""
    random.seed(seed)
    torch.manual_seed(seed)  # the CPU's generator and every GPU's
    torch.backends.cudnn.deterministic = True  # cuDNN's convolutions pick no nondeterministic kernel


def check_optimizer(name: str) -> None:
    """Raise SpecError at `train.optimizer` for a name timm's create_optimizer_v2 does not know."""
    from timm.optim import list_optimizers

    known = list_optimizers()
    base = name.removeprefix("lookahead_")
    if base not in known:
        raise SpecError("train.optimizer", f"{name!r} is not an optimizer timm knows (e.g. adamw, lamb, radam, adadelta, "
                        f"sgd, lookahead_adamw){did_you_mean(base, known)}")


def make_optimizer(model, train, device=None):
    """timm's optimizer for train.optimizer; Adam(W) on a GPU gets PyTorch's fused kernel (one launch a step)."""
    from timm.optim import create_optimizer_v2

    check_optimizer(train.optimizer)
    fused = {"fused": True} if device is not None and device.type == "cuda" and \
        train.optimizer.removeprefix("lookahead_") in ("adam", "adamw") else {}
    # layer-wise lr decay (Howard and Ruder 2018; Clark et al. 2020) through timm's param groups
    decay = train.layer_decay if train.layer_decay < 1.0 and hasattr(model, "group_matcher") else None
    return create_optimizer_v2(model, opt=train.optimizer, lr=train.lr, weight_decay=train.weight_decay,
                               layer_decay=decay, **fused)


def make_scheduler(optimizer, train, steps_per_epoch: int, epochs: int):
    """Per-step schedule: linear warm-up, then cosine, linear or constant."""
    from timm.scheduler import CosineLRScheduler, PolyLRScheduler, StepLRScheduler

    total = max(epochs * steps_per_epoch, 1)
    warmup = min(int(train.warmup_epochs * steps_per_epoch), total - 1)
    common = dict(warmup_t=warmup, warmup_lr_init=train.lr * 0.01 if warmup else 0.0, t_in_epochs=False)
    if train.schedule == "cosine":
        return CosineLRScheduler(optimizer, t_initial=total, lr_min=train.lr * 0.01, **common)
    if train.schedule == "linear":
        return PolyLRScheduler(optimizer, t_initial=total, power=1.0, lr_min=0.0, **common)
    return StepLRScheduler(optimizer, decay_t=total + 1, decay_rate=1.0, **common)


def drop_words(tokens: torch.Tensor, p: float) -> torch.Tensor:
    """Word dropout (Iyyer et al. 2015): each real token becomes <unk> with chance p. Words unseen
    in training all map to <unk> at test time; without this its vector is never trained."""
    if not p:
        return tokens
    if tokens.dim() == 3:  # the word id goes; its characters stay, for the spelling to stand in
        return torch.cat([drop_words(tokens[..., 0], p).unsqueeze(-1), tokens[..., 1:]], -1)
    hit = (torch.rand(tokens.shape, device=tokens.device) < p) & (tokens != PAD_ID)
    return tokens.masked_fill(hit, UNK_ID)


def make_ema(model, decay: float):
    """timm's exponential moving average of the weights (timm train.py's --model-ema), or None.
    The warm-up lets the average follow the model closely over the first steps of a short run:
    the decay at step t is 1 - (1 + t)^(-2/3), capped at `decay` (0.99 is reached at step 1000)."""
    if not decay:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay, use_warmup=True)


def tag_loss(model, logits, y, label_smoothing: float = 0.0):
    """A tagger's loss: (B, T, K) scores, (B, T) gold tag ids (IGNORE at padding). Per-word cross-entropy,
    or with a CRF the negative log-likelihood of each sentence's tags, summed over sentences and divided by
    the words, so a learning rate means about the same with and without it (label smoothing applies
    to the cross-entropy only)."""
    crf = crf_of(model)
    if crf is None:
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, label_smoothing=label_smoothing)
    mask = y != IGNORE
    return -crf.log_likelihood(logits, y.masked_fill(~mask, 0), mask).sum() / mask.sum().clamp(min=1)


def hard_loss(model, logits, y, label_smoothing: float = 0.0):
    """The gold labels' loss over the labelled rows of a batch where some have none (IGNORE: a
    transfer set's copies and unlabelled texts): (B, K) logits and (B,) ids, or a tagger's
    (B, T, K) and (B, T) (`tag_loss` with a CRF). The cross-entropy is summed and divided by the
    labelled rows, so a batch without any gives 0 rather than mean's 0/0."""
    if logits.dim() == 3 and crf_of(model) is not None:
        return tag_loss(model, logits, y, label_smoothing)
    y = y.flatten()
    total = F.cross_entropy(logits.reshape(len(y), -1), y, ignore_index=IGNORE, reduction="sum",
                            label_smoothing=label_smoothing)
    return total / (y != IGNORE).sum().clamp(min=1)


def label_ids(labels: list, lookup: dict[str, int]) -> list:
    """Labels (or tag lists) -> class ids; -1 for a name not in `lookup`."""
    return [[lookup.get(t, -1) for t in label] if isinstance(label, list) else lookup.get(label, -1)
            for label in labels]


def evaluate(model, tokenizer, split: Split, label_names: list[str], precision: Precision | None = None) -> dict:
    """Accuracy and macro-F1 (over words, for a tagger) of a model on a split whose labels were all seen in training."""
    lookup = {name: i for i, name in enumerate(label_names)}
    if len(split) and split.tagged != is_tagger(model):
        raise TrainingError("a tagger scores tagged words (CoNLL-U) and a classifier labelled texts; this model "
                            f"is a {'tagger' if is_tagger(model) else 'classifier'} and the data is not")
    unseen = sorted(label_set(split) - set(lookup))
    if unseen:
        raise TrainingError(f"labels the model was not trained on: {', '.join(map(repr, unseen[:5]))}; "
                            f"it knows: {', '.join(label_names)}")
    gold, tagging = label_ids(split.labels, lookup), split.tagged
    pred = predict_ids(model, tokenizer.encode_batch(split.texts), words=[len(t) for t in split.texts],
                       precision=precision, starts=word_starts(tokenizer, split.texts, tagging))
    out = {"accuracy": metrics.accuracy(gold, pred, tagging),
           "macro_f1": metrics.macro_f1(gold, pred, len(label_names), tagging),
           "n": len(metrics.flat(gold, tagging))}  # texts, or words for a tagger
    if is_entity_tagset(label_names):  # entity tags: span-level scores as well
        out["entities"] = metrics.entity_scores(split.labels, tag_names(pred, label_names))
    return out


def spread_tags(tags: list[int], starts: list[int], length: int) -> list[int]:
    """Word tags -> token tags: a word's tag on its first sub-word, IGNORE elsewhere
    (later sub-words, [CLS], [SEP]), as Devlin et al. (2019) tag with BERT."""
    out = [IGNORE] * length
    for tag, pos in zip(tags, starts):
        out[pos] = tag
    return out


def fit(spec: Spec, data: TextData, *, epochs: int | None = None, progress: bool = False,
        on_epoch: Callable[[int, float], None] | None = None, max_seconds: float | None = None,
        device: str | torch.device = "auto", precision: str | Precision = "auto",
        transfer: TransferSet | None = None, targets: Targets | None = None) -> FitResult:
    """Train `spec` on `data`; return the best-on-dev model (on `device`) and its metrics.

    `on_epoch(epoch, dev_score)` runs after each epoch; it may raise to stop
    (the search's pruner does). The dev score, which also picks the epoch kept,
    is accuracy, or entity F1 on entity-tagged (BIO/IOBES) data. `max_seconds`
    stops after the epoch that crosses it. `device` is a torch.device or
    --device text (auto, cpu, cuda, cuda:N, mps); `precision` a Precision or
    --precision text (auto, fp32, bf16, fp16). The metrics add `device`,
    `precision` and `peak_memory` (bytes: CUDA's peak allocated on a GPU, the
    process's peak resident memory on the CPU). Raises DeviceError for a device
    that is not there and TrainingError when the device runs out of memory (its
    cache freed first).

    A student (`spec.train.distill` set) trains on `transfer` (distill.augment.TransferSet,
    made from `data.train`; `data.dev` must be given) with the teacher's logits for each of
    its texts, `targets` (distill.targets.Targets): loss = alpha * soft + (1 - alpha) * hard
    (distill.loss). `distill.student.fit_student` builds both. Raises SpecError for
    `train.distill` without them, or them without it.
    """
    device = device if isinstance(device, torch.device) else resolve_device(device)
    precision = precision if isinstance(precision, Precision) else resolve_precision(precision, device)
    meter = MemoryMeter(device).start()
    oom = None
    try:
        result = _fit(spec, data, epochs=epochs, progress=progress, on_epoch=on_epoch, max_seconds=max_seconds,
                      device=device, precision=precision, transfer=transfer, targets=targets)
    except oom_errors() as exc:
        oom = str(exc)  # outside this block the traceback, and the activations its frames hold, are gone
    if oom is not None:
        peak = meter.peak()
        free_cache(device)
        asked = asked_for(oom)
        raise TrainingError(f"out of memory on {device} at train.batch_size {spec.train.batch_size}"
                            f"{f' asking for {asked} more' if asked else ''} (peak {peak / 2**30:.2f} GiB allocated); "
                            "lower train.batch_size or embedding.max_len, or use --precision bf16")
    result.metrics.update(device=str(device), precision=precision.name, peak_memory=meter.peak())
    return result


def cross_validate(spec: Spec, data: TextData, k: int, *, epochs: int | None = None, progress: bool = False,
                   device: str | torch.device | None = None, precision: str | Precision | None = None) -> dict:
    """K-fold cross-validation on the training split (the MR/Subj/CR/MPQA protocol): `fit` once
    per fold of `text.folds.kfold(data, k, spec.train.seed)`, each fold training on the other
    K-1 (holding `train.dev_fraction` of them out as dev) and testing on its own.

    Returns {"cv": k, "test_accuracy", "test_accuracy_std", "macro_f1", "epochs",
    "train_seconds", "params", "folds"}: the mean and population standard deviation of
    the folds' test accuracy and the mean macro-F1 (fractions in [0, 1]), the first fold's
    epochs and parameter count, the folds' training time summed (seconds), and each fold's
    `fit` metrics in order; on entity-tagged data also "entity_f1" and "entity_f1_std"
    (mean and population sd of the folds' test entity F1). `device` and `precision` are as
    for `fit` (None: auto). Raises DataError, before any training, unless 2 <= k <= the
    training examples, for a class with one example or a fold that tests on a tag its training
    part lacks (kfold); and what `fit` raises (DeviceError, TrainingError).
    """
    from statistics import mean, pstdev

    from .text.folds import kfold

    device = resolve_device("auto" if device is None else device) if not isinstance(device, torch.device) else device
    precision = precision if isinstance(precision, Precision) else resolve_precision(precision or "auto", device)
    folds = kfold(data, k, spec.train.seed)  # every fold checked before the first is trained
    folds = [fit(spec, fold, epochs=epochs, progress=progress, device=device, precision=precision).metrics
             for fold in folds]
    accs = [f["test_accuracy"] for f in folds]
    result = {"cv": k, "test_accuracy": mean(accs), "test_accuracy_std": pstdev(accs),
              "macro_f1": mean(f["macro_f1"] for f in folds), "epochs": folds[0]["epochs"],
              "train_seconds": sum(f["train_seconds"] for f in folds), "params": folds[0]["params"], "folds": folds}
    if "entity_f1" in folds[0]:  # entity data: the folds' test entity F1 too
        result.update(entity_f1=mean(f["entity_f1"] for f in folds), entity_f1_std=pstdev(f["entity_f1"] for f in folds))
    return result


def tagger_head(spec: Spec) -> dict:
    """The overrides that make `spec` a tagger, as `fit` makes it on tagged data: a tag for every
    word (head.pool token), without BERT's pooler (it reads [CLS] for a sentence label; a tagger
    has no use for it)."""
    return {"head.pool": "token", **({"encoder.pooler": False} if getattr(spec.encoder, "pooler", False) else {})}


def _fit(spec, data, *, epochs, progress, on_epoch, max_seconds, device, precision, transfer=None,
         targets=None) -> FitResult:
    from .registry import create_model

    train_cfg = spec.train
    distill = train_cfg.distill
    if (transfer is None or targets is None) and distill is not None:
        raise SpecError("train.distill", "is a student's recipe and needs a teacher: rdzoo train ... --teacher RUN "
                                         "(distill.student.fit_student)")
    if transfer is not None and distill is None:
        raise SpecError("train.distill", "missing: a transfer set is for a student; set train.distill: {}")
    if transfer is not None and len(targets) != len(transfer):
        raise TrainingError(f"the teacher targets are for {len(targets)} texts, the transfer set has {len(transfer)}")
    if transfer is not None and (data.dev is None or not len(data.dev)):
        raise TrainingError("a student's transfer set is made from the training split; give the data a dev split "
                            "(distill.student.fit_student holds one out)")
    epochs = epochs or train_cfg.epochs
    seed_everything(train_cfg.seed)
    check_optimizer(train_cfg.optimizer)
    train_split, dev_split = training_splits(data, train_cfg.dev_fraction, train_cfg.seed)
    label_names = data.label_names
    lookup = {name: i for i, name in enumerate(label_names)}
    if data.tagging:  # the data picks the head: a tag for every word instead of one label a text
        spec = load(spec, tagger_head(spec))
    elif spec.head.pool == "token":
        raise SpecError("head.pool", f"token tags every word, but {data.name} has one label a text; "
                                     "use max, mean, first or kmax")
    elif spec.head.crf:
        raise SpecError("head.crf", f"a CRF scores tag sequences, but {data.name} has one label a text; use false")
    entity = data.tagging and is_entity_tagset(label_names)

    if transfer is None:
        tokenizer = fit_tokenizer(spec.embedding, train_split.texts, data.tagging)
        train_texts, train_gold = train_split.texts, label_ids(train_split.labels, lookup)
    else:  # a student: its vocabulary from the training and unlabelled texts (a masked word stays unknown)
        tokenizer = fit_tokenizer(spec.embedding, transfer.vocab_texts, data.tagging)
        train_texts = transfer.texts_for(tokenizer)
        train_gold = [(([IGNORE] * len(t)) if data.tagging else IGNORE) if y is None else label_ids([y], lookup)[0]
                      for t, y in zip(train_texts, transfer.labels)]
    spec = load(spec, {"embedding.vocab_size": max(len(tokenizer), 2), "head.num_classes": len(label_names)})
    # built on the CPU first: the same initial weights on every device
    model = create_model(spec, tokenizer=tokenizer, label_names=label_names).to(device)
    optimizer = make_optimizer(model, train_cfg, device)
    scaler = precision.scaler()
    train_ids = tokenizer.encode_batch(train_texts)
    # tags past embedding.max_len have no token to sit on: training drops them, scoring counts them wrong
    train_y = [y[: len(i)] if data.tagging else y for y, i in zip(train_gold, train_ids)]
    train_starts = word_starts(tokenizer, train_texts, data.tagging)
    if train_starts is not None:
        train_y = [spread_tags(y, s, len(i)) for y, s, i in zip(train_y, train_starts, train_ids)]
    # a student's soft targets sit on each word's token: its first sub-word, or the word's own token
    positions = None if transfer is None or not data.tagging else \
        train_starts or [list(range(len(i))) for i in train_ids]
    dev_ids = tokenizer.encode_batch(dev_split.texts)
    dev_starts = word_starts(tokenizer, dev_split.texts, data.tagging)
    dev_gold = label_ids(dev_split.labels, lookup)
    dev_words = [len(t) for t in dev_split.texts]
    steps_per_epoch = math.ceil(len(train_ids) / train_cfg.batch_size)
    scheduler = make_scheduler(optimizer, train_cfg, steps_per_epoch, epochs)
    classifier = getattr(model.head, "fc", None)
    rng = random.Random(train_cfg.seed)
    ema = make_ema(model, train_cfg.ema_decay)
    scored = ema.module if ema else model  # what dev accuracy, the checkpoint and the result come from

    bar = _Progress(epochs * steps_per_epoch, spec.name) if progress else None
    history, best_score, best_acc, best_state, best_epoch, stale = [], -1.0, -1.0, None, 0, 0
    step, tokens_seen, start = 0, 0, time.perf_counter()
    sync_every = sync_interval(device)
    acc_dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            # running sums on the device: reading a GPU tensor waits for every step queued before it
            epoch_loss, n_batches = torch.zeros((), dtype=acc_dtype, device=device), 0
            guard = _FiniteGuard(device, train_cfg, eager=sync_every == 1)
            for tokens, y, group in batches(train_ids, train_y, train_cfg.batch_size, shuffle=True, rng=rng,
                                            bucket=train_cfg.bucket, tagging=data.tagging):
                tokens = drop_words(tokens, train_cfg.word_dropout)
                tokens_seen += int((word_ids(tokens) != PAD_ID).sum())  # counted on the host, before the copy
                tokens, y = to_device(tokens, device), to_device(y, device)
                with precision.autocast():
                    logits = model(tokens)
                if transfer is not None:  # a student: the teacher's logits and the gold labels where there are any
                    soft, has = targets.batch(group, positions, logits.shape[1] if data.tagging else 0)
                    hard = hard_loss(model, logits.float(), y, train_cfg.label_smoothing)
                    loss = distill_loss(logits.float(), to_device(soft, device), to_device(has, device), hard, distill)
                elif data.tagging:
                    loss = tag_loss(model, logits.float(), y, train_cfg.label_smoothing)
                else:
                    loss = F.cross_entropy(logits.float(), y, ignore_index=IGNORE,
                                           label_smoothing=train_cfg.label_smoothing)
                guard.add(loss, epoch, step + 1)
                if (step + 1) % sync_every == 0:
                    guard.check(epoch)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:  # fp16: scale the loss up so small gradients do not underflow to zero
                    scaler.scale(loss).backward()
                    if train_cfg.clip_grad:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.clip_grad)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if train_cfg.clip_grad:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.clip_grad)
                    optimizer.step()
                step += 1
                scheduler.step_update(step)
                if train_cfg.max_norm and isinstance(classifier, torch.nn.Linear):
                    with torch.no_grad():  # Kim (2014): rescale classifier rows to an L2 norm of at most s
                        classifier.weight.data = torch.renorm(classifier.weight.data, 2, 0, train_cfg.max_norm)
                if ema:
                    ema.update(model, step)
                epoch_loss += loss.detach()
                n_batches += 1
                if bar:
                    bar.advance(epoch, epochs, (epoch_loss / n_batches).item() if step % sync_every == 0 else None,
                                best_score)
            guard.check(epoch)
            epoch_loss = epoch_loss.item()  # the one read of the epoch
            dev_pred = predict_ids(scored, dev_ids, words=dev_words, precision=precision, starts=dev_starts)
            dev_acc = metrics.accuracy(dev_gold, dev_pred, data.tagging)
            history.append({"epoch": epoch, "loss": epoch_loss / max(n_batches, 1), "dev_accuracy": dev_acc,
                            "seconds": time.perf_counter() - start})
            if entity:
                history[-1]["dev_entity_f1"] = metrics.entity_scores(dev_split.labels,
                                                                     tag_names(dev_pred, label_names))["f1"]
            score = history[-1]["dev_entity_f1"] if entity else dev_acc
            if score > best_score:
                best_score, best_acc, best_epoch, stale = score, dev_acc, epoch, 0
                best_state = {k: v.detach().clone() for k, v in scored.state_dict().items()}
            else:
                stale += 1
            if bar:
                bar.advance(epoch, epochs, epoch_loss / max(n_batches, 1), best_score, steps=0)
            if on_epoch is not None:
                on_epoch(epoch, score)
            if train_cfg.patience and stale >= train_cfg.patience:
                break
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
    finally:
        if bar:
            bar.close()
    train_seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    result = {"dev_accuracy": best_acc, "best_epoch": best_epoch, "epochs": len(history),
              "train_seconds": round(train_seconds, 3), "tokens_per_second": round(tokens_seen / max(train_seconds, 1e-9)),
              "params": sum(p.numel() for p in model.parameters())}
    if entity:
        result["dev_entity_f1"] = best_score
    if data.test is not None and len(data.test):
        test = evaluate(model, tokenizer, data.test, label_names, precision)
        result.update(test_accuracy=test["accuracy"], macro_f1=test["macro_f1"])
    else:
        test = evaluate(model, tokenizer, dev_split, label_names, precision)
        result.update(test_accuracy=None, macro_f1=test["macro_f1"])
    if entity:  # test entity scores (dev, without a test split), per type too
        e = test["entities"]
        result.update(entity_precision=e["precision"], entity_recall=e["recall"], entity_f1=e["f1"],
                      entity_f1_per_type={k: v["f1"] for k, v in e["per_type"].items()})
    return FitResult(spec, model, tokenizer, label_names, result, history)


def sync_interval(device) -> int:
    """Steps between host reads of the loss: every step on the CPU, where a read costs nothing."""
    return 1 if device.type == "cpu" else SYNC_EVERY


class _FiniteGuard:
    """Stops on a NaN or infinite loss. On the CPU it checks every step, before the step is
    taken. On a GPU it reads nothing a step: the first step whose loss is not finite, and that
    loss, are kept on the device, and `check` reads them (every SYNC_EVERY steps)."""

    def __init__(self, device, train_cfg, eager: bool):
        self.eager, self.cfg = eager, train_cfg
        if not self.eager:
            self.first = torch.zeros((), dtype=torch.long, device=device)  # 0 = every loss so far was finite
            self.value = torch.zeros((), device=device)

    def add(self, loss, epoch: int, step: int) -> None:
        if self.eager:
            if not torch.isfinite(loss):
                self._stop(loss.item(), epoch, step)
            return
        bad = ~torch.isfinite(loss.detach()) & (self.first == 0)
        self.first = torch.where(bad, step, self.first)
        self.value = torch.where(bad, loss.detach().float(), self.value)

    def check(self, epoch: int) -> None:
        if not self.eager and int(self.first):
            self._stop(self.value.item(), epoch, int(self.first))

    def _stop(self, value: float, epoch: int, step: int):
        raise TrainingError(f"the loss became {value} at epoch {epoch}, step {step}; lower train.lr "
                            f"(now {self.cfg.lr:g}) or set train.clip_grad (now {self.cfg.clip_grad:g})")


class _Progress:
    """A rich progress bar: epoch, loss, best dev accuracy and batches per second."""

    def __init__(self, total: int, name: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeRemainingColumn())
        self.task = self.progress.add_task(name, total=total, status="")
        self.start = time.perf_counter()
        self.done = 0
        self.progress.start()

    def advance(self, epoch, epochs, loss, best_acc, steps: int = 1):
        """`loss` None: not read this step (on a GPU, the loss is read every SYNC_EVERY steps)."""
        self.done += steps
        if loss is None:
            self.progress.update(self.task, advance=steps)
            return
        speed = self.done / max(time.perf_counter() - self.start, 1e-9)
        dev = f"best dev {best_acc:.3f}" if best_acc >= 0 else "best dev -----"
        self.progress.update(self.task, advance=steps,
                             status=f"epoch {epoch}/{epochs}  loss {loss:.3f}  {dev}  {speed:.1f} batch/s")

    def close(self):
        self.progress.stop()
