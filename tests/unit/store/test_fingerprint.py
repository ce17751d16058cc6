"""A train_fn's fingerprint changes with its code and the user code it calls, and nothing else."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import types

from maggy.store.fingerprint import fingerprint

SOURCE = '''
import math
EPOCHS = {epochs}

def helper(x):
    return x * {factor}

class Model:
    def fit(self, x):
        return helper(x) + {offset}

def train(lr, reporter=None):
    seen = {{"a", "b", "c"}}
    return Model().fit(lr) + math.sqrt(EPOCHS) + len(seen)
'''


def train_from(epochs=10, factor=2, offset=0, padding=0):
    """``train`` defined as a notebook cell defines it (module ``__main__``)."""
    namespace = {"__name__": "__main__"}
    code = "\n" * padding + SOURCE.format(epochs=epochs, factor=factor, offset=offset)
    exec(compile(code, f"<cell-{padding}>", "exec", dont_inherit=True), namespace)
    return namespace["train"]


def test_the_same_code_has_the_same_fingerprint_wherever_the_cell_is():
    assert fingerprint(train_from()) == fingerprint(train_from(padding=7))


def test_a_change_in_the_function_a_helper_a_method_or_a_global_constant_changes_it():
    base = fingerprint(train_from())
    assert fingerprint(train_from(factor=3)) != base  # a helper it calls
    assert fingerprint(train_from(offset=1)) != base  # a method of a class it uses
    assert fingerprint(train_from(epochs=20)) != base  # a global constant it reads


def test_closures_and_defaults_count():
    def make(k):
        def train(x, scale=1.0):
            return x * k * scale
        return train
    assert fingerprint(make(1)) == fingerprint(make(1)) != fingerprint(make(2))

    def train(x, scale=2.0):
        return x * scale
    assert fingerprint(train) != fingerprint(make(1))


def test_library_code_counts_by_name_and_a_user_module_by_content(tmp_path, monkeypatch):
    """A helper in the user's own module (outside the Python installation) is followed; numpy or
    math are not (their code changes only with a new install)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = tmp_path / "my_helpers.py"

    def load(body):
        mod.write_text(textwrap.dedent(body))
        sys.modules.pop("my_helpers", None)
        import my_helpers
        namespace = {"__name__": "__main__", "my_helpers": my_helpers, "math": math}
        exec("def train(x):\n    return my_helpers.prepare(x) + math.floor(x)\n", namespace)
        return namespace["train"]

    first = fingerprint(load("def prepare(x):\n    return x + 1\n"))
    assert fingerprint(load("def prepare(x):\n    return x + 1\n")) == first
    assert fingerprint(load("def prepare(x):\n    return x + 2\n")) != first
    sys.modules.pop("my_helpers", None)


def test_recursion_and_self_reference_end():
    namespace = {"__name__": "__main__"}
    exec("def f(n):\n    return 1 if n == 0 else f(n - 1) + g(n)\n"
         "def g(n):\n    return f(n - 1)\n", namespace)
    assert len(fingerprint(namespace["f"])) == 16


def test_the_fingerprint_is_the_same_in_another_process_with_another_hash_seed(tmp_path):
    """Set constants iterate in hash order, which differs per process: the fingerprint must not."""
    script = tmp_path / "fp.py"
    script.write_text(textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[1])
        from test_fingerprint_source import train_from
        from maggy.store.fingerprint import fingerprint
        print(fingerprint(train_from()))
    '''))
    (tmp_path / "test_fingerprint_source.py").write_text(
        "SOURCE = " + repr(SOURCE) + "\n" + textwrap.dedent('''
        def train_from():
            namespace = {"__name__": "__main__"}
            exec(compile(SOURCE.format(epochs=10, factor=2, offset=0), "<cell>", "exec", dont_inherit=True), namespace)
            return namespace["train"]
        '''))
    prints = {subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2", "3")}
    assert prints == {fingerprint(train_from())}


def test_builtins_and_library_objects_do_not_break_it():
    import numpy as np
    data = np.arange(4)

    def train(x):
        return float(np.mean(data)) + len(types.__name__) + x
    assert fingerprint(train) == fingerprint(train)
