"""The package's layout holds: DESIGN.md's rules ("Layout"), checked on every module of maggy/.

- :data:`MAY_IMPORT` is what each home (a package under maggy/, or a module at the top) may
  import: dependencies point inward. The wire (``maggy.rpc``) sits below both sides and imports
  nothing above it; ``maggy.search`` imports no other home but the shared base, and no I/O
  either (:data:`IO_MODULES`); ``maggy.store`` imports no engine, ui or integrations.
- The worker side (the worker's loop, the wire, ablation studies, whose ``train_fn`` is
  unpickled on the executors, and every tracker's worker half, a ``*.worker`` module under
  ``maggy.integrations``) never loads the driver side: its event loop, the RPC server, the
  trackers, progress and plots, which would also make every executor import pandas, plotly or
  MLflow.
- No circles between files: imports point one way.

Imports are read from the source (ast), so that a lazy import inside a function counts too. An
import under ``if TYPE_CHECKING:`` counts for the table and for circles (it is a dependency of
the design, and mypy follows it) but not for what the worker side loads, since it never runs.
An edge of the import graph goes to the file an import names; the package ``__init__`` files
Python runs on the way are loaded (the worker-side check follows them) but are no edge of a
circle, or a package that re-exports its modules would be a circle with each of them.

A test plants each kind of forbidden import in a copy of the package and sees its check fail.
"""

from __future__ import annotations

import ast
import functools
import pathlib
import shutil
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "maggy"

#: What both sides share, at the bottom.
BASE = frozenset({"maggy.exceptions", "maggy.trial", "maggy.validation"})
#: What any home above the wire may use: the base and the pure search.
LOW = BASE | {"maggy.search"}
HOMES = frozenset({"maggy", "maggy.__main__", "maggy.ablation", "maggy.backends", "maggy.callbacks", "maggy.config",
                   "maggy.earlystop", "maggy.engine", "maggy.experiment", "maggy.integrations", "maggy.optimizers",
                   "maggy.result", "maggy.rpc", "maggy.runtime", "maggy.search", "maggy.sklearn", "maggy.store",
                   "maggy.ui"}) | BASE
#: What each home may import besides itself (a home is a package under maggy/, or a module at the top).
MAY_IMPORT: dict[str, frozenset[str]] = {
    # the shared base: errors, the trial record, argument checks
    "maggy.exceptions": frozenset(),
    "maggy.validation": frozenset({"maggy.exceptions"}),
    "maggy.trial": frozenset({"maggy.exceptions", "maggy.validation"}),
    # the wire, below both sides: neither reaches up or across for it, and it reaches up to neither
    "maggy.rpc": frozenset({"maggy.exceptions", "maggy.trial"}),
    # what to try next: pure decisions, no I/O (see IO_MODULES); at the top, its public aliases
    "maggy.search": BASE,
    "maggy.earlystop": frozenset({"maggy.search"}),
    "maggy.optimizers": frozenset({"maggy.search"}),
    # the executor side: the worker loop, and ablation studies (unpickled with train_fn)
    "maggy.runtime": LOW | {"maggy.rpc", "maggy.store"},
    "maggy.ablation": LOW,
    # storage, the journal, replay: no engine, ui or integrations
    "maggy.store": LOW | {"maggy.callbacks", "maggy.config", "maggy.result"},
    # the driver side's API: what lagom returns, the callbacks' interface, the config
    "maggy.result": LOW | {"maggy.ablation"},
    "maggy.callbacks": LOW | {"maggy.result"},
    "maggy.config": LOW | {"maggy.store", "maggy.result"},
    # progress, plots, the CLI: they read results, they drive nothing
    "maggy.ui": LOW | {"maggy.ablation", "maggy.callbacks", "maggy.result", "maggy.store"},
    # trackers and services: anything but the loop that calls them
    "maggy.integrations": HOMES - {"maggy", "maggy.engine", "maggy.experiment", "maggy.sklearn"},
    # the driver, and lagom above it
    "maggy.engine": HOMES - {"maggy", "maggy.experiment"},
    "maggy.backends": frozenset({"maggy.engine"}),
    "maggy.experiment": HOMES - {"maggy", "maggy.sklearn"},
    # scikit-learn's search estimator: lagom behind scikit-learn's interface (its workers' half is in integrations)
    "maggy.sklearn": HOMES - {"maggy", "maggy.sklearn"},
    # the package: the light names at once (workers import it), the rest on first use (importlib)
    "maggy": BASE | {"maggy.runtime", "maggy.search"},
    "maggy.__main__": frozenset({"maggy.ui"}),
}
#: Modules that do I/O (the network, processes, the file system, Spark, HDFS, trackers): none in search.
IO_MODULES = frozenset({"socket", "socketserver", "selectors", "ssl", "http", "urllib", "requests", "subprocess",
                        "multiprocessing", "os", "shutil", "tempfile", "pathlib", "glob", "pyspark", "py4j", "pyhdfs",
                        "mlflow", "tensorboard", "tensorboardX"})
NO_IO = ("maggy.search",)
#: Where the executor side's modules live (with every ``*.worker`` module under maggy.integrations).
WORKER_HOMES = ("maggy.runtime", "maggy.rpc", "maggy.ablation")
#: The driver side: never loaded on an executor.
DRIVER_SIDE = ("maggy.engine", "maggy.ui", "maggy.integrations", "maggy.experiment", "maggy.result",
               "maggy.callbacks", "maggy.config", "maggy.store.journal", "maggy.store.lease", "maggy.store.resume",
               "maggy.store.replay", "maggy.search.optimizers", "maggy.search.earlystop")


@dataclass(frozen=True)
class Import:
    """What one import names: a maggy module (the file it names), else the top-level module."""

    target: str
    line: int
    #: Under ``if TYPE_CHECKING:``: for type checkers only, never run.
    typing_only: bool


def home_of(module: str) -> str | None:
    """The row of :data:`MAY_IMPORT` that ``module`` belongs to (None: it has no home)."""
    home = ".".join(module.split(".")[:2])
    return home if home in MAY_IMPORT else None


def parents(module: str) -> list[str]:
    """The packages Python runs before ``module``: ``maggy``, ``maggy.x``, ..."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(node: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``node``, also inside functions, and whether it is typing-only."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, typing_only
    for field, value in ast.iter_fields(node):
        guarded = typing_only or (isinstance(node, ast.If) and field == "body" and _type_checking(node.test))
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield from _statements(child, guarded)


class Package:
    """The modules of the maggy package under ``root`` (``root/maggy``) and what each imports."""

    def __init__(self, root: pathlib.Path) -> None:
        self.files: dict[str, pathlib.Path] = {}
        for path in sorted((root / "maggy").rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            self.files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
        self.imports = {name: list(self._read(name)) for name in self.files}

    def _resolve(self, dotted: str) -> str:
        """The module file that holds ``dotted``: itself, or the nearest package or module above."""
        while dotted not in self.files and "." in dotted:
            dotted = dotted.rsplit(".", 1)[0]
        return dotted

    def _read(self, name: str) -> Iterator[Import]:
        path = self.files[name]
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node, typing_only in _statements(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    above = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(above + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                mine = target == "maggy" or target.startswith("maggy.")
                yield Import(self._resolve(target) if mine else target.split(".")[0], node.lineno, typing_only)

    def maggy_imports(self, name: str) -> list[Import]:
        """What ``name`` imports of maggy (itself excluded)."""
        return [i for i in self.imports[name] if i.target in self.files and i.target != name]

    def loads(self, start: str) -> dict[str, str]:
        """Every maggy module that importing ``start`` runs, each with the module that loads it."""
        seen = {start: ""} | {p: start for p in parents(start)}
        todo = list(seen)
        while todo:
            mod = todo.pop()
            for imp in self.maggy_imports(mod):
                for dep in [*parents(imp.target), imp.target]:
                    if not imp.typing_only and dep not in seen:
                        seen[dep] = mod
                        todo.append(dep)
        return seen


def outside_the_table(package: Package) -> list[str]:
    """Each module without a home, and each import of a home that its row does not allow."""
    out = []
    for name in package.files:
        home = home_of(name)
        if home is None:
            out.append(f"{name}: no home in MAY_IMPORT")
            continue
        for imp in package.maggy_imports(name):
            there = home_of(imp.target)
            if there != home and there not in MAY_IMPORT[home]:
                out.append(f"{name}:{imp.line} imports {imp.target}, which {home} may not ({there} is not in its row)")
    return out


def io_in_search(package: Package) -> list[str]:
    """Each import of an I/O module (:data:`IO_MODULES`) in a home that does no I/O."""
    return [f"{name}:{imp.line} imports {imp.target}" for name in package.files if home_of(name) in NO_IO
            for imp in package.imports[name] if imp.target in IO_MODULES]


def worker_side(package: Package) -> set[str]:
    """The executor side's modules: those of :data:`WORKER_HOMES` and the trackers' worker halves."""
    return {m for m in package.files if home_of(m) in WORKER_HOMES
            or (m.startswith("maggy.integrations.") and m.endswith(".worker"))}


def driver_side_on_workers(package: Package) -> list[str]:
    """Where the worker side loads the driver side: each driver-side module that a module outside
    the driver side loads, with the shortest chain from a worker-side module that leads there."""
    workers = worker_side(package)
    # the packages above a worker half run with it: they must stay light, and what they load is followed
    allowed = workers | {p for m in workers for p in parents(m)}
    driver = {m for m in package.files if m not in allowed and any(m == d or m.startswith(d + ".") for d in DRIVER_SIDE)}
    crossings: dict[tuple[str, str], list[str]] = {}
    for start in sorted(workers):
        seen = package.loads(start)
        for mod in sorted(seen.keys() & driver):
            if seen[mod] in driver:
                continue  # behind another crossing
            chain = [mod]
            while seen[chain[-1]]:
                chain.append(seen[chain[-1]])
            if len(chain) < len(crossings.get((mod, seen[mod]), chain + [""])):
                crossings[mod, seen[mod]] = chain
    return [" <- ".join(chain) for _, chain in sorted(crossings.items())]


def circles(package: Package) -> list[str]:
    """One circle of each set of files that import each other, as ``a -> b -> a``."""
    edges = {m: sorted({i.target for i in package.maggy_imports(m)}) for m in package.files}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return [" -> ".join(_circle(edges, component)) for component in found]


def _circle(edges: dict[str, list[str]], component: list[str]) -> list[str]:
    """The shortest circle through the first module of ``component`` (a strongly connected set)."""
    start, inside = component[0], set(component)
    came: dict[str, str] = {start: ""}
    todo = [start]
    while todo:
        mod = todo.pop(0)
        for dep in edges[mod]:
            if dep == start:
                path = [mod]
                while came[path[-1]]:
                    path.append(came[path[-1]])
                return [*reversed(path), start]
            if dep in inside and dep not in came:
                came[dep] = mod
                todo.append(dep)
    raise AssertionError(f"no circle through {start}")


@functools.cache
def package() -> Package:
    return Package(ROOT.parent)


def test_every_home_imports_only_what_the_table_allows():
    assert set(MAY_IMPORT) == HOMES and all(row <= HOMES for row in MAY_IMPORT.values())
    assert not outside_the_table(package()), "\n".join(outside_the_table(package()))


def test_search_does_no_io():
    assert not io_in_search(package()), "\n".join(io_in_search(package()))


def test_the_worker_side_never_loads_the_driver_side():
    assert not driver_side_on_workers(package()), "\n".join(driver_side_on_workers(package()))


def test_no_circles_between_files():
    assert not circles(package()), "\n".join(circles(package()))


#: A forbidden import for each check, planted at the end of files of a copy of the package
#: (a file is created when missing), and what the check's report then says.
PLANTS: list[tuple[dict[str, str], Callable[[Package], list[str]], str]] = [
    ({"rpc/protocol.py": "def _up():\n    from maggy.engine import server\n"}, outside_the_table,
     "maggy.rpc.protocol:"),
    ({"search/searchspace.py": "from maggy.store.storage import storage_for\n"}, outside_the_table,
     "maggy.search.searchspace:"),
    ({"search/optimizers/base.py": "def _fetch():\n    import urllib.request\n"}, io_in_search,
     "maggy.search.optimizers.base:"),
    ({"store/events.py": "def _show():\n    from maggy.ui import plot\n"}, outside_the_table, "maggy.store.events:"),
    ({"runtime/usage.py": "def _drive():\n    from maggy.engine import driver\n"}, driver_side_on_workers,
     "maggy.engine.driver <- maggy.runtime.usage"),
    ({"integrations/acme/__init__.py": "", "integrations/acme/tracker.py": "",
      "integrations/acme/worker.py": "def _trial():\n    from maggy.integrations.acme import tracker\n"},
     driver_side_on_workers, "maggy.integrations.acme.tracker <- maggy.integrations.acme.worker"),
    ({"ablation/table.py": "from maggy.result import Result\n"}, circles,
     "maggy.ablation.table -> maggy.result -> maggy.ablation.table"),
]


def planted(tmp_path: pathlib.Path, plants: dict[str, str]) -> Package:
    """A copy of the package with ``plants``."""
    shutil.copytree(ROOT, tmp_path / "maggy", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in plants.items():
        path = tmp_path / "maggy" / rel
        path.parent.mkdir(exist_ok=True)
        path.write_text((path.read_text() if path.exists() else "") + "\n" + text)
    return Package(tmp_path)


@pytest.mark.parametrize("plants, check, says", PLANTS, ids=[f"{c.__name__}:{list(p)[-1]}" for p, c, _ in PLANTS])
def test_a_planted_import_fails_its_check(tmp_path, plants, check, says):
    new = set(check(planted(tmp_path, plants))) - set(check(package()))
    assert any(says in line for line in new), new


def test_typing_only_imports_count_for_the_design_not_for_what_workers_load(tmp_path):
    typing_only = planted(tmp_path, {"runtime/usage.py": "if TYPE_CHECKING:\n    from maggy.engine import driver\n"})
    assert set(driver_side_on_workers(typing_only)) == set(driver_side_on_workers(package()))
    assert any(line.startswith("maggy.runtime.usage:") for line in
               set(outside_the_table(typing_only)) - set(outside_the_table(package())))


def test_every_module_has_a_home():
    """Nothing new lands flat at the top: the top holds the public entry points and what both
    sides share."""
    top = sorted(p.stem for p in ROOT.glob("*.py"))
    assert top == ["__init__", "__main__", "backends", "callbacks", "config", "earlystop", "exceptions", "experiment",
                   "optimizers", "result", "sklearn", "trial", "validation"]
