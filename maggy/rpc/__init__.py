"""Authenticated RPC between the driver and its workers."""

from maggy.rpc import messages
from maggy.rpc.client import RpcClient
from maggy.rpc.protocol import FrameError, MsgType, new_secret
from maggy.rpc.server import Inbound, RpcServer

__all__ = ["messages", "FrameError", "Inbound", "MsgType", "RpcClient", "RpcServer", "new_secret"]
