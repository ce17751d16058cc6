from __future__ import annotations

import contextlib
import http.server
import json
import threading
from typing import Iterator

import pytest

from maggy.store import hdfs_auth
from maggy.store.hdfs import CredentialsRefused, HdfsStorage
from maggy.store.storage import as_given, storage_for


def test_an_hdfs_directory_is_shown_as_the_user_gave_it(monkeypatch):
    monkeypatch.setenv("WEBHDFS_URL", "http://namenode:9870")
    given = "hdfs://namenode:8020/user/me/experiments/"
    inside = storage_for(given).join(storage_for(given).normalize(given), "mnist", "run-1")
    assert inside == "webhdfs://namenode:9870/user/me/experiments/mnist/run-1"  # how maggy reaches it
    assert as_given(inside, given) == "hdfs://namenode:8020/user/me/experiments/mnist/run-1"
    assert as_given("webhdfs://namenode:9870/elsewhere/x", given) == "webhdfs://namenode:9870/elsewhere/x"
    webhdfs = "webhdfs://namenode:9870/user/me/experiments"
    assert as_given(inside, webhdfs) == inside  # given as webhdfs://: shown so


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A WebHDFS stand-in answering with ``handler`` on loopback, for the test's length: its host:port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_hdfs_read_cut_short_by_the_datanode_is_read_again():
    """A DataNode may close a read of a file under append before its last bytes (seen on the
    platform while the driver appended the journal): the read is made again, not failed."""
    body = b"line one\nline two\n"
    served = []

    class WebHdfs(_Quiet):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.startswith("/webhdfs/"):  # the NameNode: redirect to the DataNode
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/datanode{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if len(served) > 1:  # the first read is cut: headers, then the connection closes
                self.wfile.write(body)
            self.close_connection = True

    with serving(WebHdfs) as address:
        assert HdfsStorage(address).read_text("webhdfs://x/exp/journal.jsonl") == body.decode()
    assert len(served) == 2 and all("op=OPEN" in p and "/exp/journal.jsonl" in p for p in served)


def test_hdfs_refusing_a_token_or_a_login_is_said_as_such_not_as_pyhdfs_assertion_error():
    """Hadoop answers a cancelled or expired delegation token with a SecurityException as 403
    (a real NameNode's body, served on loopback); pyhdfs expects 401 for it and raised
    AssertionError. A worker holding a grant hears what happened to its token and the way back;
    the driver hears about its Kerberos login."""
    body = json.dumps({"RemoteException": {
        "exception": "SecurityException", "javaClassName": "java.lang.SecurityException",
        "message": "Failed to obtain user group information: org.apache.hadoop.security.token.SecretManager$"
                   "InvalidToken: token (token for maggy: HDFS_DELEGATION_TOKEN owner=maggy, sequenceNumber=7) "
                   "can't be found in cache"}}).encode()

    class NameNode(_Quiet):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(NameNode) as address:
        with pytest.raises(CredentialsRefused, match=r"refused this process's credentials.*Run kinit again"):
            HdfsStorage(address).exists("webhdfs://x/exp/journal.jsonl")
        hdfs_auth.install([hdfs_auth.Grant(address, (address,), False, "TOKEN").to_wire()])
        try:
            with pytest.raises(CredentialsRefused, match=r"can't be found in cache.*cancelled.*max-lifetime.*same "
                                                          r"lagom call again") as refused:
                HdfsStorage(address).read_text("webhdfs://x/exp/journal.jsonl")
        finally:
            hdfs_auth._Process.grants.pop(address, None)
        assert refused.value.status == 403 and refused.value.exception == "SecurityException"
