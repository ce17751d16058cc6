"""Application start on YARN: a Python process starting its session -> first trial running, by
where the containers get Spark's jars.

    ./scripts/platform up && .venv/bin/python bench/yarn_start.py [--repeat 2]

Client mode on the platform's YARN, 2 executors, one trivial experiment per application, each
in a fresh process (as a notebook kernel starts one), the modes interleaved in one sitting:

- upload: neither ``spark.yarn.jars`` nor ``spark.yarn.archive``; spark-submit zips the ~460 MB
  of jars and uploads them to HDFS for every application, and the NodeManager unpacks them.
- archive, new to the node: ``spark.yarn.archive`` on HDFS that no NodeManager has fetched yet
  (the first application after an upgrade).
- archive: the platform's default, already in the NodeManager's public cache.
- local jars: ``spark.yarn.jars=local:...``, jars installed on every node.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child() -> None:
    t0 = time.time()
    from pyspark.sql import SparkSession

    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import SparkBackend

    spark = SparkSession.builder.appName("maggy-yarn-start").getOrCreate()
    session = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2,
                                      num_workers=2, es_policy="none", name="start", experiment_dir=tmp)
        result = experiment.lagom(lambda x: x, cfg, backend=SparkBackend(spark), verbose=False)
    first = result.trials["start"].min().timestamp() - t0
    spark.stop()
    print("RESULT " + json.dumps({"session": session, "first_trial": first}))


def platform() -> tuple[dict[str, str], object]:
    env_file = ROOT / ".platform" / "env"
    if not env_file.exists():
        sys.exit("bench: start the local platform first: ./scripts/platform up")
    spec = importlib.util.spec_from_file_location("local_platform", ROOT / "scripts" / "local_platform.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(line.split("=", 1) for line in env_file.read_text().split()), module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    env, plat = platform()
    base = [line for line in Path(env["SPARK_YARN_PROPERTIES"]).read_text().splitlines()
            if line and not line.startswith("spark.yarn.archive")]
    archive = next(line.split(None, 1)[1] for line in Path(env["SPARK_YARN_PROPERTIES"]).read_text().splitlines()
                   if line.startswith("spark.yarn.archive"))
    import pyspark
    jars = Path(pyspark.__file__).parent / "jars"
    local_zip = plat.LIB.parent / f"spark-jars-{pyspark.__version__}.zip"
    uploaded: list[str] = []

    def fresh_archive() -> list[str]:  # a copy under a new name: not in any NodeManager's cache
        path = f"/apps/spark/bench-{uuid.uuid4().hex[:8]}.zip"
        with open(local_zip, "rb") as body:
            assert plat.webhdfs_create(env["WEBHDFS_URL"], path, body, local_zip.stat().st_size)
        uploaded.append(path)
        return [f"spark.yarn.archive {env['HDFS_URI']}{path}"]

    modes = {"upload": lambda: [], "archive, new to the node": fresh_archive,
             "archive": lambda: [f"spark.yarn.archive {archive}"], "local jars": lambda: [f"spark.yarn.jars local:{jars}/*"]}
    times: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        props = Path(tmp) / "spark.conf"
        for _ in range(args.repeat):
            for mode, extra in modes.items():
                props.write_text("\n".join(base + extra()) + "\n")
                child_env = {**os.environ, "HADOOP_CONF_DIR": env["HADOOP_CONF_DIR"], "MLFLOW_TRACKING_URI": "",
                             "PYSPARK_PYTHON": sys.executable,
                             "PYSPARK_SUBMIT_ARGS": f"--master yarn --properties-file {props} "
                                                    "--conf spark.executor.instances=2 pyspark-shell"}
                out = subprocess.run([sys.executable, __file__, "--child"], env=child_env, capture_output=True,
                                     text=True, timeout=900)
                lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
                if out.returncode != 0 or not lines:
                    sys.exit(f"bench: {mode} failed:\n{out.stderr[-3000:]}")
                times[mode].append(json.loads(lines[0][len("RESULT "):]))
    for path in uploaded:
        urllib.request.urlopen(urllib.request.Request(
            f"{env['WEBHDFS_URL']}/webhdfs/v1{path}?op=DELETE&user.name=maggy", method="DELETE"), timeout=30).read()

    ref = statistics.median(t["first_trial"] for t in times["archive"])
    print(f"\nYARN client mode, 2 executors, {args.repeat} application(s) per mode, interleaved\n")
    print(f"{'jars from':26} {'session up s':>13} {'first trial s':>14} {'vs archive':>11}")
    for mode, runs in times.items():
        session = statistics.median(t["session"] for t in runs)
        first = statistics.median(t["first_trial"] for t in runs)
        print(f"{mode:26} {session:13.1f} {first:14.1f} {first / ref:11.2f}")


if __name__ == "__main__":
    main()
