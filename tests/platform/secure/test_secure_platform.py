"""The secure platform holds: WebHDFS answers only through SPNEGO (and only on the active
NameNode), YARN refuses unauthenticated REST calls and runs a Spark application with the user's
Kerberos ticket, a manual failover keeps HDFS's data. Each test finds the active NameNode anew:
other tests of this package fail over too."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import pytest

from tests.conftest import wait_for
from tests.platform.secure.conftest import PLATFORM, ROOT

requests = pytest.importorskip("requests")
requests_gssapi = pytest.importorskip("requests_gssapi")

JOB = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("maggy-secure-platform-test").getOrCreate()
print("APP", spark.sparkContext.applicationId)
print("ROWS", [row.id for row in spark.range(4).collect()])
spark.stop()
"""


def namenodes() -> tuple[str, str]:
    """The active NameNode and the standby, from ``status --secure`` (a failover earlier in this
    package moves the active one)."""
    out = subprocess.run([*PLATFORM, "status", "--secure"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    active = re.search(r"^ACTIVE_NAMENODE=(nn[12])$", out.stdout, flags=re.MULTILINE).group(1)
    return active, "nn2" if active == "nn1" else "nn1"


def webhdfs(platform: dict, nn: str, method: str, path: str, op: str, auth=True, **params):
    """A WebHDFS call to NameNode ``nn`` (nn1 or nn2), through SPNEGO with the test's ticket
    unless ``auth`` is False."""
    return requests.request(method, f"{platform[f'WEBHDFS_{nn.upper()}']}/webhdfs/v1{path}",
                            params={"op": op, **params}, verify=platform["MAGGY_WEBHDFS_CA"], timeout=30,
                            auth=requests_gssapi.HTTPSPNEGOAuth() if auth else None)


def write(platform: dict, nn: str, path: str, data: bytes) -> int:
    """Create ``path``: the NameNode, through SPNEGO, names a DataNode with a delegation token in
    its URL, which takes the data; the DataNode's status."""
    named = webhdfs(platform, nn, "PUT", path, "CREATE", overwrite="true", noredirect="true")
    assert named.status_code == 200, named.text
    return requests.put(named.json()["Location"], data=data, verify=platform["MAGGY_WEBHDFS_CA"], timeout=60).status_code


def read(platform: dict, nn: str, path: str) -> bytes:
    named = webhdfs(platform, nn, "GET", path, "OPEN", noredirect="true")
    assert named.status_code == 200, named.text
    got = requests.get(named.json()["Location"], verify=platform["MAGGY_WEBHDFS_CA"], timeout=60)
    assert got.status_code == 200, got.text
    return got.content


def gone(pid: int) -> bool:
    """The process ended (and is no zombie waiting for its parent)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_webhdfs_takes_only_spnego_and_only_on_the_active_namenode(secure_platform, maggy_ticket):
    for nn in ("nn1", "nn2"):
        for params in ({}, {"user.name": "maggy"}):  # no authentication; simple authentication
            refused = webhdfs(secure_platform, nn, "GET", "/user/maggy", "LISTSTATUS", auth=False, **params)
            assert refused.status_code in (401, 403), (nn, params, refused.status_code, refused.text)
    active, standby = namenodes()
    listed = webhdfs(secure_platform, active, "GET", "/user/maggy", "LISTSTATUS")
    assert listed.status_code == 200, listed.text
    assert "FileStatus" in listed.json()["FileStatuses"]
    on_standby = webhdfs(secure_platform, standby, "GET", "/user/maggy", "LISTSTATUS")
    assert on_standby.status_code == 403, on_standby.text
    assert on_standby.json()["RemoteException"]["exception"] == "StandbyException"


def test_yarn_refuses_unauthenticated_calls_and_runs_spark_with_a_ticket(secure_platform, maggy_ticket, tmp_path):
    rm = secure_platform["YARN_RM"]
    for params in ({}, {"user.name": "maggy"}):
        refused = requests.get(f"{rm}/ws/v1/cluster/apps", params=params, timeout=10)
        assert refused.status_code == 401, (params, refused.status_code, refused.text)

    import pyspark
    job = tmp_path / "job.py"
    job.write_text(JOB)
    # client mode as a user would submit: the ticket and the platform's conf; the properties file
    # points Spark's JVMs at the realm and has Spark take delegation tokens for the nameservice
    env = {**os.environ, "HADOOP_CONF_DIR": secure_platform["HADOOP_CONF_DIR"],
           "PYSPARK_PYTHON": secure_platform["PYSPARK_PYTHON"]}
    out = subprocess.run([str(pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "yarn",
                          "--deploy-mode", "client", "--properties-file", secure_platform["SPARK_YARN_PROPERTIES"],
                          str(job)], env=env, capture_output=True, text=True, timeout=300)
    assert "ROWS [0, 1, 2, 3]" in out.stdout, f"{out.stdout}\n{out.stderr[-5000:]}"
    app_id = re.search(r"^APP (\S+)$", out.stdout, flags=re.MULTILINE).group(1)

    def finished():
        got = requests.get(f"{rm}/ws/v1/cluster/apps/{app_id}", auth=requests_gssapi.HTTPSPNEGOAuth(), timeout=10)
        app = got.json()["app"] if got.status_code == 200 else {}
        return app if app.get("state") == "FINISHED" else None

    app = wait_for(finished, timeout=60, interval=0.5, what=f"{app_id} FINISHED")
    assert app["finalStatus"] == "SUCCEEDED"
    assert app["user"] == "maggy"


def test_failover_moves_the_active_namenode_and_keeps_the_data(secure_platform, maggy_ticket):
    active, standby = namenodes()
    before = os.urandom(300_000)
    assert write(secure_platform, active, "/user/maggy/before-failover.bin", before) == 201
    old = int((ROOT / ".platform" / "secure" / "pids" / active).read_text())

    out = subprocess.run([*PLATFORM, "failover"], capture_output=True, text=True, timeout=300)
    assert f"ACTIVE_NAMENODE={standby}" in out.stdout.split(), f"{out.stdout}\n{out.stderr}"

    wait_for(lambda: gone(old), timeout=30, interval=0.2, what=f"the old active NameNode ({active}) gone")
    assert write(secure_platform, standby, "/user/maggy/after-failover.txt", b"after") == 201
    assert read(secure_platform, standby, "/user/maggy/after-failover.txt") == b"after"
    assert read(secure_platform, standby, "/user/maggy/before-failover.bin") == before
    # the old active one came back, in a new process, as the standby: a failover can follow
    assert f"STANDBY_NAMENODE={active}" in out.stdout.split(), out.stdout
    assert namenodes() == (standby, active)
    on_standby = webhdfs(secure_platform, active, "GET", "/user/maggy", "LISTSTATUS")
    assert on_standby.status_code == 403 and "StandbyException" in on_standby.text, on_standby.text
