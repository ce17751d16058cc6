"""Whether a ``lagom`` call is the same experiment as the one its journal holds.

Everything here only reads, so it runs in the preflight, before any side effect.
"""

from __future__ import annotations

from maggy.config import HyperparameterOptConfig
from maggy.exceptions import InvalidParameterError
from maggy.store.replay import ExperimentLog

#: The config fields that make two calls the same experiment.
IDENTITY = ("searchspace", "optimizer", "direction", "optimization_key")


def differences(previous: ExperimentLog, config: HyperparameterOptConfig) -> list[str]:
    """Every difference in the fields that make an experiment (:data:`IDENTITY`) between
    ``config`` and the journal's, in words; empty when they are the same experiment."""
    now, then = config.to_dict(), previous.config
    diffs = []
    for key in IDENTITY:
        if now[key] != then.get(key):
            if key == "searchspace":
                a, b = then.get(key) or {}, now[key]
                detail = "; ".join(f"{n}: {a.get(n)} then, {b.get(n)} now" for n in sorted(set(a) | set(b))
                                   if a.get(n) != b.get(n))
                diffs.append(f"searchspace ({detail})")
            elif key == "direction" and not config.direction_given:  # an earlier maggy defaulted to max
                diffs.append(f"direction ({then.get(key)!r} then, {now[key]!r} now, as optimization_key's name says: "
                             f"pass direction={then.get(key)!r} to continue it)")
            else:
                diffs.append(f"{key} ({then.get(key)!r} then, {now[key]!r} now)")
    return diffs


def check_same(previous: ExperimentLog, config: HyperparameterOptConfig) -> None:
    """Raise InvalidParameterError naming every difference between ``config`` and the journal's
    (``resume=True`` cannot continue an experiment that was another one)."""
    diffs = differences(previous, config)
    if diffs:
        raise InvalidParameterError(
            f"The experiment '{config.name}' in {previous.exp_dir} ran with a different " + ", ".join(diffs) +
            ", so resume=True cannot continue it. Pass resume='auto' or resume=False to start a new experiment "
            "beside it, or choose another name.")
