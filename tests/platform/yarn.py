"""What the platform tests need to run Spark on the platform's YARN and to look at YARN."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest


def yarn_env(platform: dict, *conf: str) -> dict:
    """The environment of a Python process whose SparkSession runs on YARN in client mode, with
    the platform's properties file and ``conf`` ("key=value") on top."""
    args = " ".join(f"--conf {c}" for c in conf)
    return {**os.environ, "HADOOP_CONF_DIR": platform["HADOOP_CONF_DIR"], "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_SUBMIT_ARGS": f"--master yarn --properties-file {platform['SPARK_YARN_PROPERTIES']} {args} "
                                   "pyspark-shell"}


def rm_get(platform: dict, path: str) -> dict:
    """A ResourceManager REST answer, e.g. ``rm_get(platform, "apps/<id>")["app"]``."""
    with urllib.request.urlopen(f"{platform['YARN_RM']}/ws/v1/cluster/{path}", timeout=10) as r:
        return json.loads(r.read())


def yarn_site(platform: dict, name: str, node: int = 1) -> str:
    """A value of the yarn-site.xml of the platform's first or second NodeManager (``node``)."""
    conf = platform["HADOOP_CONF_DIR"] if node == 1 else platform["YARN_NODE2_CONF_DIR"]
    root = ET.parse(os.path.join(conf, "yarn-site.xml")).getroot()
    return next(p.findtext("value") for p in root.iter("property") if p.findtext("name") == name)


class Job:
    """A Spark job script in a process of its own, spoken to over its standard streams (its
    stderr, Spark's log, goes to ``log``)."""

    def __init__(self, cmd: list[str], env: dict, log) -> None:
        self.log = log
        with open(log, "w") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        """The rest of the first line from now that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                pytest.fail(f"no {prefix} line from the job (exit {self.proc.poll()}):\n"
                            + open(self.log).read()[-4000:])
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self) -> int:
        """Let the job stop its session and end; kill it if it does not within two minutes."""
        try:
            self.proc.stdin.close()
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
