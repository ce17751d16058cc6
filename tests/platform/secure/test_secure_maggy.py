"""maggy on the secure platform: Kerberos, an HA NameNode pair, delegation tokens on the executors.

One experiment on secure YARN (client mode, the user's ticket) is looked at from every side:
where its trials ran and what their executors held, what is on HDFS, a NameNode failover in its
middle, its token's renewals, and the registry hand-off with artifacts on the secure HDFS. The
errors a user meets before anything happens are checked without Spark.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import uuid

import pytest

from maggy import Searchspace, experiment
from maggy.exceptions import BackendUnavailableError, InvalidParameterError
from maggy.store import hdfs_auth
from maggy.store.storage import storage_for
from tests.conftest import wait_for
from tests.helpers import ThreadBackend
from tests.platform.yarn import Job

ROOT = pathlib.Path(__file__).resolve().parents[3]
JOB = pathlib.Path(__file__).with_name("secure_job.py")


def kinit(platform: dict, ccache: pathlib.Path, principal: str, keytab: str, *extra: str) -> str:
    """A ticket of ``principal`` in the cache ``ccache``; its KRB5CCNAME."""
    env = {**os.environ, "KRB5_CONFIG": platform["KRB5_CONFIG"], "KRB5CCNAME": f"FILE:{ccache}"}
    subprocess.run(["kinit", *extra, "-kt", keytab, principal], env=env, check=True, timeout=30)
    return f"FILE:{ccache}"


@pytest.fixture
def as_user(secure_platform, maggy_ticket, monkeypatch):
    """This process acts as the test user with a ticket (kinit), as a notebook's kernel would."""
    for key in ("HADOOP_CONF_DIR", "MAGGY_WEBHDFS_CA"):
        monkeypatch.setenv(key, secure_platform[key])
    monkeypatch.delenv("WEBHDFS_URL", raising=False)
    hdfs_auth.configure()
    yield secure_platform
    hdfs_auth.configure()


@pytest.fixture
def admin(secure_platform, tmp_path):
    """A WebHDFS client of the HDFS superuser, in a process of its own (its own ticket cache)."""
    cc = kinit(secure_platform, tmp_path / "admin.cc", secure_platform["HDFS_ADMIN_PRINCIPAL"],
               secure_platform["HDFS_ADMIN_KEYTAB"])

    def run(code: str) -> str:
        env = {**os.environ, "HADOOP_CONF_DIR": secure_platform["HADOOP_CONF_DIR"], "KRB5CCNAME": cc,
               "KRB5_CONFIG": secure_platform["KRB5_CONFIG"], "MAGGY_WEBHDFS_CA": secure_platform["MAGGY_WEBHDFS_CA"]}
        prelude = "from maggy.store.storage import storage_for; hdfs = storage_for('hdfs://ns1/'); "
        out = subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout
    return run


def nameservice(platform: dict) -> str:
    return platform["HDFS_URI"].split("://", 1)[1].strip("/")


def test_an_ha_nameservice_resolves_to_both_namenodes_over_https_with_kerberos(as_user):
    hdfs = storage_for(as_user["HDFS_URI"] + "/user/maggy")
    hosts = {u.split("://", 1)[1].rstrip("/") for u in (as_user["WEBHDFS_NN1"], as_user["WEBHDFS_NN2"])}
    assert set(hdfs.nodes.hosts) == hosts and hdfs.nodes.https and hdfs.secure
    assert hdfs.normalize(as_user["HDFS_URI"] + "/user/maggy/x") == f"swebhdfs://{nameservice(as_user)}/user/maggy/x"
    path = hdfs.join(hdfs.normalize(as_user["HDFS_URI"] + "/user/maggy"), f"probe-{uuid.uuid4().hex}")
    hdfs.write_text(path, "written with SPNEGO")  # whichever NameNode is active answers, the standby is skipped
    assert hdfs.read_text(path) == "written with SPNEGO"


def test_each_error_is_named_before_any_side_effect(as_user, admin, tmp_path, monkeypatch):
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    name = f"errors-{uuid.uuid4().hex[:8]}"
    root = as_user["HDFS_URI"] + f"/user/maggy/{name}"

    def lagom(**settings):
        settings = {"experiment_dir": root, **settings}
        return experiment.lagom(lambda x: x, sp, num_trials=1, name=name, backend=ThreadBackend(),
                                tracking_uri=as_user["MLFLOW_TRACKING_URI"], verbose=False, **settings)

    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none.cc'}")  # no ticket
    with pytest.raises(BackendUnavailableError, match="no ticket: run kinit .*or pass principal= and keytab="):
        lagom()

    expired = kinit(as_user, tmp_path / "short.cc", as_user["MAGGY_PRINCIPAL"], as_user["MAGGY_KEYTAB"], "-l", "2s")
    monkeypatch.setenv("KRB5CCNAME", expired)
    wait_for(lambda: subprocess.run(["klist", "-s"], env={**os.environ}).returncode != 0, timeout=30,
             what="the short ticket to expire")
    with pytest.raises(BackendUnavailableError, match="expired.*run kinit again"):
        lagom()

    admin("hdfs.makedirs('/private'); hdfs.client.set_permission('/private', permission='700')")
    with pytest.raises(InvalidParameterError, match=r"HDFS user 'maggy' may not write to /private"):
        lagom(principal=as_user["MAGGY_PRINCIPAL"], keytab=as_user["MAGGY_KEYTAB"],
              experiment_dir=as_user["HDFS_URI"] + "/private/exp")

    # the clock ten minutes ahead of the KDC's (faketime; the allowed skew is five), in a process of its own
    code = ("from maggy import experiment, Searchspace; from tests.helpers import ThreadBackend; "
            f"experiment.lagom(lambda x: x, Searchspace(x=('DOUBLE', [0.0, 1.0])), num_trials=1, name={name!r}, "
            f"experiment_dir={root!r}, backend=ThreadBackend(), verbose=False)")
    env = {**os.environ, "KRB5CCNAME": kinit(as_user, tmp_path / "skew.cc", as_user["MAGGY_PRINCIPAL"],
                                             as_user["MAGGY_KEYTAB"])}
    out = subprocess.run(["faketime", "-f", "+10m", sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode != 0 and "clock and the KDC's differ" in out.stderr, out.stderr[-2000:]

    # nothing happened: no experiment directory, no MLflow experiment
    assert "False" in admin(f"print(hdfs.exists('/user/maggy/{name}'))")
    from mlflow.tracking import MlflowClient
    assert MlflowClient(as_user["MLFLOW_TRACKING_URI"]).get_experiment_by_name(name) is None


def test_an_experiment_on_secure_yarn_survives_a_failover_and_renews_its_token(as_user, tmp_path):
    """Client mode with the user's ticket; the experiment directory on the nameservice. Its
    trials write checkpoints from executors that hold no ticket and no keytab (only the token
    the driver granted), the active NameNode fails over in the middle, and the run lasts longer
    than the token's first lifetime."""
    platform = as_user
    renew = float(platform["TOKEN_RENEW_INTERVAL_S"])
    trials, seconds = 6, max(3.0, 1.2 * renew / 3)  # 3 rounds of 2 trials: longer than the token's first life
    root = platform["HDFS_URI"] + f"/user/maggy/yarn-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "MLFLOW_TRACKING_URI": platform["MLFLOW_TRACKING_URI"],
           "PYSPARK_SUBMIT_ARGS": f"--master yarn --properties-file {platform['SPARK_YARN_PROPERTIES']} pyspark-shell",
           "PYTHONPATH": str(ROOT)}
    job = Job([sys.executable, str(JOB), root, str(trials), str(seconds)], env, tmp_path / "job.log")
    try:
        app = job.expect("READY ", timeout=300)
        hdfs = storage_for(root)

        def finished() -> int:  # trials FINALIZED in the journal (root/<name>/<run>/journal.jsonl)
            journals = [hdfs.join(hdfs.normalize(root), n, r, "journal.jsonl") for n in
                        (hdfs.listdir(root) if hdfs.exists(root) else []) for r in hdfs.listdir(hdfs.join(root, n))]
            lines = [line for j in journals if hdfs.exists(j) for line in hdfs.read_text(j).splitlines()]
            return sum('"FINALIZED"' in line for line in lines)
        wait_for(lambda: finished() >= 2, timeout=300, what="two trials ended before the failover")
        active = re.findall(r"^ACTIVE_NAMENODE=(\w+)$", (ROOT / ".platform" / "secure" / "env").read_text(), re.M)
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "local_platform.py"), "failover"],
                             capture_output=True, text=True, timeout=300)
        now = re.findall(r"^ACTIVE_NAMENODE=(\w+)$", out.stdout, re.M)
        assert out.returncode == 0 and active and now and now != active, out.stdout + out.stderr[-3000:]
        result = json.loads(job.expect("RESULT ", timeout=600))
    finally:
        job.close()

    assert result["master"].startswith("yarn") and result["app"] == app
    rows = result["trials"]
    assert len(rows) == trials and {r["state"] for r in rows} == {"FINALIZED"}
    # every trial ran in a YARN container that held no ticket, no ticket cache and no keytab
    assert all(r["container"].startswith("container_") for r in rows), rows
    assert not any(r["ticket"] for r in rows) and {r["keytabs"] for r in rows} == {""} and {r["ccache"] for r in rows} == {""}
    # ... and wrote its checkpoint to the secure HDFS with the driver's token, the last ones after
    # the token's first expiry: renewals kept it alive
    exp = storage_for(root).normalize(result["experiment_dir"])
    hdfs = storage_for(root)
    for r in rows:
        x, step = hdfs.read_text(hdfs.join(exp, "trials", r["trial_id"], "state")).split()
        assert abs(float(x) - r["x"]) < 1e-9 and step == "3"
    assert result["stats"]["rpc"]["tls"] == "on"  # the token crossed the control channel encrypted, by default
    token = result["stats"]["hdfs_token"]
    assert token["renewals"] >= 1 and token["renew_failures"] == 0
    assert max(r["ended"] for r in rows) - min(r["started"] for r in rows) > renew  # the token's first life was over
    # the registry hand-off: the champion's artifacts are on the secure HDFS and load in a fresh process
    from mlflow.tracking import MlflowClient
    client = MlflowClient(platform["MLFLOW_TRACKING_URI"])
    version = client.get_model_version_by_alias("secure-model", "champion")
    best = max(rows, key=lambda r: r["metric"])
    assert client.get_run(version.run_id).data.tags["maggy.trial_id"] == best["trial_id"]
    model_id = getattr(version, "model_id", None) or version.source.rsplit("/", 1)[-1]
    location = client.get_logged_model(model_id).artifact_location
    assert location.startswith(f"swebhdfs://{nameservice(platform)}/") or \
        location.startswith(f"webhdfs://{nameservice(platform)}/"), location
    code = ("import mlflow, sys; mlflow.set_tracking_uri(sys.argv[1]);"
            "m = mlflow.sklearn.load_model('models:/secure-model@champion'); print('OUT', m.predict([[3.0]])[0])")
    out = subprocess.run([sys.executable, "-c", code, platform["MLFLOW_TRACKING_URI"]], capture_output=True, text=True,
                         timeout=300, env={**os.environ})
    assert "OUT 1" in out.stdout, out.stderr[-3000:]


def test_cluster_mode_logs_in_with_spark_submits_keytab(as_user, tmp_path):
    """spark-submit --deploy-mode cluster --principal --keytab, with no ticket anywhere: the
    driver runs in the application master and logs in to WebHDFS with the copy of the keytab
    YARN put there, as Spark does for its own tokens."""
    import pyspark

    platform = as_user
    root = platform["HDFS_URI"] + f"/user/maggy/cluster-{uuid.uuid4().hex[:8]}"
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env.update(KRB5CCNAME=f"FILE:{tmp_path / 'no-ticket.cc'}",
               SPARK_SUBMIT_OPTS=f"-Djava.security.krb5.conf={platform['KRB5_CONFIG']}")
    am_env = {"KRB5_CONFIG": platform["KRB5_CONFIG"], "MAGGY_WEBHDFS_CA": platform["MAGGY_WEBHDFS_CA"],
              "MLFLOW_TRACKING_URI": platform["MLFLOW_TRACKING_URI"], "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(spark_submit), "--master", "yarn", "--deploy-mode", "cluster",
                          "--properties-file", platform["SPARK_YARN_PROPERTIES"], "--principal", platform["MAGGY_PRINCIPAL"],
                          "--keytab", platform["MAGGY_KEYTAB"], "--conf", "spark.executor.instances=2",
                          *(f"--conf=spark.yarn.appMasterEnv.{k}={v}" for k, v in am_env.items()),
                          str(JOB), root, "4", "1.0"], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0 and "final status: SUCCEEDED" in out.stdout + out.stderr, out.stderr[-4000:]
    hdfs = storage_for(root)
    runs = [hdfs.join(hdfs.normalize(root), name, run) for name in hdfs.listdir(root)
            for run in hdfs.listdir(hdfs.join(root, name))]
    assert len(runs) == 1
    saved = json.loads(hdfs.read_text(hdfs.join(runs[0], "result.json")))
    assert saved["outcome"] == "finished" and [t["state"] for t in saved["trials"]] == ["FINALIZED"] * 4
    assert saved["stats"]["spark_master"] == "yarn" and saved["stats"]["hdfs_token"]["renew_failures"] == 0
    for trial in saved["trials"]:  # written by the executors with the token the AM's driver obtained
        assert hdfs.read_text(hdfs.join(runs[0], "trials", trial["trial_id"], "state")).split()[1] == "3"


def test_a_token_is_replaced_before_its_max_date_and_the_workers_write_on_with_the_new_one(as_user, tmp_path):
    """The platform's tokens live at most TOKEN_MAX_LIFETIME_S, which no renewal extends; a
    trial runs longer. Its worker, a process of its own whose Kerberos is cut off, checkpoints to
    the secure HDFS every second with the token the driver granted: after the first token's max
    date it does so with the replacement, handed to it with a heartbeat's reply."""
    from maggy.backends import LocalBackend

    lifetime = float(as_user["TOKEN_MAX_LIFETIME_S"])
    root = as_user["HDFS_URI"] + f"/user/maggy/replaced-{uuid.uuid4().hex[:8]}"
    authority = nameservice(as_user)

    def train(x, reporter):
        import hashlib
        import os
        import time

        from maggy.store import hdfs_auth

        os.environ["KRB5CCNAME"] = "FILE:/nonexistent/krb5cc"  # no Kerberos here: only a granted token works
        tokens = []  # a digest of each token this worker held, in order
        started, step = time.time(), 0
        while time.time() - started < lifetime + 8:
            digest = hashlib.sha256(hdfs_auth.grant_for(authority).token.encode()).hexdigest()[:12]
            if not tokens or tokens[-1] != digest:
                tokens.append(digest)
            with open(os.path.join(reporter.checkpoint_dir, "state"), "w") as f:
                f.write(f"{step} {time.time()}")
            reporter.checkpoint()  # an upload to the secure HDFS
            reporter.broadcast(x, step)
            step += 1
            time.sleep(1.0)
        return {"metric": x, "steps": step, "tokens": ",".join(tokens), "worker_pid": os.getpid()}

    result = experiment.lagom(train, Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=1, num_workers=1,
                              es_policy="none", hb_interval=0.2, name="replaced", experiment_dir=root,
                              backend=LocalBackend(), verbose=False)
    (row,) = result.trials.to_dict(orient="records")
    assert row["state"] == "FINALIZED" and row["worker_pid"] != os.getpid()
    token = result.stats["hdfs_token"]
    assert token["replacements"] >= 1 and token["renew_failures"] == 0 and token["replace_failures"] == 0, token
    assert 2 <= len(row["tokens"].split(",")) <= 1 + token["replacements"]  # the worker took the new token
    first_max_date = token["max_dates"][0]
    assert first_max_date is not None and first_max_date < token["max_dates"][-1]
    # the last checkpoint, written after the first token could no longer be used, is on HDFS
    hdfs = storage_for(root)
    step, written = hdfs.read_text(hdfs.join(hdfs.normalize(result.experiment_dir), "trials", row["trial_id"],
                                             "state")).split()
    assert int(step) == row["steps"] - 1 and float(written) > first_max_date + 2
