"""A fingerprint of ``train_fn``: whether a re-run calls the same code as the experiment it finds.

The hash covers the function's bytecode, constants and names, its defaults and closure, and,
recursively, the functions and classes it reaches through its globals that live in the user's
own code (``__main__``, a notebook, modules outside the Python installation). Library code
(numpy, torch, maggy) counts by name only, and plain values by their repr, so the fingerprint is
cheap and the same in every process: line numbers, file names and object ids are left out,
so moving a function in a notebook or re-running its cell changes nothing; so are the contents
of mutable objects (a list the function appends to, a model it trains), which change as it runs.

>>> def f(x):
...     return x + 1
>>> def g(x):
...     return x + 2
>>> fingerprint(f) == fingerprint(f), fingerprint(f) == fingerprint(g)
(True, False)
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import types
from typing import Any, Callable

#: How deep the walk follows calls into the user's code, and how many objects it visits at most.
MAX_DEPTH = 8
MAX_OBJECTS = 500
_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def fingerprint(train_fn: Callable) -> str:
    """A 16-hex digest of ``train_fn`` and the user code it reaches."""
    walk = _Walk()
    walk.value(train_fn, 0)
    return walk.digest.hexdigest()[:16]


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, paths.get("stdlib", ""), paths.get("purelib", ""),
             paths.get("platlib", "")}
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


_ROOTS = _library_roots()


def _is_user_module(name: str | None) -> bool:
    """Whether module ``name`` is the user's own code (not the standard library, an installed
    package or maggy itself)."""
    if not name or name == "builtins" or name == "maggy" or name.startswith("maggy."):
        return False
    if name == "__main__":
        return True
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and not os.path.realpath(path).startswith(_ROOTS)


class _Walk:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.seen: set[int] = set()

    def add(self, *parts: Any) -> None:
        for part in parts:
            self.digest.update(part if isinstance(part, bytes) else repr(part).encode())
            self.digest.update(b"\0")

    def value(self, obj: Any, depth: int) -> None:
        """Feed ``obj`` into the digest: code by content, user code recursively, the rest by name."""
        if isinstance(obj, _PLAIN):
            self.add(type(obj).__name__, obj)
        elif isinstance(obj, (tuple, frozenset)):  # constants; mutable containers count by type (below)
            items = sorted(obj, key=repr) if isinstance(obj, frozenset) else obj
            self.add(type(obj).__name__, len(items))
            for item in items:
                self.value(item, depth)
        elif isinstance(obj, types.CodeType):
            self.code(obj, depth)
        elif isinstance(obj, (types.FunctionType, type)) and _is_user_module(getattr(obj, "__module__", None)):
            if id(obj) in self.seen or depth > MAX_DEPTH or len(self.seen) > MAX_OBJECTS:
                self.add("ref", getattr(obj, "__qualname__", ""))
                return
            self.seen.add(id(obj))
            if isinstance(obj, type):
                self.cls(obj, depth + 1)
            else:
                self.function(obj, depth + 1)
        elif isinstance(obj, types.MethodType):
            self.value(obj.__func__, depth)
        elif isinstance(obj, types.ModuleType):
            self.add("module", obj.__name__)
        else:  # library functions, classes and instances: by what they are, not their contents
            self.add(type(obj).__qualname__, getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))

    def code(self, code: types.CodeType, depth: int) -> None:
        self.add("code", code.co_argcount, code.co_kwonlyargcount, code.co_flags, code.co_code, code.co_names,
                 code.co_varnames)
        self.value(code.co_consts, depth)

    def function(self, fn: types.FunctionType, depth: int) -> None:
        self.add("function", fn.__qualname__)
        self.code(fn.__code__, depth)
        self.value(fn.__defaults__ or (), depth)
        self.value(sorted((fn.__kwdefaults__ or {}).items()), depth)
        for cell in fn.__closure__ or ():
            try:
                self.value(cell.cell_contents, depth)
            except ValueError:  # an empty cell
                self.add("empty cell")
        self._globals(fn.__code__, fn.__globals__, depth)

    def _globals(self, code: types.CodeType, namespace: dict[str, Any], depth: int) -> None:
        """The globals ``code`` (and the code nested in it) names, and what it reaches through
        a user module it names (``helpers.prepare``)."""
        names = _names(code)
        for name in sorted(names):
            if name not in namespace:
                continue
            obj = namespace[name]
            self.add("global", name)
            if isinstance(obj, types.ModuleType) and _is_user_module(obj.__name__):
                for attr in sorted(names):
                    if attr in vars(obj):
                        self.add("attribute", attr)
                        self.value(vars(obj)[attr], depth)
            else:
                self.value(obj, depth)

    def cls(self, cls: type, depth: int) -> None:
        self.add("class", cls.__qualname__, [b.__qualname__ for b in cls.__bases__])
        for name, member in sorted(vars(cls).items()):
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if isinstance(member, types.FunctionType) or isinstance(member, _PLAIN):
                self.add("member", name)
                self.value(member, depth)


def _names(code: types.CodeType) -> set[str]:
    """Every name ``code`` and the code objects nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names
