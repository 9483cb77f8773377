"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a big teacher's
softened predictions, on the labelled images and on unlabeled ones. Three modules, one idea each:

- `kd`: the loss (`kd_loss`, its two terms apart: `kd_terms`; why T^2: `t_squared_gradients`), `soft_targets`,
  and `distill`, which trains any student on any frozen
  teacher (each model with its own preprocessing; the teacher runs once).
- `digits`: the lesson on scikit-learn's digits with the shipped teacher (`make_teacher`, `load_teacher`),
  teacher vs labels-only student vs KD student (`three_way`, `three_way_live`), one KD run opened up
  (`inside_kd`: the T^2 gradients, the student's softmax at T and at 1, the soft and hard terms' curves), the
  alpha x T `sweep`, and
  the command line (`python -m cvdemo.distill three-way | sweep | make-teacher`).
- `image_students`: any classifier (a Transfer-tab model, the ImageNet network) into a small image student
  (`distill_any`, `distill_classifier`), `save_student`, `right_way_round`.

    from cvdemo.distill import distill, distill_any, kd_loss, soft_targets, sweep, three_way, three_way_live
    for event in distill(teacher, student, images, labels, unlabeled, teacher_pre, student_pre,
                         config=TrainConfig(epochs=20), T=4, alpha=0.9): ...   # Events from cvdemo.train
    result = three_way(seeds=(0, 1, 2))    # teacher vs student on labels alone vs student with KD (digits)
    print(format_table(result))
    for event in distill_any("tf_efficientnet_lite0", my_dataset): ...   # any classifier -> a small image student
"""
from .digits import (CHECKPOINTS, build_student, digits_student_input, digits_teacher_input, format_table,
                     inside_kd, load_teacher, main, make_teacher, sweep, sweep_comparison, three_way, three_way_live)
from .image_students import (STUDENTS, build_image_student, distill_any, distill_classifier, distill_plan,
                             right_way_round, save_student, student_data_config)
from .kd import (TransferSet, distill, entropy_bits, kd_loss, kd_terms, soft_targets, t_squared_gradients,
                 teacher_logits, temperatures_for)

__all__ = ["CHECKPOINTS", "STUDENTS", "TransferSet", "build_image_student", "build_student", "digits_student_input",
           "digits_teacher_input", "distill", "distill_any", "distill_classifier", "distill_plan", "entropy_bits",
           "format_table", "inside_kd", "kd_loss", "kd_terms", "load_teacher", "main", "make_teacher",
           "right_way_round", "save_student", "soft_targets", "student_data_config", "sweep", "sweep_comparison",
           "t_squared_gradients", "teacher_logits", "temperatures_for", "three_way", "three_way_live"]
