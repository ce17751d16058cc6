"""The driver–worker contract: every message survives its body, and misfits are refused."""

from __future__ import annotations

import json

import pytest

from maggy.rpc.messages import (
    REPLIES,
    REQUESTS,
    Assignment,
    BodyError,
    Done,
    Final,
    Get,
    Log,
    Metric,
    Ok,
    Register,
    Stop,
    Wait,
    Welcome,
    WorkerError,
    decode,
)
from maggy.rpc.protocol import MsgType
from maggy.trial import TrialState

EXAMPLES = [
    Register(worker=1, host="node-3", pid=42, gpus=("0",)), Get(worker=0),
    Metric(worker=0, trial_id="t", points=((0, 0.5), (1, 0.25)), run_id="r"),
    Log(worker=0, trial_id="t", lines=("a", "b")),
    Final(worker=0, trial_id="t", state=TrialState.ERROR, start=1.0, end=2.5, extra={"loss": 0.1},
          error={"type": "ValueError", "message": "m", "traceback": "tb"}, points=((3, 1.0),), logs=("x",)),
    WorkerError(worker=2, message="E: m"),
    Assignment(trial_id="t", params={"lr": 0.1}, checkpoint_dir="/c", budget=3, next_step=4),
    Assignment(trial_id="u", params={}, checkpoint_dir="/c", budget=0.5), Ok(), Stop(), Wait(retry_after=0.05), Done(),
    Welcome(grants=({"authority": "ns1", "hosts": ["nn1:9871", "nn2:9871"], "https": True, "token": "t", "ca": None},)),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_through_json(msg):
    body = json.loads(json.dumps(msg.to_body()))
    assert decode(msg.TYPE, body, replies=msg.TYPE in REPLIES) == msg


def test_budget_keeps_its_type():
    assert decode(MsgType.TRIAL, Assignment("t", {}, "/c", budget=3).to_body(), replies=True).budget.__class__ is int


@pytest.mark.parametrize("mtype, body, problem", [
    (MsgType.GET, {}, "missing field 'worker'"),
    (MsgType.GET, {"worker": True}, "expected int"),
    (MsgType.GET, {"worker": -2}, ">= 0"),
    (MsgType.METRIC, {"worker": 0, "trial_id": "t", "points": [[0]]}, "expected 2 items"),
    (MsgType.METRIC, {"worker": 0, "trial_id": "t", "points": [[0, 1e400]]}, "finite number"),
    (MsgType.FINAL, {"worker": 0, "trial_id": "t", "state": "RUNNING", "start": 0, "end": 1}, "must be FINALIZED"),
    (MsgType.FINAL, {"worker": 0, "trial_id": "t", "state": "ERROR", "start": 0, "end": 1, "error": {"type": 1}},
     "error must hold"),
    (MsgType.LOG, {"worker": 0, "trial_id": "t", "lines": "abc"}, "expected a list"),
    (MsgType.TRIAL, {"trial_id": "t"}, "not a request"),
])
def test_misfits_are_refused_with_the_field_named(mtype, body, problem):
    with pytest.raises(BodyError, match=problem):
        decode(mtype, body)


def test_every_type_has_one_message():
    assert set(REQUESTS) | set(REPLIES) == set(MsgType)
    assert not set(REQUESTS) & set(REPLIES)
