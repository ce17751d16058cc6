"""MLflow's worker half without a server: what a trial costs a worker that opens no run."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_worker_that_opens_no_run_never_imports_mlflow():
    """log_trials other than "all", or a rank other than 0: importing MLflow would cost each
    Python worker seconds at its first trial for nothing (a fresh interpreter shows it)."""
    code = textwrap.dedent("""
        import sys
        from maggy.integrations.mlflow.worker import MlflowTrialTracking
        spec = MlflowTrialTracking("http://127.0.0.1:9", "1", "parent", log_trials="best")
        with spec.trial("t1", None, "exp-1", first=True) as run_id:
            assert run_id is None
        with MlflowTrialTracking("http://127.0.0.1:9", "1", "parent").trial("t2", None, "exp-2", chief=False) as run_id:
            assert run_id is None
        print("mlflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
