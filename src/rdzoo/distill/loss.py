"""A student's loss: the teacher's logits as soft targets, mixed with the gold labels.

loss = alpha * soft + (1 - alpha) * hard (`spec.Distill`; Tang et al. 2019 write the same mix
with their alpha on the hard loss). `soft` is averaged over the
rows that have a target: every text of a classifier's batch, every word of a tagger's
that the student and a teacher both see. For a tagger with a CRF the soft loss compares
the per-word emission scores (what the model's forward returns; a CRF teacher's targets
are its emission scores too) and `hard` is the CRF's negative log-likelihood.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str,
              temperature: float = 1.0) -> torch.Tensor:
    """Per-row soft loss of (..., classes) student and teacher logits -> (...).

    mse: the mean over classes of (student - teacher)^2 (Tang et al. 2019's distillation
    objective, the squared distance between the logit vectors, divided by the number of
    classes). kl: T^2 * KL(p_teacher || p_student), both softmax(logits / T) (Hinton et al.
    2015, section 2; the T^2 keeps the gradients' size as T changes)."""
    if kind == "mse":
        return (student - teacher).pow(2).mean(-1)
    t = temperature
    log_p_student = F.log_softmax(student / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(-1) * (t * t)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, hard: torch.Tensor,
                 settings) -> torch.Tensor:
    """alpha * soft + (1 - alpha) * hard: `student` and `teacher` logits (B, classes) or
    (B, T, tags), `mask` (B,) or (B, T) the rows with a target, `hard` the gold labels'
    loss (a scalar, over the labelled rows), `settings` a spec.Distill. The soft loss is the
    mean of `soft_loss` over the masked rows (0 when none)."""
    rows = soft_loss(student[mask], teacher[mask], settings.loss, settings.temperature)
    soft = rows.sum() / mask.sum().clamp(min=1)
    return settings.alpha * soft + (1.0 - settings.alpha) * hard
