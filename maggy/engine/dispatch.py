"""Handing trials to the workers that wait for one: the next trial to each complete gang (one
worker without gangs), all its ranks in one step, rank 0 first and the others once rank 0 has
said where its store is; WAIT while no trial is ready, DONE when none can come.

No I/O of its own: replies go through the ``reply`` function the driver gives.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from maggy.engine.gangs import Member
from maggy.engine.registry import WorkerRegistry
from maggy.engine.scheduler import Scheduler
from maggy.rpc.messages import Assignment, Done, Message, Ok, Rendezvous, Stop, Wait
from maggy.search.optimizers.base import DONE, WAIT
from maggy.trial import Trial, run_name

#: Seconds a worker waits before asking again when no trial is ready.
WAIT_RETRY = 0.05


class Dispatcher:
    """Answers the workers of ``registry`` with the trials of ``sched``; gangs of ``per_trial``.

    ``trials_dir`` is where trials keep their checkpoints, ``experiment`` names their runs,
    ``resumed`` says the experiment is a continued one, and ``before`` runs before each hand-out
    (a stopping rule that just came true stops it).
    """

    def __init__(self, sched: Scheduler, registry: WorkerRegistry, reply: Callable[[int, Message], None], *,
                 per_trial: int, trials_dir: str, join: Callable[..., str], experiment: str,
                 resumed: bool = False, before: Callable[[], None] = lambda: None) -> None:
        self.sched, self.registry, self.reply = sched, registry, reply
        self.per_trial, self.trials_dir, self.join, self.experiment = per_trial, trials_dir, join, experiment
        self.before = before
        #: A continued experiment: any trial may have run before this driver (its end unjournaled).
        self.resumed = resumed

    def ask(self, conn: int) -> None:
        """The worker on ``conn`` wants a trial (GET, or the FINAL of its last one)."""
        if conn not in self.registry.workers:  # never registered: nothing to give it
            self.reply(conn, Done())
            return
        self.registry.park(conn, time.monotonic())
        self.dispatch()

    def dispatch(self) -> None:
        """Answer the waiting workers: a trial for each complete gang that can form, WAIT when no
        trial is ready, DONE when none can come. Workers left over while a trial waits for a gang
        stay waiting (GANG_WAIT at most, see the supervisor)."""
        self.before()
        pool = self.registry.pool
        while len(pool):
            outlook = self.sched.peek()
            if outlook == DONE or outlook == WAIT:
                for conn in pool.drain():
                    self.reply(conn, Done() if outlook == DONE else Wait(retry_after=WAIT_RETRY))
                return
            members = pool.take(self.per_trial)
            if members is None:
                return
            self._start(members)

    def lose(self, trial_id: str, why: str) -> None:
        """The run of ``trial_id`` is lost (a worker, or a rank of its gang, dropped or went
        silent): the trial is re-queued, and ranks still waiting for their gang wait for a trial
        again; ranks still running hear STOP at their next heartbeat."""
        self.registry.release(trial_id, time.monotonic())
        if trial_id in self.sched.running:
            self.sched.lose(self.sched.running[trial_id], why)
        self.dispatch()

    def rendezvous(self, conn: int, msg: Rendezvous) -> None:
        """Rank 0 of a gang opened its store: the other ranks get their assignments, with its
        address. A message of an attempt that is over (its gang lost a rank) is refused."""
        held = self.registry.rendezvous(conn, msg.trial_id, msg.attempt)
        self.reply(conn, Stop() if held is None else Ok())
        for member, assignment in held or ():
            self.reply(member, dataclasses.replace(assignment, master_addr=msg.host, master_port=msg.port))

    def _start(self, members: list[Member]) -> None:
        """The next trial runs on ``members`` (rank 0 first), all assigned in this one step. Rank
        0 hears at once; the others when it has said where its store is (RENDEZVOUS)."""
        worker = self.registry.workers[members[0].conn]
        trial = self.sched.next_trial(worker.partition, worker.host, worker.executor)
        assert isinstance(trial, Trial), "peek said a trial is ready"
        attempt = self.registry.next_attempt()
        self.registry.assign(trial.trial_id, tuple(m.conn for m in members), time.monotonic(), attempt)
        own, source = self.sched.checkpoint_names(trial)
        base = Assignment(
            trial_id=trial.trial_id, params=dict(trial.params), budget=trial.budget,
            next_step=trial.history[-1][0] + 1 if trial.history else 0, run_id=trial.run_id,
            checkpoint_dir=self.join(self.trials_dir, own),
            restore_from=None if source is None else self.join(self.trials_dir, source),
            run_name=run_name(self.experiment, trial.number), world_size=len(members), attempt=attempt,
            first_run=not self.resumed and trial.attempts == 0 and not trial.runs and trial.run_id is None)
        ranks = [dataclasses.replace(base, rank=m.rank, local_rank=m.local_rank, local_world_size=m.local_world_size)
                 for m in members]
        if len(members) > 1:
            self.registry.held[trial.trial_id] = [(m.conn, a) for m, a in zip(members[1:], ranks[1:])]
        self.reply(members[0].conn, ranks[0])
