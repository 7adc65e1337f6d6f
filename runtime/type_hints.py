"""Resolved type hints of classes, remembered for the SDK's JSON payload converter.

To turn a JSON value into a dataclass (or a ``TypedDict``), the SDK's ``value_to_type``
(temporalio 1.35, ``converter/_payload_converter.py``) calls ``typing.get_type_hints`` on the
class for every value it converts, which evaluates each string annotation again (every module
with ``from __future__ import annotations``). Measured here: 55 µs for a two-field dataclass on a
warm process, ~190 µs on a shard that has been idle between activations, where it is the largest
single step of decoding a workflow's dataclass argument. A class's resolved hints change only if
its annotations are rewritten after the fact, which payload classes do not do, so a process may
remember them per class (the README lists the exception).

``install`` does so for the SDK converter's module only, and only in processes temporay owns
(the shards): the Worker's process is the user's, and we leave its SDK as it is. Calls with
namespaces or ``include_extras`` and non-classes go to ``typing.get_type_hints`` unchanged;
a class whose hints fail to resolve (a forward reference not defined yet) is not remembered, so
it fails again, or succeeds once defined, exactly as before. Classes are held weakly: a run's own
copy of a module's classes, if isolation made one, goes with the run.
"""

from __future__ import annotations

import typing
import weakref
from typing import Any

import temporalio.converter._payload_converter as _payload_converter

__all__ = ["install", "installed", "memoised_get_type_hints"]

_hints: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


def memoised_get_type_hints(
    obj: Any,
    globalns: dict[str, Any] | None = None,
    localns: typing.Mapping[str, Any] | None = None,
    include_extras: bool = False,
) -> dict[str, Any]:
    """``typing.get_type_hints``, resolved once per class (a fresh dict each call: callers own it)."""
    if globalns is not None or localns is not None or include_extras or not isinstance(obj, type):
        return typing.get_type_hints(obj, globalns, localns, include_extras)
    try:
        return dict(_hints[obj])
    except KeyError:
        pass
    except TypeError:  # a class that cannot be weakly referenced
        return typing.get_type_hints(obj)
    hints = typing.get_type_hints(obj)
    _hints[obj] = hints
    return dict(hints)


def install() -> None:
    """Make the SDK's payload converter use ``memoised_get_type_hints`` in this process."""
    _payload_converter.get_type_hints = memoised_get_type_hints  # type: ignore[attr-defined]


def installed() -> bool:
    return _payload_converter.get_type_hints is memoised_get_type_hints  # type: ignore[attr-defined]
