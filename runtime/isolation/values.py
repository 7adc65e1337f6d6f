"""The vocabulary shared by the classifier (:mod:`.classify`) and the per-run cloner
(:mod:`.clone`): how one value of a run's copy is produced (:class:`Slot`), and what can be
shared without copying.

Sharing is the default wherever it is safe, because every copied object costs every run CPU and
memory: immutable values, third-party objects (module-level clients and tracers are meant to be
shared) and classes without code or mutable state.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
import types
import typing
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import temporalio.workflow

__all__ = [
    "ATOMIC",
    "CLASS_SHARE",
    "CLASS_SKIP",
    "CLONEABLE_METACLASSES",
    "COPY",
    "DICT",
    "EMPTY_CELL",
    "LIST",
    "MEMO",
    "NS_SHARE",
    "OBJECT",
    "SET",
    "SHARE",
    "SUBST",
    "TUPLE",
    "VIEW",
    "WRAP",
    "Slot",
    "cell_filled",
    "classes_in",
    "generated",
    "is_typing_construct",
    "plain_instance",
]

# Slot kinds (ordered: kinds up to SUBST need no per-run work).
SHARE = 0  # the template value itself
SUBST = 1  # a fixed replacement (a shim's stand-in, resolved annotations)
MEMO = 2  # the run's copy of a module, namespace, function, class or cell
COPY = 3  # copy.deepcopy with the run's memo (own classes/functions map to the run's)
TUPLE = 4  # rebuilt from part slots
LIST = 5
DICT = 6
SET = 7
WRAP = 8  # classmethod/staticmethod/property/partial/cached_property around part slots
OBJECT = 9  # a plain instance (dataclass, own class): new object, __dict__ from a dict slot
VIEW = 10  # a package above one of our modules: the run's view of it (see package_view)

EMPTY_CELL = object()
"""The value of a cell slot whose template cell is empty (a closure over a name not yet bound)."""


@dataclass(slots=True, eq=False)
class Slot:
    """How one value of a run's copy is produced from the template's."""

    kind: int
    value: Any  # the shared value, the replacement, or the template object
    parts: tuple[Any, ...] = ()
    wrapper: Any = None
    # Resolvable before the run's classes exist (nothing to copy, no class to look up).
    eager: bool = True
    # Containers: a copy with every part that needs no per-run work already in place, so a run
    # copies it in C and resolves only the other ``parts`` ((index or key, slot) pairs).
    prefilled: Any = None

    @property
    def shared(self) -> bool:
        return self.kind == SHARE


ATOMIC: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        range,
        slice,
        type(Ellipsis),
        type(NotImplemented),
        types.CodeType,
        types.BuiltinFunctionType,
        types.BuiltinMethodType,
        types.MethodWrapperType,
        types.WrapperDescriptorType,
        types.MethodDescriptorType,
        types.ClassMethodDescriptorType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        weakref.ref,
        logging.Logger,
        logging.LoggerAdapter,
        temporalio.workflow.LoggerAdapter,
        type(threading.Lock()),
        type(threading.RLock()),
    }
)
"""Types whose values are shared as they are: immutable, or process-wide by design (loggers)."""

CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__abstractmethods__", "_abc_impl"})
"""Class dict entries that ``type()`` makes itself."""

CLASS_SHARE = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__slots__",
        "__orig_bases__",
        "__parameters__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
    }
)
"""Class dict entries that keep the template's value (metadata, not state)."""

NS_SHARE = frozenset(
    {
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
        "__file__",
        "__cached__",
        "__path__",
        "__annotations__",
        "__all__",
    }
)
"""Module namespace entries every per-run namespace keeps from the template."""

CLONEABLE_METACLASSES: frozenset[type] = frozenset({type, abc.ABCMeta})
"""Classes made by other metaclasses (Enum, pydantic, TypedDict, Protocol, ...) are shared:
re-running a metaclass per run is neither cheap nor always free of side effects."""


def is_typing_construct(value: Any) -> bool:
    return typing.get_origin(value) is not None or isinstance(
        value, (typing.TypeVar, typing.ForwardRef, types.UnionType)
    )


def cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def generated(fn: types.FunctionType) -> bool:
    """A method written by dataclasses/attrs (or dataclasses' recursive-repr wrapper of one)."""
    filename = fn.__code__.co_filename
    if filename == "<string>" or filename.startswith("<attrs generated"):
        return True
    if filename == dataclasses.__file__ and fn.__closure__:
        return all(
            isinstance(c.cell_contents, types.FunctionType) and generated(c.cell_contents)
            for c in fn.__closure__
            if cell_filled(c) and callable(c.cell_contents)
        )
    return False


def classes_in(hints: Iterable[Any]) -> Iterable[type]:
    """Classes mentioned by type hints (through generics, unions, Annotated)."""
    stack = list(hints)
    seen: set[int] = set()
    while stack:
        hint = stack.pop()
        if id(hint) in seen:
            continue
        seen.add(id(hint))
        if isinstance(hint, type) and typing.get_origin(hint) is None:
            yield hint
        stack.extend(typing.get_args(hint))
        origin = typing.get_origin(hint)
        if origin is not None:
            stack.append(origin)


_OBJECT_GETSTATE = getattr(object, "__getstate__", None)


def plain_instance(value: Any) -> bool:
    """An instance that object.__new__ plus its __dict__ recreates (no custom copy protocol)."""
    t = type(value)
    return (
        t.__new__ is object.__new__
        and t.__reduce_ex__ is object.__reduce_ex__
        and t.__reduce__ is object.__reduce__
        and getattr(t, "__getstate__", _OBJECT_GETSTATE) is _OBJECT_GETSTATE
        and not hasattr(t, "__deepcopy__")
        and not hasattr(t, "__setstate__")
        and "__slots__" not in t.__dict__
        and hasattr(value, "__dict__")
    )
