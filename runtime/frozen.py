"""Frozen dataclasses built without their generated ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; for the SDK's
wide ones (``workflow.Info``, 23 fields; ``WorkflowInstanceDetails``, 14) that is a good part of
creating a run, and a new run's creation is on the path of its first activation. ``construct``
and ``replace`` give the same objects for plain dataclasses (no ``__post_init__``, no slots,
every field set by ``__init__``) and fall back to the real thing for anything else, so a new SDK
field without a value fails loudly, as it would with the constructor.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["construct", "replace"]


_plain: dict[type, frozenset[str] | None] = {}


def _plain_fields(cls: type) -> frozenset[str] | None:
    """The field names of ``cls`` if its ``__init__`` only stores them, else ``None``."""
    try:
        return _plain[cls]
    except KeyError:
        pass
    names: frozenset[str] | None = None
    if (
        dataclasses.is_dataclass(cls)
        and not hasattr(cls, "__post_init__")
        and "__slots__" not in vars(cls)
        and all(f.init for f in dataclasses.fields(cls))
    ):
        names = frozenset(f.name for f in dataclasses.fields(cls))
    _plain[cls] = names
    return names


def construct(cls: type[T], fields: dict[str, Any]) -> T:
    """``cls(**fields)``."""
    names = _plain_fields(cls)
    if names is None or fields.keys() != names:
        return cls(**fields)
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace(obj, **changes)``."""
    cls = type(obj)
    names = _plain_fields(cls)
    if names is None or not changes.keys() <= names:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    current = obj.__dict__
    new = object.__new__(cls)
    new.__dict__.update({name: current[name] for name in names})
    new.__dict__.update(changes)
    return new
