"""What each worker holds of the driver's grants (a secure HDFS's delegation token): the
token's keeper replaces it before its max date, and each worker gets the new grants with its
next reply that can carry them (an OK, a STOP, a TRIAL), once."""

from __future__ import annotations

import dataclasses

from maggy.rpc.messages import Assignment, Message, Ok, Stop
from maggy.store.hdfs_auth import TokenKeeper


class Grants:
    """The grants of ``keeper`` (none without one), by connection, from :meth:`start` to :meth:`stop`."""

    def __init__(self, keeper: TokenKeeper | None) -> None:
        self.keeper = keeper
        self._held: dict[int, int] = {}  # connection -> the keeper's version it holds

    def start(self) -> None:
        if self.keeper is not None:
            self.keeper.start()

    def stop(self) -> None:
        """Cancel the tokens (the workers are done with them)."""
        if self.keeper is not None:
            self.keeper.stop()

    def stats(self) -> dict:
        """The token's figures for the result's stats (``hdfs_token``), if there is one."""
        return {} if self.keeper is None else {"hdfs_token": self.keeper.stats()}

    def welcome(self, conn: int) -> tuple[dict, ...]:
        """The grants for a worker that has just registered on ``conn``."""
        if self.keeper is None:
            return ()
        self._held[conn] = self.keeper.version
        return self.keeper.grants

    def fresh(self, conn: int, reply: Message) -> Message:
        """``reply``, carrying the current grants where the worker on ``conn`` holds older ones."""
        keeper = self.keeper
        if keeper is None or not isinstance(reply, (Ok, Stop, Assignment)) or self._held.get(conn, 0) >= keeper.version:
            return reply
        version, grants = keeper.version, keeper.grants  # the keeper sets the grants before the version
        self._held[conn] = version
        return dataclasses.replace(reply, grants=grants)
