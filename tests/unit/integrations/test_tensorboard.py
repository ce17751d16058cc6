"""The TensorBoard tracker, driven hook by hook and read back with TensorBoard's own readers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from maggy import Searchspace
from maggy.callbacks import ExperimentInfo
from maggy.exceptions import BackendUnavailableError
from maggy.integrations import tensorboard as tb
from maggy.store.storage import LocalStorage
from maggy.trial import FrozenTrial, TrialState

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import plugin_event_multiplexer  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, metadata  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

SP = Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log"), layers=("INTEGER", [1, 4]), act=("CATEGORICAL", ["relu", "tanh"]))
NOW = time.time()


def info(directory, trials=(), key="acc", direction="max"):
    config = {"searchspace": SP.to_dict(), "optimization_key": key, "direction": direction}
    return ExperimentInfo("mnist", str(directory), config, total_trials=4, num_workers=2, trials=tuple(trials))


def trial(n, state=TrialState.FINALIZED, steps=3, metric=None, **kw):
    history = tuple((s, 0.1 * n + 0.01 * s) for s in range(steps))
    metric = metric if metric is not None else (history[-1][1] if history else None)
    return FrozenTrial(f"t{n}", {"lr": 0.001 * n, "layers": n, "act": "relu"}, state=state, metric=metric,
                       history=history, number=n, start=NOW - 10, end=NOW, **kw)


def run(directory, ended, **kw):
    """An experiment whose trials ``ended`` as given, through the hooks as the driver calls them."""
    tracker = tb.TensorBoardTracker()
    tracker.check()
    tracker.on_experiment_start(info(directory, **kw))
    for t in ended:
        tracker.on_trial_result(t, t.history)
        tracker.on_trial_end(t)
    assert tracker.on_experiment_end(SimpleNamespace(views=tuple(ended)), "finished") is None
    return tracker


def read(directory):
    """TensorBoard's view of ``<directory>/tensorboard``: the runs, scalars by run and tag, and
    the HParams plugin's data by run and tag."""
    logdir = os.path.join(directory, "tensorboard")
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    hparams = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    scalars = {run: {tag: [(e.step, round(tensor_util.make_ndarray(e.tensor_proto).item(), 5)) for e in mux.Tensors(run, tag)]
                     for tag in content} for run, content in mux.PluginRunToTagToContent("scalars").items()}
    return sorted(mux.Runs()), scalars, hparams


def sessions(directory):
    """The HParams tab's table, as TensorBoard's own HParams backend computes it."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context, list_session_groups

    logdir = os.path.join(directory, "tensorboard")
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    tb_context = base_plugin.TBContext(logdir=logdir, data_provider=data_provider.MultiplexerDataProvider(mux, logdir),
                                       multiplexer=mux)
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100, allowed_statuses=[0, 1, 2, 3])
    groups = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb_context), "", request).run()
    return {g.sessions[0].name: g for g in groups.session_groups}


def number(value):
    return value.number_value if value.HasField("number_value") else value.string_value


def test_one_run_per_trial_with_the_objective_at_every_step(tmp_path):
    trials = [trial(1), trial(2, TrialState.EARLY_STOPPED, steps=2), trial(3, TrialState.ERROR, steps=0)]
    run(tmp_path, trials)
    runs, scalars, _ = read(tmp_path)
    assert runs == [".", "mnist-1", "mnist-2", "mnist-3"]
    assert scalars["mnist-1"]["acc"] == [(0, 0.1), (1, 0.11), (2, 0.12)]
    assert scalars["mnist-2"]["acc"] == [(0, 0.2), (1, 0.21)]
    assert "mnist-3" not in scalars  # failed before it reported anything
    assert os.listdir(tmp_path / "tensorboard" / "mnist-1") == [tb.EVENTS]


def test_the_hparams_data_lists_every_trial_with_its_params_status_and_result(tmp_path):
    trials = [trial(1), trial(2, TrialState.EARLY_STOPPED, steps=2), trial(3, TrialState.ERROR, steps=0)]
    run(tmp_path, trials)
    _, _, hparams = read(tmp_path)
    experiment = metadata.parse_experiment_plugin_data(hparams["."][metadata.EXPERIMENT_TAG])
    infos = {h.name: h for h in experiment.hparam_infos}
    assert (infos["lr"].domain_interval.min_value, infos["lr"].domain_interval.max_value) == (1e-4, 1e-1)
    assert (infos["layers"].domain_interval.min_value, infos["layers"].domain_interval.max_value) == (1, 4)
    assert [v.string_value for v in infos["act"].domain_discrete.values] == ["relu", "tanh"]
    assert [m.name.tag for m in experiment.metric_infos] == ["acc"]
    for t in trials:
        data = hparams[f"mnist-{t.number}"]
        start = metadata.parse_session_start_info_plugin_data(data[metadata.SESSION_START_INFO_TAG])
        end = metadata.parse_session_end_info_plugin_data(data[metadata.SESSION_END_INFO_TAG])
        assert start.group_name == str(t.number)
        assert {k: number(v) for k, v in start.hparams.items()} == dict(t.params)
        assert api_pb2.Status.Name(end.status) == {"FINALIZED": "STATUS_SUCCESS", "EARLY_STOPPED": "STATUS_SUCCESS",
                                                   "ERROR": "STATUS_FAILURE"}[t.state.value]
    table = sessions(tmp_path)
    assert table["mnist-1"].metric_values[0].value == pytest.approx(trials[0].metric)
    assert table["mnist-2"].metric_values[0].value == pytest.approx(trials[1].metric)
    assert not table["mnist-3"].metric_values


def test_a_result_other_than_the_last_step_is_what_the_table_shows(tmp_path):
    best_epoch = trial(1, metric=0.9)  # train_fn returned its best epoch's metric, not the last
    run(tmp_path, [best_epoch])
    _, scalars, _ = read(tmp_path)
    assert scalars["mnist-1"]["acc"] == [(0, 0.1), (1, 0.11), (2, 0.12), (2, 0.9)]  # the result, at the last step
    assert sessions(tmp_path)["mnist-1"].metric_values[0].value == pytest.approx(0.9)


def test_several_objectives_each_under_its_key(tmp_path):
    t = trial(1, values=(0.12, 35.0), extra={"note": "x", "loss": 0.4})
    run(tmp_path, [t], key=["acc", "latency"], direction=["max", "min"])
    _, scalars, hparams = read(tmp_path)
    experiment = metadata.parse_experiment_plugin_data(hparams["."][metadata.EXPERIMENT_TAG])
    assert [m.name.tag for m in experiment.metric_infos] == ["acc", "latency"]
    assert scalars["mnist-1"]["latency"] == [(2, 35.0)] and scalars["mnist-1"]["loss"] == [(2, 0.4)]
    shown = {m.name.tag: m.value for m in sessions(tmp_path)["mnist-1"].metric_values}
    assert shown == pytest.approx({"acc": 0.12, "latency": 35.0})


def test_a_continued_trial_rewrites_its_one_file(tmp_path):
    tracker = tb.TensorBoardTracker()
    tracker.on_experiment_start(info(tmp_path))
    tracker.on_trial_end(trial(1, TrialState.PAUSED, steps=2))  # a multi-fidelity run below the top budget
    final = trial(1, steps=4)
    tracker.on_trial_result(final, final.history[2:])
    tracker.on_trial_end(final)
    tracker.on_experiment_end(SimpleNamespace(views=(final,)), "finished")
    _, scalars, hparams = read(tmp_path)
    assert [s for s, _ in scalars["mnist-1"]["acc"]] == [0, 1, 2, 3]
    end = metadata.parse_session_end_info_plugin_data(hparams["mnist-1"][metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
    assert os.listdir(tmp_path / "tensorboard" / "mnist-1") == [tb.EVENTS]


def test_a_resumed_experiment_replaces_its_files_instead_of_adding(tmp_path):
    first = [trial(1), trial(2, TrialState.PAUSED, steps=2)]
    run(tmp_path, first)
    later = [trial(2, steps=4), trial(3)]
    run(tmp_path, later, trials=first)
    runs, scalars, hparams = read(tmp_path)
    assert runs == [".", "mnist-1", "mnist-2", "mnist-3"]
    for name in runs:
        assert [f for f in os.listdir(tmp_path / "tensorboard" / name) if "tfevents" in f] == [tb.EVENTS]
    assert [s for s, _ in scalars["mnist-2"]["acc"]] == [0, 1, 2, 3]
    assert len(scalars["mnist-1"]["acc"]) == 3
    assert set(sessions(tmp_path)) == {"mnist-1", "mnist-2", "mnist-3"}


def test_the_experiments_end_writes_trials_that_never_ended(tmp_path):
    tracker = tb.TensorBoardTracker()
    tracker.on_experiment_start(info(tmp_path))
    running = trial(1, TrialState.RUNNING, steps=2)
    tracker.on_trial_result(running, running.history)  # interrupted before its run ended
    tracker.on_experiment_end(SimpleNamespace(views=(running, trial(2, TrialState.PENDING, steps=0))), "interrupted")
    runs, scalars, _ = read(tmp_path)
    assert runs == [".", "mnist-1"] and len(scalars["mnist-1"]["acc"]) == 2


class SlowStorage(LocalStorage):
    """Writes only once the test lets it."""

    def __init__(self):
        self.go = threading.Event()

    def write_bytes(self, path, data):
        assert self.go.wait(30)
        super().write_bytes(path, data)


def test_the_hooks_never_wait_on_storage(tmp_path, monkeypatch):
    storage = SlowStorage()
    monkeypatch.setattr(tb, "storage_for", lambda path: storage)
    tracker = tb.TensorBoardTracker()
    began = time.monotonic()
    tracker.on_experiment_start(info(tmp_path))
    for n in range(1, 21):
        tracker.on_trial_result(trial(n), trial(n).history)
        tracker.on_trial_end(trial(n))
    assert time.monotonic() - began < 1.0 and not (tmp_path / "tensorboard" / "mnist-1").exists()
    threading.Timer(0.2, storage.go.set).start()
    tracker.on_experiment_end(SimpleNamespace(views=()), "finished")  # waits for every write
    assert len(read(tmp_path)[0]) == 21


class BrokenStorage(LocalStorage):
    def write_bytes(self, path, data):
        raise OSError("disk gone")


def test_a_failing_storage_loses_files_but_not_the_experiment(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "storage_for", lambda path: BrokenStorage())
    monkeypatch.setattr(tb, "_ATTEMPTS", 1)
    tracker = run(tmp_path, [trial(1)])
    assert sorted(os.path.basename(p) for p in tracker.lost) == ["mnist-1", "tensorboard"]


def test_preflight_names_the_fix_when_tensorboard_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install tensorboard"):
        tb.TensorBoardTracker().check()


def test_maggy_does_not_import_tensorboard_until_it_writes():
    code = ("import sys, maggy, maggy.integrations.tensorboard as tb; from maggy import experiment; "
            "tb.TensorBoardTracker(); assert 'tensorboard' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
