"""Making one run's copy of a workflow's module state from a recipe built once per class.

This is the per-run half of the isolation, so it is kept to what must happen per run: create
the namespaces, functions, cells and classes the recipe lists, then fill in what refers to them.
Everything is keyed by the template object's ``id()`` in one memo, which doubles as the
``copy.deepcopy`` memo so that a deep-copied value refers to the run's classes and functions,
never the template's. The recipe (:class:`ClonePlan`) only lists what the workflow class can
reach (:mod:`.plan`), so the cost follows what the run can use, not the module size.
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import temporalio.workflow

from temporay.runtime.isolation.imports import package_view
from temporay.runtime.isolation.modules import OwnModuleTree
from temporay.runtime.isolation.run_state import RunState
from temporay.runtime.isolation.values import (
    COPY,
    DICT,
    EMPTY_CELL,
    LIST,
    MEMO,
    OBJECT,
    SET,
    SUBST,
    TUPLE,
    VIEW,
    WRAP,
    Slot,
)

__all__ = [
    "ClassRecipe",
    "ClonePlan",
    "FunctionRecipe",
    "Instantiation",
    "NamespaceRecipe",
]

_MISSING = object()
_STATE = -1  # memo key of the RunState being instantiated (never an id())


@dataclass
class FunctionRecipe:
    """A function of the workflow's modules (or a library wrapper closing over one)."""

    fn: types.FunctionType
    globals_id: int | None  # id of the own template namespace, or None (keep the foreign one)
    defaults: Slot | None = None
    kwdefaults: Slot | None = None
    attrs: Slot | None = None
    annotations: Slot | None = None


@dataclass
class ClassRecipe:
    """A class with code or state of its own: re-made per run by its metaclass."""

    cls: type
    bases: tuple[Slot, ...]
    items: list[tuple[str, Slot]]


@dataclass
class NamespaceRecipe:
    """A module namespace of the run: only the names its code can reach, unless ``whole``."""

    module: types.ModuleType
    base: dict[str, Any]
    """Names whose value every run shares (or a shim's stand-in), copied in as they are."""
    dirty: list[tuple[str, Slot]]
    """Names whose value is made per run."""
    whole: bool = False


@dataclass
class Instantiation:
    """One run's copy of the workflow's modules."""

    defn: temporalio.workflow._Definition
    modules: dict[int, types.ModuleType]
    failure_exception_types: list[type[BaseException]]
    objects: int
    """How many objects were made for this run (namespaces, functions, classes, containers,
    instances, ...): a diagnostic of what the run copies."""


class ClonePlan:
    """The recipe of a run's copy, and the code that follows it."""

    def __init__(
        self,
        workflow_class: type,
        namespaces: list[NamespaceRecipe],
        cells: list[int],
        cell_slots: dict[int, Slot],
        functions: list[tuple[int, FunctionRecipe]],
        classes: list[ClassRecipe],
        tree: OwnModuleTree,
    ) -> None:
        self.workflow_class = workflow_class
        self.namespaces = namespaces
        self.cells = cells
        self.functions = functions
        self.classes = classes
        self.tree = tree
        # Precomputed steps: what needs no per-run work is a plain value here, so a run only
        # resolves the slots that make something.
        self._function_steps: list[tuple[int, types.FunctionType, int | None, Any]] = []
        self._assignments: list[tuple[int, str, Any]] = []  # (memo key, attribute, value)
        eager: list[tuple[int, str, Slot]] = []  # (memo key, attribute, slot)
        self._deferred: list[tuple[int, str, Slot]] = []  # once the run's classes exist
        for key, frecipe in functions:
            argdefs = None
            defaults = frecipe.defaults
            if defaults is not None and defaults.kind <= SUBST:
                argdefs = defaults.value
            elif defaults is not None:
                step = (key, "__defaults__", defaults)
                (eager if defaults.eager else self._deferred).append(step)
            self._function_steps.append((key, frecipe.fn, frecipe.globals_id, argdefs))
            for attr, slot in (
                ("__kwdefaults__", frecipe.kwdefaults),
                ("__annotations__", frecipe.annotations),
                ("__dict__", frecipe.attrs),
            ):
                if slot is None or (slot.kind <= SUBST and slot.value in (None, {})):
                    continue
                if slot.kind <= SUBST:
                    self._assignments.append((key, attr, slot.value))
                else:
                    (eager if slot.eager else self._deferred).append((key, attr, slot))
        for key, slot in cell_slots.items():
            if slot.kind <= SUBST:
                if slot.value is not EMPTY_CELL:
                    self._assignments.append((key, "cell_contents", slot.value))
            else:
                (eager if slot.eager else self._deferred).append((key, "cell_contents", slot))
        self._eager = eager
        self._class_steps: list[
            tuple[type, tuple[type, ...] | None, dict[str, Any], list[tuple[str, Slot]]]
        ] = []
        for crecipe in classes:
            trivial_bases = all(b.kind <= SUBST for b in crecipe.bases)
            prefilled: dict[str, Any] = {}
            made_items: list[tuple[str, Slot]] = []
            for name, slot in crecipe.items:
                if slot.kind <= SUBST:
                    prefilled[name] = slot.value
                elif slot.eager:
                    prefilled[name] = None  # a place in the template's order
                    made_items.append((name, slot))
                else:
                    self._deferred.append((id(crecipe.cls), name, slot))
            bases = tuple(b.value for b in crecipe.bases) if trivial_bases else None
            self._class_steps.append((crecipe.cls, bases, prefilled, made_items))
        self._class_bases = {id(r.cls): r.bases for r in classes}

    def instantiate(
        self, state: RunState, failure_types: Sequence[type[BaseException]] = ()
    ) -> Instantiation:
        """Make one run's copy: modules, functions, classes, then everything that refers to them."""
        memo: dict[int, Any] = {_STATE: state}
        modules: dict[int, types.ModuleType] = {}
        for recipe in self.namespaces:
            template = recipe.module
            module = types.ModuleType(template.__name__)
            module.__dict__.update(recipe.base)
            memo[id(template)] = module
            memo[id(template.__dict__)] = module.__dict__
            modules[id(template)] = module
        state.modules = modules
        state.module_tree = self.tree
        for key in self.cells:
            memo[key] = types.CellType()
        function_type = types.FunctionType
        for key, fn, globals_id, argdefs in self._function_steps:
            closure = fn.__closure__
            clone = function_type(
                fn.__code__,
                memo[globals_id] if globals_id is not None else fn.__globals__,
                fn.__name__,
                argdefs,
                tuple([memo[id(c)] for c in closure]) if closure else None,
            )
            clone.__qualname__ = fn.__qualname__
            clone.__module__ = fn.__module__
            clone.__doc__ = fn.__doc__
            memo[key] = clone
        for key, attr, value in self._assignments:
            _assign(memo[key], attr, value)
        resolve = self._resolve
        for key, attr, slot in self._eager:
            _assign(memo[key], attr, resolve(slot, memo))
        for cls, bases, prefilled, made_items in self._class_steps:
            if bases is None:
                bases = tuple([resolve(b, memo) for b in self._class_bases[id(cls)]])
            class_ns = prefilled.copy()
            for name, slot in made_items:
                class_ns[name] = resolve(slot, memo)
            memo[id(cls)] = type(cls)(cls.__name__, bases, class_ns)
        for key, attr, slot in self._deferred:
            target = memo[key]
            value = resolve(slot, memo)
            _assign(target, attr, value)
            if isinstance(target, type):
                set_name = getattr(type(value), "__set_name__", None)
                if set_name is not None:
                    set_name(value, target, attr)  # what type() does for the eager ones
        for recipe in self.namespaces:
            ns = memo[id(recipe.module.__dict__)]
            for name, dslot in recipe.dirty:
                ns[name] = resolve(dslot, memo)
        cls = memo.get(id(self.workflow_class), self.workflow_class)
        defn = temporalio.workflow._Definition.must_from_class(cls)
        remapped = list(failure_types)
        remapped.extend(memo[id(t)] for t in failure_types if id(t) in memo)
        # The state and deepcopy's keep-alive list are not the run's objects.
        objects = len(memo) - 1 - (id(memo) in memo)
        return Instantiation(defn, modules, remapped, objects)

    def _resolve(self, slot: Slot, memo: dict[int, Any]) -> Any:
        """The run's version of one slot's value (made once per run: ``memo`` remembers)."""
        kind = slot.kind
        if kind <= SUBST:
            return slot.value
        if kind == MEMO:
            return memo[id(slot.value)]
        key = id(slot.value)
        if kind == VIEW:
            return package_view(memo[_STATE], self.tree, slot.value)
        made = memo.get(key, _MISSING)
        if made is not _MISSING:
            return made
        resolve = self._resolve
        if kind == COPY:
            return copy.deepcopy(slot.value, memo)
        # Containers: a C-level copy of the prefilled template, then the parts made per run.
        if kind == DICT:
            prefilled = slot.prefilled
            if prefilled is None:  # keys made per run
                new_dict: dict[Any, Any] = {}
                memo[key] = new_dict
                for k, v in slot.parts:
                    new_dict[resolve(k, memo)] = resolve(v, memo)
                return new_dict
            new_dict = memo[key] = prefilled.copy()
            for k, v in slot.parts:
                new_dict[k] = resolve(v, memo)
            return new_dict
        if kind == LIST:
            new_list: list[Any] = slot.prefilled.copy()
            memo[key] = new_list
            for i, p in slot.parts:
                new_list[i] = resolve(p, memo)
            return new_list
        if kind == SET:
            new_set: set[Any] = slot.prefilled.copy()
            memo[key] = new_set
            for _, p in slot.parts:
                new_set.add(resolve(p, memo))
            return new_set
        if kind == TUPLE:
            items = slot.prefilled.copy()
            for i, p in slot.parts:
                items[i] = resolve(p, memo)
            made = memo[key] = tuple(items)
            return made
        if kind == OBJECT:
            cls_slot, state_slot = slot.parts
            made = object.__new__(resolve(cls_slot, memo))
            memo[key] = made
            made.__dict__.update(resolve(state_slot, memo))
            return made
        if kind == WRAP:
            args = [resolve(p, memo) for p in slot.parts]
            wrapper = slot.wrapper
            if wrapper is functools.partial:
                func, pargs, keywords = args
                made = functools.partial(func, *pargs, **keywords)
            else:
                made = wrapper(*args)
            memo[key] = made
            return made
        raise AssertionError(f"unknown slot kind {kind}")


def _assign(target: Any, attr: str, value: Any) -> None:
    if attr == "__dict__":
        target.__dict__.update(value)
    else:
        setattr(target, attr, value)
