"""``python -m maggy show EXPERIMENT_DIR``: an experiment's summary, its best trials and its plots.

EXPERIMENT_DIR is what :func:`maggy.load_result` takes: a local path, ``hdfs://`` or
``webhdfs://``; an experiment's directory, or ``<experiment_dir>/<name>`` for its latest run. A
root of experiments (an ``experiment_dir``, such as the default ``maggy_experiments``) lists
them: name, run, start, trials, outcome and best metric.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from maggy.result import Result
    from maggy.store.replay import ExperimentLog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maggy", description="Look at maggy experiments.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print an experiment's summary and best trials, and write its plots; "
                                       "list the experiments under a root")
    show.add_argument("experiment_dir")
    show.add_argument("--top", type=int, default=10, help="how many of the best trials to list (default 10)")
    show.add_argument("--plots", default=None, metavar="DIR",
                      help="where to write the plots as HTML (default: ./<name>-plots)")
    show.add_argument("--no-plots", action="store_true", help="print only")
    args = parser.parse_args(argv)

    import pandas as pd

    from maggy.search.direction import Direction
    from maggy.store.replay import experiments_under, load_result

    try:
        result = load_result(args.experiment_dir)
    except (FileNotFoundError, OSError) as exc:
        listed = experiments_under(args.experiment_dir)
        if not listed:
            print(f"maggy: {exc}", file=sys.stderr)
            return 1
        print(_listing(listed))
        print(f"\n{len(listed)} experiments; python -m maggy show {args.experiment_dir.rstrip('/')}/<name> shows "
              "the latest run of one, .../<name>/<run> any run.")
        return 0
    print(result.summary())
    print(f"Outcome: {result.stats.get('outcome')}")
    if len(result.trials):
        if result.objectives.multi:
            shown, metrics = _by_front(result), [*result.objectives.keys, "front"]
            heading = f"First {min(args.top, len(shown))} of {len(shown)} trials by Pareto front (0: on the front)"
        else:
            shown = result.trials.sort_values("metric", ascending=Direction(result.direction) is Direction.MIN,
                                              na_position="last")
            metrics, heading = ["metric"], f"Best {min(args.top, len(shown))} of {len(shown)} trials"
        columns = [c for c in ["trial_id", "state", *result.searchspace_names, *metrics, "budget", "steps", "duration"]
                   if c in shown]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(f"\n{heading}:")
            print(shown[columns].head(args.top).to_string(index=False))
    if not args.no_plots and len(result.trials):
        from maggy.ui import plot
        paths = plot.save(result, args.plots or f"{result.name}-plots")
        print("\nPlots: " + ", ".join(paths))
    return 0


def _listing(logs: list[ExperimentLog]) -> str:
    """The experiments under a root as a table: name, run, start, trials ended of planned,
    outcome and best metric (or the size of the Pareto front)."""
    import datetime

    import pandas as pd

    rows = []
    for log in logs:
        result = log.result()
        best = (f"front of {len(result.front_ids)}" if result.objectives.multi
                else "-" if result.best_metric is None else f"{result.best_metric:.6g}")
        rows.append({"name": result.name, "run": log.exp_dir.rstrip("/").rsplit("/", 1)[-1],
                     "started": datetime.datetime.fromtimestamp(log.starts[0].time).strftime("%Y-%m-%d %H:%M"),
                     "trials": f"{log.ended}/{log.total}", "outcome": result.stats["outcome"], "best": best})
    return pd.DataFrame(rows).to_string(index=False)


def _by_front(result: Result) -> pd.DataFrame:
    """The trials of a multi-objective result, with ``front`` (the rank of their Pareto front: 0 on
    it, 1 beaten only by it, ...), sorted by it, then by the first objective; trials without
    values last. No single metric orders such trials: this is what ranks them."""
    import numpy as np
    import pandas as pd

    from maggy.search.direction import Direction
    from maggy.search.pareto import front_ranks

    objectives, keys = result.objectives, list(result.objectives.keys)
    valued = result.trials[keys].notna().all(axis=1)
    ranks = pd.Series(pd.NA, index=result.trials.index, dtype="Int64")
    if valued.any():
        ranks[valued] = front_ranks(np.array([objectives.scores(v) for v in result.trials.loc[valued, keys].to_numpy()]))
    return result.trials.assign(front=ranks).sort_values(
        ["front", objectives.primary], ascending=[True, objectives.directions[0] is Direction.MIN], na_position="last",
        ignore_index=True)
