"""Ablation studies: leave one feature of the data or one component of the model out per trial
(``AblationStudy``, run with ``experiment.lagom(train_fn, study)``); see the user guide."""

from maggy.ablation.study import Ablation, AblationStudy

__all__ = ["Ablation", "AblationStudy"]
