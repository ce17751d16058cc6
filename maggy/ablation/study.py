"""An ablation study: what a model loses when one feature of its data, or one of its components,
is left out (leave-one-component-out), each removal one trial on maggy's engine.

The study becomes a searchspace of one categorical dimension, ``ablation``, whose values name
the trials: ``"base"`` (nothing left out, always run first) and ``"<kind>:<name>"`` for each
feature, component and group. Grid search runs each once; the journal, resume, gangs and MLflow
work as for any experiment. On the worker, ``train_fn`` gets an :class:`Ablation` in place of
the name. This module is imported on the executors: it imports nothing of the driver.

>>> study = AblationStudy(features=["age", "income"], components=["encoder.dropout"],
...                       groups={"demographics": ["age", "income"]})
>>> study.names()
['base', 'feature:age', 'feature:income', 'component:encoder.dropout', 'group:demographics']
>>> a = study.ablation("group:demographics")
>>> a.name, a.kind, a.features, a.components
('demographics', 'group', ('age', 'income'), ())
>>> study.ablation("base").name is None
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from maggy.exceptions import InvalidParameterError

#: The trial with nothing left out.
BASE = "base"
#: The kinds of removal, as the trial names and ``result.ablation`` give them.
KINDS = ("feature", "component", "group")


@dataclass(frozen=True)
class Ablation:
    """What one trial of an ablation study leaves out; ``train_fn(ablation=...)`` gets it.

    ``name`` is None for the base trial. :meth:`drop` takes the left-out columns out of a pandas
    DataFrame or a pyarrow Table; :meth:`apply` replaces the left-out submodules of a torch module.
    """

    name: str | None
    kind: str | None
    features: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    #: Factories of the modules that stand in for components (default ``torch.nn.Identity``).
    replacements: Mapping[str, Callable[[], Any]] = field(default_factory=dict)

    def drop(self, data: Any) -> Any:
        """``data`` without the left-out feature columns: a pandas DataFrame or a pyarrow Table.
        A column it does not have fails the trial with a KeyError naming it."""
        if not self.features:
            return data
        arrow = hasattr(data, "column_names")  # a pyarrow Table (its .columns are the arrays)
        columns = list(data.column_names) if arrow else list(data.columns)
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise KeyError(f"ablation {self.name!r} leaves out {missing}, which the data does not have "
                           f"(its columns: {columns[:50]})")
        if arrow:
            return data.drop_columns(list(self.features))
        return data.drop(columns=list(self.features))

    def apply(self, module: Any) -> Any:
        """``module`` with each left-out submodule (a dotted path, as ``named_modules()`` gives
        it) replaced, in place, by its replacement or ``torch.nn.Identity()``; returns it."""
        if not self.components:
            return module
        import torch

        known = dict(module.named_modules())
        missing = [c for c in self.components if c not in known]
        if missing:
            raise KeyError(f"ablation {self.name!r} leaves out {missing}, which the model does not have "
                           f"(its submodules: {[n for n in known if n][:50]})")
        for path in self.components:
            make = self.replacements.get(path, torch.nn.Identity)
            module.set_submodule(path, make())
        return module


class AblationStudy:
    """Which features and components to leave out, one at a time, and which groups together.

    Args:
        features: column names of the data ``train_fn`` reads (``ablation.drop(data)``).
        components: dotted paths of torch submodules (``ablation.apply(model)``).
        groups: a name for each set of features and components to leave out together; each
            member must be one of ``features`` or ``components``.
        replacements: for a component, a function returning the module that stands in for it
            (default ``torch.nn.Identity``).
        columns: the data's columns (a list, a DataFrame or a pyarrow schema), to check
            ``features`` before anything runs.
        model: the model (or a function returning it), to check ``components`` before anything runs.

    Pass it to ``experiment.lagom(train_fn, study, ...)``; ``train_fn`` takes ``ablation``.
    """

    def __init__(self, features: Sequence[str] = (), components: Sequence[str] = (),
                 groups: Mapping[str, Sequence[str]] | None = None,
                 replacements: Mapping[str, Callable[[], Any]] | None = None,
                 columns: Any = None, model: Any = None) -> None:
        self.features = _names("features", features)
        self.components = _names("components", components)
        self.groups = {str(g): tuple(_names(f"groups[{g!r}]", members)) for g, members in (groups or {}).items()}
        self.replacements = dict(replacements or {})
        if not (self.features or self.components or self.groups):
            raise InvalidParameterError(
                "The ablation study is empty: name features=[...] (columns) and/or components=[...] (torch submodules) "
                "to leave out.")
        both = sorted(set(self.features) & set(self.components))
        if both:
            raise InvalidParameterError(f"{both} are named both as features and as components; name each once.")
        declared = set(self.features) | set(self.components)
        for group, members in self.groups.items():
            if not members:
                raise InvalidParameterError(f"groups[{group!r}] is empty; list the features and components it leaves out.")
            strangers = [m for m in members if m not in declared]
            if strangers:
                raise InvalidParameterError(
                    f"groups[{group!r}] names {strangers}, which are neither in features nor in components; "
                    "add them there (each is then also left out alone).")
        unknown = sorted(set(self.replacements) - set(self.components))
        if unknown:
            raise InvalidParameterError(f"replacements name {unknown}, which are not in components {self.components}.")
        if columns is not None:
            have = _columns(columns)
            missing = [f for f in self.features if f not in have]
            if missing:
                raise InvalidParameterError(f"features {missing} are not columns of the data (it has {have[:50]}).")
        if model is not None:
            module = model() if callable(model) and not hasattr(model, "named_modules") else model
            have = [n for n, _ in module.named_modules() if n]
            missing = [c for c in self.components if c not in have]
            if missing:
                raise InvalidParameterError(
                    f"components {missing} are not submodules of the model (it has {have[:50]}); use the dotted "
                    "paths that model.named_modules() gives.")

    def names(self) -> list[str]:
        """The trials' names, the base first: the values of the searchspace's ``ablation``."""
        return [BASE, *(f"feature:{f}" for f in self.features), *(f"component:{c}" for c in self.components),
                *(f"group:{g}" for g in self.groups)]

    def ablation(self, trial: str) -> Ablation:
        """What the trial named ``trial`` (one of :meth:`names`) leaves out."""
        if trial == BASE:
            return Ablation(None, None)
        kind, _, name = trial.partition(":")
        if kind == "feature":
            return Ablation(name, kind, features=(name,))
        if kind == "component":
            return Ablation(name, kind, components=(name,), replacements=self._replacing([name]))
        members = self.groups[name]
        return Ablation(name, kind, features=tuple(m for m in members if m in self.features),
                        components=tuple(m for m in members if m in self.components),
                        replacements=self._replacing(members))

    def _replacing(self, names: Iterable[str]) -> dict[str, Callable[[], Any]]:
        return {n: self.replacements[n] for n in names if n in self.replacements}

    def bind(self, train_fn: Callable) -> Callable:
        """``train_fn`` as the workers call it: the trial's name in ``ablation`` becomes its
        :class:`Ablation` (the signature stays ``train_fn``'s)."""
        @functools.wraps(train_fn)
        def run(*args: Any, ablation: str, **kwargs: Any) -> Any:
            return train_fn(*args, ablation=self.ablation(ablation), **kwargs)
        return run


def _names(what: str, names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise InvalidParameterError(f"{what} must be a list of non-empty names; got {names!r}.")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise InvalidParameterError(f"{what} names {dupes} more than once.")
    return tuple(names)


def _columns(columns: Any) -> list[str]:
    if hasattr(columns, "columns"):  # a DataFrame
        return [str(c) for c in columns.columns]
    if hasattr(columns, "names"):  # a pyarrow schema
        return list(columns.names)
    return [str(c) for c in columns]
