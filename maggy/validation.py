"""Checks for user-supplied parameters that raise one clear InvalidParameterError each.

Every message says which parameter, what it got, what is allowed and how to fix it, in the
manner of scikit-learn's parameter constraints.
"""

from __future__ import annotations

import difflib
import numbers
from typing import Any, Iterable, Literal, Mapping, overload

from maggy.exceptions import InvalidParameterError


def invalid(param: str, got: Any, expected: str, fix: str = "") -> InvalidParameterError:
    """Build the error for ``param``: it got ``got`` where ``expected`` holds."""
    msg = f"The '{param}' parameter must be {expected}; got {got!r}."
    if fix:
        msg += f" {fix}"
    return InvalidParameterError(msg)


@overload
def check_int(param: str, value: Any, *, low: int | None = None, allow_none: Literal[False] = False) -> int: ...


@overload
def check_int(param: str, value: Any, *, low: int | None = None, allow_none: bool) -> int | None: ...


def check_int(param: str, value: Any, *, low: int | None = None, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int, checking that it is an integer (not bool) ``>= low``."""
    if value is None and allow_none:
        return None
    bound = "" if low is None else f" >= {low}"
    expected = f"an int{bound}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(param, value, expected)
    if low is not None and value < low:
        raise invalid(param, value, expected)
    return int(value)


def check_number(param: str, value: Any, *, low: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a float, checking that it is a real number above ``low``."""
    op = ">" if strict else ">="
    expected = "a number" + ("" if low is None else f" {op} {low}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(param, value, expected)
    if low is not None and (value <= low if strict else value < low):
        raise invalid(param, value, expected)
    return float(value)


def check_choice(param: str, value: Any, options: Iterable[str], aliases: Mapping[str, str] | None = None,
                 hints: Mapping[str, str] | None = None) -> str:
    """Return ``value`` trimmed and lower-cased, checking that it is one of ``options`` (or an
    alias of one); the error suggests the closest option, or what ``hints`` says for a word.

    >>> check_choice("direction", "Maximize ", ["max", "min"], aliases={"maximize": "max"})
    'max'
    >>> check_choice("optimizer", "randmsearch", ["randomsearch", "tpe"])
    Traceback (most recent call last):
    ...
    maggy.exceptions.InvalidParameterError: The 'optimizer' parameter must be one of 'randomsearch', 'tpe'; got ...
    """
    options = list(options)
    allowed = ", ".join(repr(o) for o in options)
    key = value.strip().lower() if isinstance(value, str) else None
    if key is not None and key in options:
        return key
    if aliases and key is not None and key in aliases:
        return aliases[key]
    fix = ""
    if key is not None:
        if hints and key in hints:
            fix = hints[key]
        else:
            close = difflib.get_close_matches(key, [*options, *(aliases or {})], n=1, cutoff=0.6)
            if close:
                fix = f"Did you mean {(aliases or {}).get(close[0], close[0])!r}?"
    raise invalid(param, value, f"one of {allowed}", fix)


def check_str(param: str, value: Any, *, allow_empty: bool = False) -> str:
    """Return ``value``, checking that it is a (non-empty unless allowed) string."""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise invalid(param, value, "a non-empty string" if not allow_empty else "a string")
    return value


def split_address(param: str, value: str) -> tuple[str, int | None]:
    """``"host"``, ``"host:port"`` or ``"[v6]:port"`` as (host, port or None); refused naming ``param``.

    >>> split_address("driver_address", "10.1.2.3:7070"), split_address("driver_bind", "[::1]:0")
    (('10.1.2.3', 7070), ('::1', 0))
    >>> split_address("driver_address", "gateway.example.com")
    ('gateway.example.com', None)
    """
    expected = "'host' or 'host:port' (port 0-65535, 0: any free one)"
    fix = f"E.g. {param}='10.0.0.5:40000', an address of this machine" + (
        " that the executors can reach." if param == "driver_address" else ".")
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise invalid(param, value, expected, fix)
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise invalid(param, value, expected, fix)
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or port is not None and not (port.isascii() and port.isdecimal() and int(port) <= 65535):
        raise invalid(param, value, expected, fix)
    return host, None if port is None else int(port)
