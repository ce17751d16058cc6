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
