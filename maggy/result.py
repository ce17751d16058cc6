"""What ``lagom`` returns: the best trial (or, with several objectives, the Pareto front) and a
table of every trial."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from maggy.ablation.table import ablation_table
from maggy.search.best import pareto_front
from maggy.search.objectives import NoSingleBestError, Objectives
from maggy.trial import FrozenTrial, Trial, TrialState, checkpoint_name

_BASE_COLUMNS = ["trial_id", "state"]
_TAIL_COLUMNS = ["metric", "steps", "start", "end", "duration", "worker", "executor", "host", "restarts", "error"]
#: Means of the system metrics of a trial (see maggy.runtime.usage), when they were sampled.
USAGE_COLUMNS = ["cpu_util", "mem", "gpu_util", "gpu_mem"]
#: Trials of a Pareto front that the summary lists.
_FRONT_SHOWN = 5


def trials_frame(trials: Iterable[Trial | FrozenTrial], param_names: list[str],
                 objectives: Objectives | None = None) -> pd.DataFrame:
    """One row per finished trial; extra keys that ``train_fn`` returned become columns. With
    several objectives each has a column of its own, named by its key, in place of ``metric``."""
    keys = list(objectives.keys) if objectives is not None and objectives.multi else ["metric"]
    rows = []
    reserved = set(_BASE_COLUMNS) | set(_TAIL_COLUMNS) | set(param_names) | set(USAGE_COLUMNS) | set(keys) | {
        "budget", "rungs", "resumes", "parent", "parent_budget"}
    for t in trials:
        if not t.state.finished:
            continue
        row: dict[str, Any] = {"trial_id": t.trial_id, "state": t.state.value}
        row.update({n: t.params.get(n) for n in param_names})
        if keys == ["metric"]:
            row["metric"] = t.metric
        else:
            row.update(zip(keys, t.values or [None] * len(keys)))
        if t.budget is not None:
            row["budget"] = t.budget
            row["rungs"] = [b for b, _ in t.rungs]
        if t.parent is not None:  # PBT's lineage: the trial whose checkpoint this one started from
            row["parent"], row["parent_budget"] = t.parent, t.parent_budget
        if t.resumes:
            row["resumes"] = t.resumes
        for k, v in t.extra.items():
            row[f"extra_{k}" if k in reserved else k] = v
        row.update({k: t.usage[k] for k in USAGE_COLUMNS if k in t.usage})
        row.update({
            "steps": t.steps,
            "start": pd.to_datetime(t.start, unit="s") if t.start else pd.NaT,
            "end": pd.to_datetime(t.end, unit="s") if t.end else pd.NaT,
            "duration": t.duration, "worker": t.worker, "executor": t.executor, "host": t.host,
            "restarts": t.attempts,
            "error": f"{t.error['type']}: {t.error['message']}" if t.error else None,
        })
        rows.append(row)
    columns = _BASE_COLUMNS + param_names + keys
    if any("budget" in r for r in rows):
        columns += ["budget", "rungs"]
    if any("parent" in r for r in rows):
        columns += ["parent", "parent_budget"]
    if any("resumes" in r for r in rows):
        columns += ["resumes"]
        for r in rows:
            r.setdefault("resumes", 0)
    usage = [k for k in USAGE_COLUMNS if any(k in r for r in rows)]
    extras = sorted({k for r in rows for k in r} - set(columns) - set(_TAIL_COLUMNS) - set(usage))
    frame = pd.DataFrame(rows, columns=columns + extras + _TAIL_COLUMNS[1:] + usage)
    frame[keys] = frame[keys].astype(float)
    return frame.sort_values("start", kind="stable", ignore_index=True)


@dataclass(frozen=True)
class BestTrial:
    """The best trial of a :class:`Result`.

    ``checkpoint_dir`` is where its final checkpoint is (if ``train_fn`` kept one); ``run_id``
    is its MLflow run, when tracking was on.
    """

    trial_id: str
    params: dict[str, Any]
    metric: float | None
    history: list[tuple[int, float]]
    checkpoint_dir: str
    run_id: str | None
    budget: float | None = None


@dataclass
class Result:
    """The outcome of an experiment.

    Attributes:
        best_params: hyperparameters of the best trial (None when no trial succeeded).
        best_metric: its metric.
        best_trial_id: its id.
        pareto_front: with several objectives, the rows of ``trials`` that no other trial beats
            on every objective (the ``best_*`` attributes then raise: there is no single best).
        trials: a DataFrame, one row per finished trial.
        experiment_dir: where the journal, result.json and trial logs are.
        stats: run figures (makespan, hand-off latency, bad frames, counts by state, tracking).
        best_run_id: the best trial's MLflow run, when MLflow tracking is on.
        model_uri: the model the best trial logged (``models:/<name>@champion`` once registered).
    """

    name: str
    #: The direction of the metric, or with several objectives one per ``optimization_key``.
    direction: str | list[str]
    trials: pd.DataFrame
    experiment_dir: str
    stats: dict[str, Any] = field(default_factory=dict)
    best_run_id: str | None = None
    model_uri: str | None = None
    #: Every trial as the driver last saw it (histories included).
    views: tuple[FrozenTrial, ...] = field(default=(), repr=False)
    #: Whether each run of a trial kept its own checkpoint directory (PBT).
    versioned_checkpoints: bool = field(default=False, repr=False)
    #: The hyperparameters' names, in the searchspace's order.
    searchspace_names: tuple[str, ...] = field(default=(), repr=False)
    #: The hyperparameters searched on a log scale (their plot axes are logarithmic).
    log_scale: tuple[str, ...] = field(default=(), repr=False)
    #: The metric's key, or the list of the objectives' keys.
    optimization_key: str | list[str] = "metric"
    #: The trials of the Pareto front, best first by the first objective: the best trial alone
    #: with one objective.
    front_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def objectives(self) -> Objectives:
        """The metrics this experiment optimised, with their directions."""
        return Objectives.of(self.optimization_key, self.direction)

    def _single(self, what: str) -> str | None:
        """The best trial's id; NoSingleBestError with several objectives."""
        if self.objectives.multi:
            raise NoSingleBestError(self.objectives, what)
        return self.front_ids[0] if self.front_ids else None

    def _view(self, trial_id: str | None) -> FrozenTrial | None:
        return next((t for t in self.views if t.trial_id == trial_id), None)

    @property
    def best_trial_id(self) -> str | None:
        """The best trial's id (None when no trial succeeded)."""
        return self._single("best_trial_id")

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's hyperparameters (None when no trial succeeded)."""
        view = self._view(self._single("best_params"))
        return None if view is None else dict(view.params)

    @property
    def best_metric(self) -> float | None:
        """The best trial's metric (None when no trial succeeded)."""
        view = self._view(self._single("best_metric"))
        return None if view is None else view.metric

    @property
    def best_trial(self) -> BestTrial | None:
        """The best trial: its parameters, metric, metric history, checkpoint and MLflow run."""
        view = self._view(self._single("best_trial"))
        if view is None:
            return None
        name = checkpoint_name(view.trial_id, view.budget, self.versioned_checkpoints)
        return BestTrial(view.trial_id, dict(view.params), view.metric, list(view.history),
                         f"{self.experiment_dir.rstrip('/')}/trials/{name}", self.best_run_id or view.run_id,
                         view.budget)

    @property
    def ablation(self) -> pd.DataFrame:
        """An ablation study's table: what each trial left out and what that cost against the
        base trial, most harmful first (see :func:`maggy.ablation.table.ablation_table`).

        >>> trials = [Trial(n, {"ablation": n}, state=TrialState.FINALIZED, metric=m, start=i)
        ...           for i, (n, m) in enumerate([("base", 0.9), ("feature:age", 0.7), ("feature:id", 0.91)])]
        >>> result = Result.of("s", "max", trials, ["ablation"], "/tmp/s", {})
        >>> result.ablation[["ablated", "delta"]].round(2).values.tolist()
        [['age', -0.2], [None, 0.0], ['id', 0.01]]
        """
        return ablation_table(self)

    @property
    def pareto_front(self) -> pd.DataFrame:
        """The rows of :attr:`trials` that no other trial beats on every objective, best first by
        the first objective (with one objective: the best trial's row)."""
        rows = self.trials.set_index("trial_id", drop=False)
        return rows.loc[[t for t in self.front_ids if t in rows.index]].reset_index(drop=True)

    @property
    def history(self) -> pd.DataFrame:
        """Every metric a trial reported while it ran, one row each: trial_id, step, value."""
        rows = [(t.trial_id, s, v) for t in self.views for s, v in t.history]
        return pd.DataFrame(rows, columns=["trial_id", "step", "value"])

    def summary(self) -> str:
        counts = self.trials["state"].value_counts().to_dict() if len(self.trials) else {}
        parts = ", ".join(f"{counts.get(s, 0)} {s.lower()}" for s in
                          ("FINALIZED", "EARLY_STOPPED", "ERROR"))
        lines = [f"Experiment '{self.name}': {len(self.trials)} trials ({parts})"]
        if not self.front_ids:
            errors = self.trials["error"].dropna() if len(self.trials) else pd.Series(dtype=object)
            why = ""
            if len(errors):
                common = errors.value_counts()
                why = f" {len(errors)} failed; the most common error ({common.iloc[0]} times): {common.index[0]}"
            lines.append("No trial produced a metric." + why)
        elif self.objectives.multi:
            o = self.objectives
            lines.append(f"Pareto front ({o.describe()}): {len(self.front_ids)} trials; result.pareto_front lists them")
            for view in [self._view(t) for t in self.front_ids[:_FRONT_SHOWN]]:
                if view is not None and view.values is not None:
                    values = ", ".join(f"{k}={v:.6g}" for k, v in zip(o.keys, view.values))
                    params = ", ".join(f"{k}={v!r}" for k, v in view.params.items())
                    lines.append(f"  {values}  ({params})")
            if len(self.front_ids) > _FRONT_SHOWN:
                lines.append(f"  ... and {len(self.front_ids) - _FRONT_SHOWN} more")
        else:
            lines.append(f"Best metric ({self.direction}imised): {self.best_metric:.6g} (trial {self.best_trial_id})")
            lines.append("Best params: " + ", ".join(f"{k}={v!r}" for k, v in (self.best_params or {}).items()))
        if self.stats.get("stopped"):
            lines.append(f"Stopped early: {self.stats['stopped']}")
        if self.stats.get("short"):  # the search itself ended before every planned trial started
            lines.append(f"Ended early: {self.stats['short']}")
        if "makespan" in self.stats:
            busy = f", {self.stats['utilization']:.0%} busy" if "utilization" in self.stats else ""
            lines.append(f"Wall time: {self.stats['makespan']:.1f} s on {self.stats.get('num_workers')} workers{busy}")
        if self.model_uri:
            lines.append(f"Model: {self.model_uri}")
        lines.append(f"Results: {self.experiment_dir}")
        lines.append(f"Trial logs (what train_fn printed and logged): {self.experiment_dir.rstrip('/')}/trials/<trial_id>.log")
        if (self.stats.get("tracking") or {}).get("url"):
            lines.append(f"MLflow: {self.stats['tracking']['url']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as written to result.json."""
        out: dict[str, Any] = {"name": self.name, **self.objectives.config()}
        if self.objectives.multi:
            out["pareto_front"] = [{"trial_id": v.trial_id, "params": dict(v.params), "values": list(v.values or ())}
                                   for v in map(self._view, self.front_ids) if v is not None]
        else:
            out.update(best_params=self.best_params, best_metric=self.best_metric, best_trial_id=self.best_trial_id)
        return {**out, "experiment_dir": self.experiment_dir, "best_run_id": self.best_run_id,
                "model_uri": self.model_uri, "stats": self.stats}

    @classmethod
    def of(cls, name: str, objectives: Objectives | str, trials: Iterable[Trial | FrozenTrial], param_names: list[str],
           experiment_dir: str, stats: dict[str, Any], versioned_checkpoints: bool = False,
           best_run_id: str | None = None, model_uri: str | None = None,
           log_scale: Iterable[str] = ()) -> "Result":
        """The result of ``trials``: the best one (or the Pareto front) and the table.
        ``objectives`` may be a direction alone, for one objective named ``metric``."""
        if isinstance(objectives, str):
            objectives = Objectives.of("metric", objectives)
        trials = list(trials)
        front = pareto_front([t for t in trials if t.state.finished or t.state is TrialState.PAUSED], objectives)
        config = objectives.config()
        return cls(name=name, direction=config["direction"], optimization_key=config["optimization_key"],
                   front_ids=tuple(t.trial_id for t in front),
                   trials=trials_frame(trials, param_names, objectives), experiment_dir=experiment_dir, stats=stats,
                   views=tuple(t.view() if isinstance(t, Trial) else t for t in trials),
                   versioned_checkpoints=versioned_checkpoints, searchspace_names=tuple(param_names),
                   best_run_id=best_run_id, model_uri=model_uri, log_scale=tuple(log_scale))

    def to_parquet(self) -> bytes:
        """The trial table as Parquet (through pyarrow), as written to ``trials.parquet``: with
        the experiment's name and directory on each row, so that Spark SQL reads many
        experiments' tables as one (``spark.read.parquet("<experiment_dir>/*/*/trials.parquet")``)."""
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self.trials.copy()
        for col in frame.columns:  # extra values of mixed types: kept as text
            if frame[col].dtype == object and col != "rungs":
                frame[col] = frame[col].map(_as_text)
        frame.insert(0, "experiment", self.name)
        frame.insert(1, "experiment_dir", self.experiment_dir)
        out = io.BytesIO()
        # microseconds: Spark reads no nanosecond timestamps
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out, coerce_timestamps="us",
                       allow_truncated_timestamps=True)
        return out.getvalue()


def _as_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value, default=str)
