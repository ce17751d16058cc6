"""The secure local platform (a KDC, HA HDFS and YARN in Kerberos mode, MLflow), started once for
these tests and stopped after them."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLATFORM = [sys.executable, str(ROOT / "scripts" / "local_platform.py")]
PRINTED = {"HDFS_URI", "HADOOP_CONF_DIR", "KRB5_CONFIG", "MAGGY_PRINCIPAL", "MAGGY_KEYTAB", "MLFLOW_TRACKING_URI",
           "YARN_RM", "SPARK_YARN_PROPERTIES", "PYSPARK_PYTHON", "WEBHDFS_NN1", "WEBHDFS_NN2", "MAGGY_WEBHDFS_CA",
           "KDC_PORT", "REALM", "HDFS_ADMIN_PRINCIPAL", "HDFS_ADMIN_KEYTAB", "TOKEN_RENEW_INTERVAL_S",
           "TOKEN_MAX_LIFETIME_S"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/platform/secure/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.platform)


@pytest.fixture(scope="package")
def secure_platform():
    """KEY=VALUE lines printed by ``scripts/platform up --secure``."""
    try:
        out = subprocess.run([*PLATFORM, "up", "--secure"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        out = subprocess.CompletedProcess(e.cmd, -1, e.stdout, f"{e.stderr}\n(no answer in {e.timeout:.0f}s)")
    if out.returncode != 0:
        subprocess.run([*PLATFORM, "down", "--secure"], timeout=120)  # whatever it had started
        pytest.fail(f"scripts/platform up --secure failed:\n{out.stdout}\n{out.stderr}")
    env = dict(re.findall(r"^([A-Z0-9_]+)=(\S+)$", out.stdout, flags=re.MULTILINE))
    assert PRINTED <= set(env), out.stdout
    assert "WEBHDFS_URL" not in env, "maggy must find the nameservice's NameNodes by itself"
    yield env
    subprocess.run([*PLATFORM, "down", "--secure"], timeout=120)


@pytest.fixture
def maggy_ticket(secure_platform, tmp_path, monkeypatch) -> pathlib.Path:
    """The test user's ticket (``kinit -kt`` with its keytab) in a ticket cache of the test's own,
    as KRB5CCNAME, with the platform's KRB5_CONFIG."""
    ccache = tmp_path / "krb5cc_maggy"
    monkeypatch.setenv("KRB5_CONFIG", secure_platform["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    subprocess.run(["kinit", "-kt", secure_platform["MAGGY_KEYTAB"], secure_platform["MAGGY_PRINCIPAL"]], check=True,
                   timeout=30)
    return ccache
