"""Which way the metric is better.

>>> Direction("max").better(0.9, 0.5), Direction.MIN.better(0.9, 0.5), Direction.MIN.sign
(True, False, -1.0)
>>> f"{Direction.MAX} {Direction.MIN!s}"
'max min'
>>> [str(Direction.of_metric(n)) for n in ("valid-logloss", "val_acc", "neg_log_loss", "temperature")]
['min', 'max', 'max', 'None']
>>> [str(Direction.of_metric(n)) for n in ("dice_loss", "valLoss", "f1Score", "cross_entropy", "kl_divergence")]
['min', 'min', 'max', 'min', 'min']
"""

from __future__ import annotations

import enum
import re

#: Words of a metric's name that say it falls as the model improves (a loss, an error) ...
FALLING = frozenset({"loss", "logloss", "mlogloss", "nloglik", "error", "errors", "err", "merror", "mse", "rmse", "mae",
                     "mape", "msle", "rmsle", "nll", "crossentropy", "perplexity", "ppl", "deviance", "brier", "wer",
                     "cer", "l1", "l2", "huber", "entropy", "divergence", "kl", "hinge", "regret", "cost"})
#: ... or rises (an accuracy, an area under a curve). ``neg`` (scikit-learn's negated losses) rises too.
RISING = frozenset({"acc", "accuracy", "auc", "aucpr", "auroc", "f1", "precision", "recall", "r2", "map", "ndcg",
                    "iou", "dice", "bleu", "rouge", "neg"})


class Direction(str, enum.Enum):
    MAX = "max"
    MIN = "min"

    def __str__(self) -> str:  # "max", as the user wrote it, in messages and MLflow's params
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def sign(self) -> float:
        """+1 for MAX, -1 for MIN: ``sign * metric`` is larger when better."""
        return 1.0 if self is Direction.MAX else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self is Direction.MAX else a < b

    @classmethod
    def of_metric(cls, name: str) -> "Direction | None":
        """The direction a metric's name says (``loss``, ``error`` ... fall; ``acc``, ``auc`` ...
        rise; ``neg_...``, scikit-learn's negated losses, rise), or None when it says nothing. The
        last word that says one decides, as names end in what they measure (``dice_loss`` falls)."""
        words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
        if words[:1] == ["neg"]:
            return cls.MAX
        said = [w for w in words if w in FALLING or w in RISING]
        return None if not said else cls.MIN if said[-1] in FALLING else cls.MAX
