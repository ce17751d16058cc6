"""Pictures of an experiment, from a live or a loaded :class:`~maggy.result.Result`.

Each function returns a plotly figure: interactive in Jupyter, and :func:`save` writes them all
as HTML files (``python -m maggy show DIR --plots OUT`` does that from a shell). Plotly is what
Optuna's visualisations use, so the pictures look as users of the field expect.

>>> from maggy.result import Result
>>> from maggy.trial import Trial, TrialState
>>> trials = [Trial(f"t{i}", {"x": i / 4}, state=TrialState.FINALIZED, metric=i / 4, start=i, end=i + 1,
...                 history=[(0, i / 8), (1, i / 4)]) for i in range(4)]
>>> result = Result.of("demo", "max", trials, ["x"], "/tmp/demo", {})
>>> [trace.name for trace in optimization_history(result).data]
['trial', 'best so far']
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maggy.search.direction import Direction
from maggy.trial import TrialState

if TYPE_CHECKING:  # plotly is imported when a picture is drawn
    import plotly.graph_objects as go

    from maggy.result import Result


def _go() -> Any:
    import plotly.graph_objects as go  # here, not at import: a result need not load plotly
    return go


def _numeric(col: pd.Series) -> bool:
    """Whether a parameter's column is a number axis (else its values are categories)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _ended(result: Result) -> pd.DataFrame:
    """The trials with a metric, in the order they ended."""
    df = result.trials[result.trials["metric"].notna()]
    return df.sort_values("end", kind="stable", ignore_index=True)


def optimization_history(result: Result) -> go.Figure:
    """Each trial's metric in the order the trials ended, and the best so far."""
    go = _go()
    df = _ended(result)
    best = df["metric"].cummax() if Direction(result.direction) is Direction.MAX else df["metric"].cummin()
    x = list(range(1, len(df) + 1))
    fig = go.Figure([
        go.Scatter(x=x, y=df["metric"], mode="markers", name="trial", text=df["trial_id"],
                   marker={"color": ["#d62728" if s == "EARLY_STOPPED" else "#1f77b4" for s in df["state"]]}),
        go.Scatter(x=x, y=best, mode="lines", name="best so far", line={"shape": "hv"}),
    ])
    fig.update_layout(title=f"Optimisation history: {result.name}", xaxis_title="trials ended",
                      yaxis_title=f"metric ({result.direction})")
    return fig


def parallel_coordinates(result: Result) -> go.Figure:
    """One line per trial across its parameters and metric, coloured by the metric."""
    go = _go()
    df = _ended(result)
    dims = []
    for name in result.searchspace_names:
        col = df[name]
        if _numeric(col):
            dims.append({"label": name, "values": col.astype(float)})
        else:  # categories as positions, labelled
            labels = sorted({str(v) for v in col})
            dims.append({"label": name, "values": [labels.index(str(v)) for v in col],
                         "tickvals": list(range(len(labels))), "ticktext": labels})
    dims.append({"label": "metric", "values": df["metric"]})
    fig = go.Figure(go.Parcoords(dimensions=dims, line={"color": df["metric"], "colorscale": "Viridis",
                                                         "showscale": True}))
    fig.update_layout(title=f"Parallel coordinates: {result.name}")
    return fig


def learning_curves(result: Result) -> go.Figure:
    """The metric per step of every trial: dashed where a trial was stopped early, with a
    marker where a multi-fidelity trial was promoted (a run at a larger budget began)."""
    go = _go()
    fig = go.Figure()
    for t in result.views:
        if not t.history:
            continue
        steps, values = zip(*t.history)
        stopped = t.state is TrialState.EARLY_STOPPED
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=t.trial_id, legendgroup=t.state.value,
                                 line={"dash": "dash" if stopped else "solid"},
                                 hovertext=f"{t.trial_id} {t.state.value}"))
        ends = [t.history[n - 1] for n in t.rung_steps[:-1] if 0 < n <= len(t.history)]
        if ends:  # each completed run below the last: the trial went on from there
            fig.add_trace(go.Scatter(x=[s for s, _ in ends], y=[v for _, v in ends], mode="markers",
                                     marker={"symbol": "triangle-up", "size": 9}, name=f"{t.trial_id} promoted",
                                     showlegend=False))
    fig.update_layout(title=f"Learning curves: {result.name}", xaxis_title="step", yaxis_title="metric")
    return fig


def rungs(result: Result) -> go.Figure:
    """How many trials completed each budget (ASHA, Hyperband, PBT): the rungs' occupancy."""
    go = _go()
    counts: dict[float, int] = {}
    for t in result.views:
        for budget, _ in t.rungs:
            counts[budget] = counts.get(budget, 0) + 1
    budgets = sorted(counts)
    fig = go.Figure(go.Bar(x=[f"{b:g}" for b in budgets], y=[counts[b] for b in budgets], name="trials"))
    fig.update_layout(title=f"Rung occupancy: {result.name}", xaxis_title="budget", yaxis_title="trials completed")
    return fig


def importance(result: Result, seed: int = 0) -> go.Figure:
    """How much each parameter explains the metric: the impurity importance of a random forest
    (scikit-learn) fitted on the finished trials, categories one-hot encoded and summed back."""
    go = _go()
    from sklearn.ensemble import RandomForestRegressor

    df = _ended(result)
    names = list(result.searchspace_names)
    if len(df) < 2:
        raise ValueError("parameter importance needs at least two trials with a metric")
    columns, owner = [], []
    for name in names:
        col = df[name]
        if _numeric(col):
            columns.append(col.astype(float).to_numpy())
            owner.append(name)
        else:
            for value in sorted({str(v) for v in col}):
                columns.append((col.astype(str) == value).to_numpy(dtype=float))
                owner.append(name)
    x = np.column_stack(columns)
    forest = RandomForestRegressor(n_estimators=200, random_state=seed).fit(x, df["metric"].to_numpy(dtype=float))
    score = {name: 0.0 for name in names}
    for name, value in zip(owner, forest.feature_importances_):
        score[name] += float(value)
    order = sorted(names, key=lambda n: score[n])
    fig = go.Figure(go.Bar(x=[score[n] for n in order], y=order, orientation="h", name="importance"))
    fig.update_layout(title=f"Parameter importance: {result.name}", xaxis_title="importance (random forest)")
    return fig


#: The colour of a run's bar in the timeline, by how it ended (a PAUSED run was completed at a
#: budget below the top: it may be promoted).
STATE_COLORS = {"FINALIZED": "#1f77b4", "PAUSED": "#17becf", "EARLY_STOPPED": "#ff7f0e", "ERROR": "#d62728"}


def timeline(result: Result) -> go.Figure:
    """When each worker ran what: one row per worker, one bar per trial run coloured by how it
    ended, so that idle gaps between runs show (Optuna's ``plot_timeline``, by worker)."""
    go = _go()
    runs = sorted(((start, end, worker, state, t) for t in result.views for start, end, worker, state in t.runs),
                  key=lambda r: r[0])
    workers = sorted({r[2] for r in runs}, key=lambda w: (w is None, w))
    label = {w: "worker ?" if w is None else f"worker {w}" for w in workers}
    fig = go.Figure()
    for state, color in STATE_COLORS.items():
        mine = [r for r in runs if r[3] == state]
        if not mine:
            continue
        fig.add_trace(go.Bar(
            name=state.lower().replace("_", " "), orientation="h", marker_color=color,
            base=[pd.to_datetime(r[0], unit="s") for r in mine], x=[1000 * (r[1] - r[0]) for r in mine],
            y=[label[r[2]] for r in mine],
            hovertext=[f"trial {r[4].trial_id} ({r[1] - r[0]:.1f} s)" for r in mine], hoverinfo="text+name"))
    busy = result.stats.get("utilization")
    title = f"Timeline: {result.name}" + (f" ({busy:.0%} busy)" if busy is not None else "")
    fig.update_layout(title=title, barmode="overlay", xaxis={"type": "date", "title": "time"},
                      yaxis={"title": "worker", "categoryorder": "array", "categoryarray": [label[w] for w in workers]})
    return fig


def figures(result: Result) -> dict[str, go.Figure]:
    """Every picture that the result has data for, by name."""
    out = {"history": optimization_history(result), "parallel_coordinates": parallel_coordinates(result)}
    if any(t.history for t in result.views):
        out["learning_curves"] = learning_curves(result)
    if any(t.rungs for t in result.views):
        out["rungs"] = rungs(result)
    if any(t.runs for t in result.views):
        out["timeline"] = timeline(result)
    if result.trials["metric"].notna().sum() >= 2:
        out["importance"] = importance(result)
    return out


def save(result: Result, directory: str, include_plotlyjs: bool | str = True) -> list[str]:
    """Write every picture as an HTML file into ``directory``; the paths. The files hold
    plotly's script (works offline), or with ``include_plotlyjs="cdn"`` load it (small files)."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, fig in figures(result).items():
        path = os.path.join(directory, f"{name}.html")
        fig.write_html(path, include_plotlyjs=include_plotlyjs)
        paths.append(path)
    return paths
