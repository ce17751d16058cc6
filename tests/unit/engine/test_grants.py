"""The driver's grants by connection: a replaced token reaches each worker once, on a reply
that can carry it, through the wire."""

from __future__ import annotations

import json

from maggy.engine.grants import Grants
from maggy.rpc.messages import Assignment, Ok, Stop, Wait, decode


class Keeper:
    """A token keeper's state as the driver reads it: its grants and how often it replaced them."""

    def __init__(self) -> None:
        self.version, self.grants = 0, ({"authority": "ns1", "token": "first"},)

    def replace(self, token: str) -> None:
        self.grants = ({"authority": "ns1", "token": token},)
        self.version += 1


def test_without_a_secure_hdfs_nothing_is_granted():
    grants = Grants(None)
    assert grants.welcome(1) == () and grants.fresh(1, Ok()) == Ok() and grants.stats() == {}


def test_a_replaced_token_reaches_each_worker_once_with_its_next_ok_stop_or_trial():
    keeper = Keeper()
    grants = Grants(keeper)  # type: ignore[arg-type]
    assert grants.welcome(1) == keeper.grants and grants.welcome(2) == keeper.grants
    assert grants.fresh(1, Ok()) == Ok()  # nothing new
    keeper.replace("second")
    assert grants.fresh(1, Wait()) == Wait()  # carries none
    assert grants.fresh(1, Stop()).grants == ({"authority": "ns1", "token": "second"},)  # a stopped trial saves on
    assert grants.fresh(1, Ok()) == Ok()  # once
    trial = Assignment("t1", {"x": 1.0}, "/ckpt")
    assert grants.fresh(2, trial).grants == keeper.grants
    assert grants.welcome(3) == keeper.grants and grants.fresh(3, Ok()) == Ok()  # registered after: has it
    # through the wire, as the worker decodes it
    keeper.replace("third")
    sent = grants.fresh(1, Ok())
    body = json.loads(json.dumps(sent.to_body()))
    assert decode(sent.TYPE, body, replies=True).grants == ({"authority": "ns1", "token": "third"},)
