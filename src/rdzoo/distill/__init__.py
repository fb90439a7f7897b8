"""Students that learn from a teacher (knowledge distillation): a small encoder is trained on
a fine-tuned model's logits as well as the gold labels.

The flow (`student.fit_student`): `teacher.resolve_teachers` loads each teacher run, or
fine-tunes a zoo name or spec on the same training split first and keeps that run;
`augment.transfer_set` builds the transfer set (the training texts, augmented copies of them
as Tang et al. 2019 make them, unlabelled in-domain text); `targets.teacher_targets` runs the
teachers once over it and caches their logits (`cache`: a folder, or the study's database); `train.fit` then trains
the student on the transfer set with `loss.distill_loss`. One idea a module; nothing is
imported here, so `rdzoo --help` stays light.
"""
