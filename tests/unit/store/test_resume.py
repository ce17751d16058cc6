"""Whether a call is the experiment its journal holds: what differs, in words."""

from __future__ import annotations

import types

from maggy import HyperparameterOptConfig, Searchspace
from maggy.store.resume import differences

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))


def journal_of(config: HyperparameterOptConfig, **changed) -> types.SimpleNamespace:
    """What an ExperimentLog offers ``differences``: the config it recorded."""
    return types.SimpleNamespace(config={**config.to_dict(), **changed})


def test_a_direction_that_now_follows_the_keys_name_says_how_to_continue_the_old_experiment():
    # an earlier maggy ran optimization_key='val_loss' with its default, max; today's default is min
    config = HyperparameterOptConfig(searchspace=SP, optimization_key="val_loss")
    (diff,) = differences(journal_of(config, direction="max"), config)
    assert diff.startswith("direction ('max' then, 'min' now") and "pass direction='max' to continue it" in diff


def test_a_direction_given_differently_is_named_plainly():
    config = HyperparameterOptConfig(searchspace=SP, direction="min")
    assert differences(journal_of(config, direction="max"), config) == ["direction ('max' then, 'min' now)"]
    assert differences(journal_of(config), config) == []
