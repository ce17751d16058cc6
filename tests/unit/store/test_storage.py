from __future__ import annotations

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


def test_an_hdfs_read_cut_short_by_the_datanode_is_read_again():
    """A DataNode may close a read of a file under append before its last bytes (seen on the
    platform while the driver appended the journal): the read is made again, not failed."""
    import http.server
    import threading

    from maggy.store.hdfs import HdfsStorage

    body = b"line one\nline two\n"
    served = []

    class WebHdfs(http.server.BaseHTTPRequestHandler):
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

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebHdfs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        storage = HdfsStorage(f"127.0.0.1:{server.server_address[1]}")
        assert storage.read_text("webhdfs://x/exp/journal.jsonl") == body.decode()
    finally:
        server.shutdown()
        server.server_close()
    assert len(served) == 2 and all("op=OPEN" in p and "/exp/journal.jsonl" in p for p in served)
