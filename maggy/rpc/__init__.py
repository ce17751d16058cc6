"""The wire both sides share: the framed, authenticated protocol, the typed messages and the
worker's client. The driver's server lives in :mod:`maggy.engine.server`."""

from maggy.rpc import messages
from maggy.rpc.client import RpcClient
from maggy.rpc.protocol import FrameError, MsgType, new_secret

__all__ = ["messages", "FrameError", "MsgType", "RpcClient", "new_secret"]
