"""Trials as gangs of real processes (``workers_per_trial=2``): DDP on gloo, on Spark local mode
and local worker processes. Every rank writes what it saw to a log; the tests read the log."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.search.earlystop.base import EarlyStopPolicy
from tests.conftest import wait_for
from tests.integration.test_lost_workers import in_background

pytest.importorskip("torch")


def ddp_train(log_path, steps=4, step_time=0.0, checkpoint_every=0):
    """A linear model trained with DistributedDataParallel, each rank on its own shard; logs per
    rank: its gang, environment, shard, final weights, the epochs it ran and where it stopped."""
    log_path = str(log_path)

    def train(lr, reporter, budget=None):
        import json
        import os
        import time

        import torch
        import torch.distributed as dist

        from maggy import EarlyStopped

        rank = dist.get_rank()
        torch.manual_seed(0)  # the same initial model on every rank (DDP also broadcasts rank 0's)
        model = torch.nn.Linear(3, 1)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=lr)
        x = torch.randn(32, 3, generator=torch.Generator().manual_seed(100 + rank))  # this rank's shard
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
        path = os.path.join(reporter.checkpoint_dir, "state.pt")
        first = 0
        if os.path.exists(path):  # every rank finds rank 0's checkpoint
            state = torch.load(path)
            model.load_state_dict(state["model"])
            first = state["epoch"]
        last = int(budget) if budget is not None else steps
        record = {"trial": reporter.trial_id, "rank": reporter.rank, "world_size": reporter.world_size,
                  "env": {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                                     "MASTER_ADDR", "MASTER_PORT")},
                  "dist": [dist.get_rank(), dist.get_world_size()], "shard": float(x.sum()), "pid": os.getpid(),
                  "first": first, "epochs": [], "start": time.time(), "fds": len(os.listdir("/proc/self/fd")),
                  "store_listens_on": listening(int(os.environ["MASTER_PORT"])) if rank == 0 else None}
        with open(log_path + ".started", "a") as f:
            f.write(json.dumps({k: record[k] for k in ("trial", "rank", "pid", "first")}) + "\n")
        try:
            for epoch in range(first, last):
                time.sleep(step_time)
                opt.zero_grad()
                loss = ((ddp(x) - y) ** 2).mean()
                loss.backward()
                opt.step()
                record["epochs"].append(epoch)
                reporter.broadcast(-loss.item(), step=epoch)
                if checkpoint_every and (epoch + 1) % checkpoint_every == 0 and rank == 0:
                    torch.save({"model": model.state_dict(), "epoch": epoch + 1}, path)
                    reporter.checkpoint()
        except EarlyStopped:
            record["stopped_at"] = record["epochs"][-1]
            raise
        finally:
            record["weights"] = [round(float(v), 6) for v in model.weight.flatten()]
            record["end"] = time.time()
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        return -loss.item()
    return train


def listening(port):
    """The local addresses of this host's listening TCP sockets on ``port`` (from /proc/net)."""
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                out.append(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, words))
    return out


def ranks(log_path):
    return [json.loads(line) for line in open(log_path)] if os.path.exists(log_path) else []


def config(tmp_path, **kw):
    kw.setdefault("num_trials", 3)
    return HyperparameterOptConfig(searchspace=Searchspace(lr=("DOUBLE", [0.01, 0.1])), workers_per_trial=2,
                                   es_policy="none", hb_interval=0.05, dist_timeout=30, seed=1,
                                   experiment_dir=str(tmp_path / "exp"), **kw)


def by_trial(log):
    out: dict[str, list[dict]] = {}
    for r in log:
        out.setdefault(r["trial"], []).append(r)
    return {t: sorted(rs, key=lambda r: r["rank"]) for t, rs in out.items()}


def check_gangs(result, log, steps):
    """Both ranks of every trial ran with world size 2, on two processes, saw torchrun's
    environment, trained on different shards and ended with the same parameters; rank 0 alone
    spoke: one point per step."""
    gangs = by_trial(log)
    assert set(gangs) == set(result.trials["trial_id"]) and set(result.trials["state"]) == {"FINALIZED"}
    for r0, r1 in gangs.values():
        assert [r0["rank"], r1["rank"]] == [0, 1] and r0["world_size"] == r1["world_size"] == 2
        assert r0["dist"] == [0, 2] and r1["dist"] == [1, 2] and r0["pid"] != r1["pid"]
        assert r0["env"]["RANK"] == "0" and r1["env"]["RANK"] == "1" and r0["env"]["WORLD_SIZE"] == "2"
        assert r0["env"]["MASTER_PORT"] == r1["env"]["MASTER_PORT"]
        assert r0["shard"] != r1["shard"] and r0["weights"] == r1["weights"]
    assert steps_of(result) == {t: list(range(steps)) for t in gangs}


def steps_of(result):
    """Each trial's reported steps, in order."""
    return {t: list(rows["step"]) for t, rows in result.history.groupby("trial_id")}


def test_every_trial_trains_on_two_ranks_that_end_with_identical_parameters(backend, tmp_path):
    log = tmp_path / "ranks.jsonl"
    result = experiment.lagom(ddp_train(log), config(tmp_path), backend=backend, verbose=False)
    check_gangs(result, ranks(log), steps=4)
    # two slots, gangs of two: one trial at a time, each on both workers
    spans = sorted((min(r["start"] for r in rs), max(r["end"] for r in rs)) for rs in by_trial(ranks(log)).values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert len({r["pid"] for r in ranks(log)}) == 2


def test_two_gangs_share_four_workers_and_never_overlap(tmp_path):
    log = tmp_path / "ranks.jsonl"
    result = experiment.lagom(ddp_train(log, step_time=0.1), config(tmp_path, num_trials=6, num_workers=4),
                              backend=LocalBackend(), verbose=False)
    entries = ranks(log)
    check_gangs(result, entries, steps=4)
    assert len({r["pid"] for r in entries}) == 4
    # at every moment at most two trials run, and no process holds two ranks at once
    events = sorted([(r["start"], 1, r["trial"]) for r in entries] + [(r["end"], -1, r["trial"]) for r in entries])
    running: dict[str, int] = {}
    most = 0
    for _, delta, trial in events:
        running[trial] = running.get(trial, 0) + delta
        most = max(most, sum(1 for n in running.values() if n > 0))
    assert most <= 2
    for pid in {r["pid"] for r in entries}:
        spans = sorted((r["start"], r["end"]) for r in entries if r["pid"] == pid)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_twenty_trials_in_a_row_initialise_a_fresh_group_on_the_same_two_workers(tmp_path):
    log = tmp_path / "ranks.jsonl"
    result = experiment.lagom(ddp_train(log, steps=2), config(tmp_path, num_trials=20), backend=LocalBackend(),
                              verbose=False)
    entries = ranks(log)
    assert len(result.trials) == 20 and len(entries) == 40
    check_gangs(result, entries, steps=2)
    assert len({r["pid"] for r in entries}) == 2
    assert len({r["env"]["MASTER_PORT"] for r in entries}) == 20  # a store of its own per attempt
    # rank 0's store listens on the worker's address only, not on every interface as torch's would
    assert {tuple(r["store_listens_on"]) for r in entries if r["rank"] == 0} == {("127.0.0.1",)}
    for pid in {r["pid"] for r in entries}:  # nothing leaks from one attempt to the next: after the first,
        for rank in (0, 1):                  # open files stay within a few (a leak would add one per trial)
            fds = [r["fds"] for r in entries if r["pid"] == pid and r["rank"] == rank]
            assert len(fds) < 3 or max(fds[1:]) - fds[1] <= 3, (pid, rank, fds)


class StopAtStep(EarlyStopPolicy):
    """Stops every trial once it reported ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def should_stop(self, trial, finished, direction) -> bool:
        return trial.history[-1][0] >= self.step


@pytest.mark.parametrize("how", ["early_stop", "timeout"])
def test_a_stop_ends_both_ranks_at_the_same_step(how, tmp_path):
    log = tmp_path / "ranks.jsonl"
    # the experiment's timeout counts from lagom's call: long enough for the workers to start on a loaded machine
    settings = {"es_policy": StopAtStep(3), "es_interval": 0.05} if how == "early_stop" else {"timeout": 20.0}
    cfg = config(tmp_path, num_trials=1)
    cfg = HyperparameterOptConfig(**{**{f: getattr(cfg, f) for f in ("searchspace", "workers_per_trial", "hb_interval",
                                                                     "dist_timeout", "num_trials", "experiment_dir")},
                                     **settings})
    thread, box = in_background(lambda: experiment.lagom(ddp_train(log, steps=5000, step_time=0.02), cfg,
                                                         backend=LocalBackend(), verbose=False))
    thread.join(150)
    assert not thread.is_alive(), "the stop did not end the experiment"
    assert "error" not in box, box.get("error")
    (r0, r1) = by_trial(ranks(log))[box["result"].trials["trial_id"][0]]
    assert "stopped_at" in r0 and r0["stopped_at"] == r1["stopped_at"] and r0["epochs"] == r1["epochs"]
    assert r0["weights"] == r1["weights"]
    row = box["result"].trials.iloc[0]
    assert row["state"] == "EARLY_STOPPED" and steps_of(box["result"])[row["trial_id"]][-1] == r0["stopped_at"]
    if how == "early_stop":
        assert r0["stopped_at"] >= 3 and r0["stopped_at"] < 5000 - 1


def test_a_killed_rank_costs_at_most_one_checkpoint_interval(tmp_path):
    log = tmp_path / "ranks.jsonl"
    cfg = config(tmp_path, num_trials=1, max_trial_retries=1)
    thread, box = in_background(lambda: experiment.lagom(ddp_train(log, steps=8, step_time=0.15, checkpoint_every=2),
                                                         cfg, backend=LocalBackend(), verbose=False))

    def checkpointed_at(step):
        for path in glob.glob(str(tmp_path / "exp" / "*" / "*" / "journal.jsonl")):
            if f'"checkpoint_step": {step}' in open(path).read():
                return True
        return False
    wait_for(lambda: checkpointed_at(3), timeout=90, what="the driver to know the checkpoint after step 3")
    (victim,) = [json.loads(line)["pid"] for line in open(f"{log}.started") if json.loads(line)["rank"] == 1]
    os.kill(victim, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    row = box["result"].trials.iloc[0]
    assert row["state"] == "FINALIZED" and row["restarts"] == 1
    assert steps_of(box["result"])[row["trial_id"]] == list(range(8))
    entries = ranks(log)
    second = [r for r in entries if r["first"] > 0]
    assert {r["rank"] for r in second} == {0, 1} and {r["first"] for r in second} == {4}  # from the checkpoint
    assert all(r["epochs"] == list(range(4, 8)) for r in second)
    assert second[0]["weights"] == second[1]["weights"]
    assert victim not in {r["pid"] for r in second}


def test_asha_promotions_continue_from_the_checkpoint_on_every_rank(tmp_path):
    from maggy.search.optimizers import ASHA

    log = tmp_path / "ranks.jsonl"
    cfg = config(tmp_path, num_trials=4, optimizer=ASHA(reduction_factor=2, resource_min=1, resource_max=4))
    result = experiment.lagom(ddp_train(log, checkpoint_every=1), cfg, backend=LocalBackend(), verbose=False)
    runs = by_trial(ranks(log))
    promoted = {t: rs for t, rs in runs.items() if len(rs) > 2}
    assert promoted, "ASHA promoted no trial"
    for rs in promoted.values():
        for rank in (0, 1):  # each run of each rank starts where the trial's previous run ended
            mine = [r for r in rs if r["rank"] == rank]
            assert [r["first"] for r in mine] == [0] + [r["epochs"][-1] + 1 for r in mine[:-1]]
        assert [r["weights"] for r in rs if r["rank"] == 0] == [r["weights"] for r in rs if r["rank"] == 1]
    assert all(steps == list(range(len(steps))) for steps in steps_of(result).values())
