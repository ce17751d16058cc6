"""Pictures of an experiment, from a live or a loaded :class:`~maggy.result.Result`.

Each function returns a plotly figure: interactive in Jupyter, and :func:`save` writes them all
as HTML that renders with no network (``python -m maggy show DIR --plots OUT`` does that from a
shell; the MLflow parent run holds the same report). Plotly is what Optuna's visualisations use,
so the pictures look as users of the field expect. Trials are named by their number, as their
MLflow runs are (``<experiment>-<n>``).

>>> from maggy.result import Result
>>> from maggy.trial import Trial, TrialState
>>> trials = [Trial(f"t{i}", {"x": i / 4}, state=TrialState.FINALIZED, metric=i / 4, start=i, end=i + 1,
...                 history=[(0, i / 8), (1, i / 4)]) for i in range(4)]
>>> result = Result.of("demo", "max", trials, ["x"], "/tmp/demo", {})
>>> [trace.name for trace in optimization_history(result).data]
['trial', 'best so far', 'best']

With several objectives :func:`pareto_front` draws the trade-off, the front highlighted:

>>> from maggy.search.objectives import Objectives
>>> mo = Result.of("mo", Objectives.of(["acc", "ms"], ["max", "min"]), [Trial(f"t{i}", {"x": i}, state=TrialState.FINALIZED,
...     metric=a, values=(a, ms), start=i, end=i + 1) for i, (a, ms) in enumerate([(0.9, 30), (0.8, 10), (0.7, 20)])],
...     ["x"], "/tmp/mo", {})
>>> [(trace.name, trace.x.tolist()) for trace in pareto_front(mo).data]
[('other trials', [0.7]), ('Pareto front', [0.9, 0.8])]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from maggy.search.direction import Direction
from maggy.trial import TrialState, run_name

if TYPE_CHECKING:  # plotly is imported when a picture is drawn
    import plotly.graph_objects as go

    from maggy.result import Result


def _go() -> Any:
    import plotly.graph_objects as go  # here, not at import: a result need not load plotly
    return go


def _numeric(col: pd.Series) -> bool:
    """Whether a parameter's column is a number axis (else its values are categories)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _metric_column(result: Result) -> str:
    """The column of ``result.trials`` that holds the (first) objective: ``metric`` with one
    objective, the first objective's key with several."""
    objectives = result.objectives
    return objectives.primary if objectives.multi else "metric"


def _ended(result: Result) -> pd.DataFrame:
    """The trials with a metric (the first objective's value), in the order they ended, with
    their number (``number``)."""
    df = result.trials[result.trials[_metric_column(result)].notna()]
    numbers = {t.trial_id: t.number for t in result.views}
    df = df.assign(number=[numbers.get(t, 0) for t in df["trial_id"]])
    return df.sort_values("end", kind="stable", ignore_index=True)


def _label(result: Result, number: int) -> str:
    """A trial as the console and MLflow name it."""
    return run_name(result.name, number)


def _params(pairs: Iterable[tuple[str, Any]], digits: int = 4) -> str:
    """Parameters as a legend or a hover shows them: ``lr=0.01, opt=adam``."""
    return ", ".join(f"{k}={v:.{digits}g}" if isinstance(v, float) else f"{k}={v}" for k, v in pairs)


def _hover(result: Result, df: pd.DataFrame) -> list[str]:
    """Each row's trial, named as MLflow names it, and its parameters: what a point shows on hover."""
    names = [n for n in result.searchspace_names if n in df]
    return [_label(result, int(number)) + "<br>" + _params(zip(names, values))
            for number, values in zip(df["number"], df[names].itertuples(index=False, name=None))]


def optimization_history(result: Result) -> go.Figure:
    """Each trial's metric by trial number (its MLflow run ``<experiment>-<n>``), the best so
    far in the order trials ended, and the best trial marked. With several objectives: the first
    one's, with no best marked (there is none: see :func:`pareto_front`)."""
    go = _go()
    df = _ended(result)
    col, direction = _metric_column(result), result.objectives.directions[0]
    best = df[col].cummax() if direction is Direction.MAX else df[col].cummin()
    labels = [_label(result, n) for n in df["number"]]
    fig = go.Figure([
        go.Scatter(x=df["number"], y=df[col], mode="markers", name="trial", text=labels,
                   marker={"color": ["#d62728" if s == "EARLY_STOPPED" else "#1f77b4" for s in df["state"]]}),
        go.Scatter(x=df["number"], y=best, mode="lines", name="best so far", line={"shape": "hv"}),
    ])
    top = df.iloc[:0] if result.objectives.multi else df[df["trial_id"] == result.best_trial_id]
    if len(top):
        fig.add_trace(go.Scatter(x=top["number"], y=top[col], mode="markers+text", name="best",
                                 text=[f"best: {_label(result, int(top['number'].iloc[0]))}"],
                                 textposition="top center",
                                 marker={"symbol": "star", "size": 16, "color": "#ffbf00",
                                         "line": {"color": "black", "width": 1}}))
    fig.update_layout(title=f"Optimisation history: {result.name}", xaxis_title="trial (MLflow run <name>-<n>)",
                      yaxis_title=f"{result.objectives.primary} ({direction}imised)")
    return fig


def parallel_coordinates(result: Result) -> go.Figure:
    """One line per trial across its parameters and metric (each objective, with several),
    coloured by the metric (the first objective)."""
    go = _go()
    df = _ended(result)
    objectives, metric = result.objectives, _metric_column(result)
    dims = []
    for name in result.searchspace_names:
        col = df[name]
        if _numeric(col) and name in result.log_scale and (col > 0).all():  # plotly has no log axis here
            values = np.log10(col.astype(float))
            ticks = list(range(int(np.floor(values.min())), int(np.ceil(values.max())) + 1))
            dims.append({"label": f"{name} (log)", "values": values, "tickvals": ticks,
                         "ticktext": [f"1e{t}" for t in ticks]})
        elif _numeric(col):
            dims.append({"label": name, "values": col.astype(float)})
        else:  # categories as positions, labelled
            labels = sorted({str(v) for v in col})
            dims.append({"label": name, "values": [labels.index(str(v)) for v in col],
                         "tickvals": list(range(len(labels))), "ticktext": labels})
    dims += [{"label": key, "values": df[key if objectives.multi else metric]} for key in objectives.keys]
    fig = go.Figure(go.Parcoords(dimensions=dims, line={
        "color": df[metric], "colorscale": "Viridis", "showscale": True,
        "colorbar": {"title": {"text": f"{objectives.primary} ({objectives.directions[0]})"}}}))
    fig.update_layout(title=f"Parallel coordinates: {result.name}")
    return fig


def learning_curves(result: Result) -> go.Figure:
    """The metric per step of every trial, coloured by how it ended (dashed where it was stopped
    early), named by its number and parameters, with a marker where a multi-fidelity trial was
    promoted (a run at a larger budget began)."""
    go = _go()
    fig = go.Figure()
    for t in result.views:
        if not t.history:
            continue
        steps, values = zip(*t.history)
        stopped = t.state is TrialState.EARLY_STOPPED
        name = _label(result, t.number)
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{name} ({_params(t.params.items(), 3)})"[:80],
                                 legendgroup=t.state.value,
                                 line={"dash": "dash" if stopped else "solid",
                                       "color": STATE_COLORS.get(t.state.value, "#7f7f7f")},
                                 hovertext=f"{name} ({t.trial_id}) {t.state.value}"))
        ends = [t.history[n - 1] for n in t.rung_steps[:-1] if 0 < n <= len(t.history)]
        if ends:  # each completed run below the last: the trial went on from there
            fig.add_trace(go.Scatter(x=[s for s, _ in ends], y=[v for _, v in ends], mode="markers",
                                     marker={"symbol": "triangle-up", "size": 9}, name=f"{name} promoted",
                                     showlegend=False))
    fig.update_layout(title=f"Learning curves: {result.name}", xaxis_title="step", yaxis_title=result.objectives.primary)
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
    forest = RandomForestRegressor(n_estimators=200, random_state=seed).fit(
        x, df[_metric_column(result)].to_numpy(dtype=float))
    score = {name: 0.0 for name in names}
    for name, value in zip(owner, forest.feature_importances_):
        score[name] += float(value)
    order = sorted(names, key=lambda n: score[n])
    fig = go.Figure(go.Bar(x=[score[n] for n in order], y=order, orientation="h", name="importance"))
    title = f"Parameter importance: {result.name}"
    if len(df) < FEW_TRIALS:
        title += f"<br><sub>from only {len(df)} trials: a rough guide (it settles with {FEW_TRIALS} or more)</sub>"
    fig.update_layout(title=title, xaxis_title=f"importance (random forest on {len(df)} trials)")
    return fig


#: Fewer trials than this make the importance estimate unreliable; its title says so.
FEW_TRIALS = 20


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


def pareto_front(result: Result, keys: Sequence[str] | None = None) -> go.Figure:
    """The trade-off between the objectives: every finished trial by its objectives' values, the
    Pareto front (``result.front_ids``) highlighted and the other trials in grey. Two objectives
    draw a scatter with the front joined by a step line, the edge of what it dominates; three, a
    3-D scatter. ``keys`` names the 2 or 3 objectives to draw, in the axes' order (needed with
    more than three); the front stays that of all the objectives, so a step line is drawn only
    when every objective is on the axes."""
    go = _go()
    objectives = result.objectives
    if not objectives.multi:
        raise ValueError("pareto_front needs several objectives; this result optimised one: use optimization_history")
    axes = list(objectives.keys if keys is None else [keys] if isinstance(keys, str) else keys)
    unknown = [k for k in axes if k not in objectives.keys]
    if unknown or len(set(axes)) != len(axes) or len(axes) not in (2, 3):
        why = f"{unknown} are not objectives" if unknown else f"keys={axes!r}" if keys is not None else \
            f"it has {len(axes)}"
        raise ValueError(f"pareto_front draws 2 or 3 distinct objectives of {objectives.describe()}, but {why}: "
                         f"name them, e.g. keys={list(objectives.keys[:2])!r}")
    direction = dict(zip(objectives.keys, objectives.directions))
    df = _ended(result).dropna(subset=axes)
    on_front = df["trial_id"].isin(result.front_ids)
    # the front best first by the first axis: each step of the line then moves along x, then y
    front = df[on_front].sort_values(axes[0], ascending=direction[axes[0]] is Direction.MIN, kind="stable")
    others = df[~on_front]
    titles = [f"{k} ({direction[k]})" for k in axes]
    whole = len(axes) == len(objectives.keys)
    parts = [(others, "other trials", {"color": "#b0b0b0", "size": 6}),
             (front, "Pareto front", {"color": "#d62728", "size": 8, "line": {"color": "black", "width": 1}})]
    if len(axes) == 2:
        fig = go.Figure([go.Scatter(x=part[axes[0]], y=part[axes[1]], name=name, text=_hover(result, part),
                                    marker=marker,
                                    mode="lines+markers" if name == "Pareto front" and whole else "markers",
                                    line={"shape": "hv", "color": "#d62728"})
                         for part, name, marker in parts])
        fig.update_layout(xaxis_title=titles[0], yaxis_title=titles[1])
    else:
        fig = go.Figure([go.Scatter3d(x=part[axes[0]], y=part[axes[1]], z=part[axes[2]], mode="markers", name=name,
                                      text=_hover(result, part), marker=marker)
                         for part, name, marker in parts])
        fig.update_layout(scene={axis: {"title": {"text": t}} for axis, t in zip(("xaxis", "yaxis", "zaxis"), titles)})
    shown = "" if whole else f" ({', '.join(axes)} of {len(objectives.keys)} objectives)"
    fig.update_layout(title=f"Pareto front: {result.name}{shown}")
    return fig


def ablation(result: Result) -> go.Figure:
    """An ablation study: each removal's change of the metric against the base trial, most
    harmful at the top, coloured by kind (feature, component, group)."""
    go = _go()
    table = result.ablation
    rows = table[table["ablated"].notna() & table["delta"].notna()].iloc[::-1]  # plotly draws bottom-up
    colors = {"feature": "#1f77b4", "component": "#ff7f0e", "group": "#2ca02c"}
    fig = go.Figure()
    for kind, color in colors.items():
        mine = rows[rows["kind"] == kind]
        if len(mine):
            fig.add_trace(go.Bar(x=mine["delta"], y=[f"{kind}: {a}" for a in mine["ablated"]], orientation="h",
                                 name=kind, marker_color=color))
    fig.update_layout(title=f"Ablation: {result.name}", barmode="overlay",
                      xaxis_title=f"change of {result.objectives.primary} against the base trial (negative: it hurt)",
                      yaxis={"categoryorder": "array", "categoryarray": [f"{k}: {a}" for k, a in
                                                                         zip(rows["kind"], rows["ablated"])]})
    return fig


def figures(result: Result) -> dict[str, go.Figure]:
    """Every picture that the result has data for, by name. With several objectives the Pareto
    front comes first, in place of the history and the importance of one metric."""
    from maggy.ablation.table import is_ablation

    multi, study = result.objectives.multi, is_ablation(result)
    if study:  # one trial per removal: the table's picture, not a search's
        out = {"ablation": ablation(result)}
    elif multi:
        out = {"pareto_front": pareto_front(result, result.objectives.keys[:3])}
    else:
        out = {"history": optimization_history(result)}
    if not study:
        out["parallel_coordinates"] = parallel_coordinates(result)
    if any(t.history for t in result.views):
        out["learning_curves"] = learning_curves(result)
    if any(t.rungs for t in result.views):
        out["rungs"] = rungs(result)
    if any(t.runs for t in result.views):
        out["timeline"] = timeline(result)
    if not multi and not study and result.trials["metric"].notna().sum() >= 2:
        out["importance"] = importance(result)
    return out


def save(result: Result, directory: str) -> list[str]:
    """Write the pictures into ``directory`` so that they render with no network: ``report.html``
    holds them all with plotly's script once (about 5 MB, the file to open or attach), and one HTML
    file per picture shares ``plotly.min.js`` beside them. Returns the paths, the report first.

    An offline cluster is the common case, and a page that loads plotly from a CDN is blank there.
    """
    go_figures = figures(result)
    os.makedirs(directory, exist_ok=True)
    paths = [report(result, os.path.join(directory, "report.html"), go_figures)]
    for name, fig in go_figures.items():
        path = os.path.join(directory, f"{name}.html")
        fig.write_html(path, include_plotlyjs="directory")  # plotly.min.js, written once beside them
        paths.append(path)
    return paths


def report(result: Result, path: str, drawn: dict[str, go.Figure] | None = None) -> str:
    """Every picture of ``result`` in one self-contained HTML page at ``path``, with its summary."""
    import html

    from plotly.offline import get_plotlyjs

    drawn = figures(result) if drawn is None else drawn
    parts = [f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>maggy: {html.escape(result.name)}</title>',
             f"<script>{get_plotlyjs()}</script></head><body>",
             f"<h1>{html.escape(result.name)}</h1><pre>{html.escape(result.summary())}</pre>"]
    parts += [fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"maggy-{name}") for name, fig in drawn.items()]
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
