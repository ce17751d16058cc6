"""TensorBoard event files from a real experiment (LocalBackend), read back with TensorBoard."""

from __future__ import annotations

import os

import pytest

from maggy import Searchspace, experiment
from maggy.exceptions import MaggyWarning

pytest.importorskip("tensorboard")


def tensorboard_view(logdir):
    """TensorBoard's reading of ``logdir``: the runs, each run's scalars under ``key``, and the
    HParams tab's table (its own backend's session groups) by run."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups
    from tensorboard.util import tensor_util

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    scalars = {run: {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in mux.Tensors(run, tag)]
                     for tag in tags} for run, tags in mux.PluginRunToTagToContent("scalars").items()}
    tb_context = base_plugin.TBContext(logdir=logdir, data_provider=data_provider.MultiplexerDataProvider(mux, logdir),
                                       multiplexer=mux)
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100, allowed_statuses=[0, 1, 2, 3])
    groups = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb_context), "", request).run()
    return sorted(mux.Runs()), scalars, {g.sessions[0].name: g for g in groups.session_groups}


def test_lagom_writes_a_run_per_trial_and_the_hparams_table(tmp_path):
    def train(lr, act, reporter):
        for step in range(3):
            reporter.broadcast(metric=lr * (step + 1), step=step)
        return lr * 3

    sp = Searchspace(lr=("DOUBLE", [0.001, 0.1]), act=("CATEGORICAL", ["relu", "tanh"]))
    result = experiment.lagom(train, sp, backend="local", tensorboard=True, num_trials=4, name="tb", seed=0,
                              es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path), verbose=False)
    runs, scalars, table = tensorboard_view(os.path.join(result.experiment_dir, "tensorboard"))
    assert runs == [".", "tb-1", "tb-2", "tb-3", "tb-4"]
    for trial in result.views:
        run = f"tb-{trial.number}"
        assert [s for s, _ in scalars[run]["metric"]] == [s for s, _ in trial.history] == [0, 1, 2]
        assert [v for _, v in scalars[run]["metric"]] == pytest.approx([v for _, v in trial.history], rel=1e-6)
        group = table[run]
        shown = {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in group.hparams.items()}
        assert shown == dict(trial.params)
        assert group.name == str(trial.number) and group.sessions[0].status == 1  # STATUS_SUCCESS
        assert [(m.name.tag, m.value) for m in group.metric_values] == [("metric", pytest.approx(trial.metric, rel=1e-6))]
    assert sorted(t.metric for t in result.views) == pytest.approx(sorted(result.trials["metric"]))


def test_a_resumed_experiment_adds_runs_and_replaces_files(tmp_path):
    sp = Searchspace(lr=("DOUBLE", [0.001, 0.1]))
    kw = {"backend": "local", "tensorboard": True, "name": "grow", "seed": 0, "es_policy": "none",
          "experiment_dir": str(tmp_path), "verbose": False}
    first = experiment.lagom(lambda lr: lr, sp, num_trials=2, **kw)
    with pytest.warns(MaggyWarning, match="Continuing experiment"):  # resume="auto": runs only the missing two
        result = experiment.lagom(lambda lr: lr, sp, num_trials=4, **kw)
    assert result.experiment_dir == first.experiment_dir
    logdir = os.path.join(result.experiment_dir, "tensorboard")
    runs, _, table = tensorboard_view(logdir)
    assert runs == [".", "grow-1", "grow-2", "grow-3", "grow-4"] and len(table) == 4
    for run in runs:
        assert len([f for f in os.listdir(os.path.join(logdir, run)) if "tfevents" in f]) == 1
