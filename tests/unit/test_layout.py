"""The package's layout holds: the executor side never imports the driver side.

Workers run inside Spark executors: what they import must not pull in the driver (its event
loop, the RPC server, MLflow's tracker, progress and plots), which would also make every
executor import pandas, plotly or MLflow. The imports are read from the source (ast), so a
lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "maggy"
#: What the executor side starts from: the task and process entry points, and the wire.
WORKER_SIDE = ["maggy.runtime.entry", "maggy.runtime.worker", "maggy.rpc.client", "maggy.rpc.messages",
               "maggy.ablation"]  # an ablation study's train_fn is unpickled on the executors
#: The driver side: never imported on an executor.
DRIVER_SIDE = ("maggy.engine", "maggy.ui", "maggy.integrations", "maggy.experiment", "maggy.result",
               "maggy.callbacks", "maggy.config", "maggy.store.journal", "maggy.store.lease", "maggy.store.resume",
               "maggy.store.replay", "maggy.search.optimizers", "maggy.search.earlystop")


def module_file(name: str) -> pathlib.Path | None:
    path = ROOT.parent / name.replace(".", "/")
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imports_of(name: str) -> set[str]:
    """The maggy modules ``name`` imports anywhere in its source, with their parent packages."""
    path = module_file(name)
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
    out = set()
    for mod in found:
        if mod == "maggy" or mod.startswith("maggy."):
            parts = mod.split(".")
            out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]))}
    return out


def reach(start: str) -> dict[str, str]:
    """Every maggy module importing ``start`` pulls in, each with the module that imports it."""
    seen = {start: ""}
    todo = [start]
    while todo:
        mod = todo.pop()
        for dep in imports_of(mod):
            if dep not in seen:
                seen[dep] = mod
                todo.append(dep)
    return seen


@pytest.mark.parametrize("start", WORKER_SIDE)
def test_the_worker_side_never_imports_the_driver_side(start):
    seen = reach(start)
    bad = sorted(m for m in seen if m.startswith(DRIVER_SIDE))
    chains = []
    for mod in bad:
        chain = [mod]
        while seen[chain[-1]]:
            chain.append(seen[chain[-1]])
        chains.append(" <- ".join(chain))
    assert not bad, "\n".join(chains)


def test_the_check_sees_imports_inside_functions(tmp_path):
    """The reader is not blind: the driver imports the worker side, also lazily."""
    assert "maggy.runtime.worker" in reach("maggy.engine.driver")
    assert "maggy.ui.plot" in reach("maggy.integrations.mlflow")  # imported inside a method


def test_every_module_has_a_home():
    """Nothing new lands flat at the top: the top holds the public entry points and what both
    sides share."""
    top = sorted(p.stem for p in ROOT.glob("*.py"))
    assert top == ["__init__", "__main__", "backends", "callbacks", "config", "earlystop", "exceptions", "experiment",
                   "optimizers", "result", "trial", "validation"]
