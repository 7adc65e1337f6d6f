"""How each value a workflow class reaches is treated in a run: shared, copied or re-derived.

Every value the walk (:mod:`.reachability`) reaches gets a :class:`~.values.Slot` saying how a
run makes its version: shared as it is (immutable values, third-party objects, classes without
code or mutable state), replaced by a shim's stand-in, re-made per run (own functions, classes,
containers and plain instances, part by part), or deep-copied with the run's memo. Own
functions and classes become the :class:`~.clone.FunctionRecipe` and
:class:`~.clone.ClassRecipe` entries a run follows; the code found in them (function bodies,
annotations, a deep-copied value's insides) goes back to the walk.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from temporay.runtime.isolation.clone import ClassRecipe, FunctionRecipe
from temporay.runtime.isolation.modules import OwnModules
from temporay.runtime.isolation.reachability import Reachability
from temporay.runtime.isolation.shims.determinism import stand_in_for
from temporay.runtime.isolation.values import (
    ATOMIC,
    CLASS_SHARE,
    CLASS_SKIP,
    CLONEABLE_METACLASSES,
    COPY,
    DICT,
    EMPTY_CELL,
    LIST,
    MEMO,
    OBJECT,
    SET,
    SHARE,
    SUBST,
    TUPLE,
    VIEW,
    WRAP,
    Slot,
    cell_filled,
    classes_in,
    generated,
    is_typing_construct,
    plain_instance,
)

__all__ = ["ValueClassifier"]


class ValueClassifier:
    """Classifies what the workflow class reaches, following references as it goes (through
    its :class:`~.reachability.Reachability`, which hands every reached value back here)."""

    def __init__(self, modules: OwnModules, *, shims: bool) -> None:
        self._modules = modules
        self._shims = shims
        self.reach = Reachability(modules, self, shims=shims)
        """The walk, and the namespace recipes it records."""
        self._slots: dict[int, Slot] = {}
        self.functions: dict[int, FunctionRecipe] = {}
        """id(template function) -> how the run re-makes it."""
        self._pending_functions: list[types.FunctionType] = []
        self.classes: dict[int, ClassRecipe] = {}
        """id(template class) -> how the run re-makes it."""
        self.cells: dict[int, types.CellType] = {}
        """id(template cell) -> the closure cells of the functions re-made per run."""
        self.cell_slots: dict[int, Slot] = {}
        """id(template cell) -> how the run fills its cell."""
        self._data_classes: dict[int, bool] = {}
        self.copy_failures: list[str] = []
        """Values shared because they cannot be copied (a diagnostic)."""
        self._keep: list[Any] = []  # objects whose id() the plan keys on

    def drain(self) -> None:
        """Classify what is still pending: function internals and whole modules come after
        what reached them (iteratively, so long reference chains need no deep stack)."""
        while self.reach.reach_pending_module() or self._plan_pending_function():
            pass

    def _plan_pending_function(self) -> bool:
        if not self._pending_functions:
            return False
        self._plan_function_internals(self._pending_functions.pop())
        return True

    def _remember(self, value: Any, slot: Slot) -> Slot:
        self._slots[id(value)] = slot
        self._keep.append(value)
        return slot

    def classify(self, value: Any, *, stand_in_classes: bool = False) -> Slot:
        """How a run gets its version of ``value`` (recording what must be cloned)."""
        if self._shims:
            stand_in = stand_in_for(value, classes=stand_in_classes)
            if stand_in is not None:
                return Slot(SUBST, stand_in)
        t = type(value)
        if t in ATOMIC:
            return Slot(SHARE, value)
        known = self._slots.get(id(value))
        if known is not None:
            return known
        if t is types.ModuleType:
            return self._classify_module(value)
        if t is types.FunctionType:
            return self._classify_function(value)
        if isinstance(value, type):
            return self._classify_class(value)
        if t is tuple or t is frozenset:
            parts = tuple(self.classify(v, stand_in_classes=stand_in_classes) for v in value)
            if all(p.shared for p in parts):
                return self._remember(value, Slot(SHARE, value))
            if t is frozenset:
                return self._remember(value, self._try_copy(value))
            slot = Slot(TUPLE, value)
            self._fill_sequence(slot, parts)
            return self._remember(value, slot)
        if t is list or t is set:
            slot = self._remember(value, Slot(LIST if t is list else SET, value))  # cycles
            self._fill_sequence(slot, [self.classify(v) for v in value])
            return slot
        if t is dict:
            slot = self._remember(value, Slot(DICT, value))  # first: containers may be cyclic
            self._fill_dict(slot, [(self.classify(k), self.classify(v)) for k, v in value.items()])
            return slot
        if t is staticmethod or t is classmethod:
            return self._wrapper(value, t, (value.__func__,))
        if t is property:
            accessors = (value.fget, value.fset, value.fdel)
            return self._wrapper(value, property, accessors, value.__doc__)
        if t is functools.partial:
            return self._wrapper(value, functools.partial, (value.func, value.args, value.keywords))
        if t is functools.cached_property:
            return self._wrapper(value, functools.cached_property, (value.func,))
        if is_typing_construct(value):
            args = (*typing.get_args(value), typing.get_origin(value))
            # Every argument classified (no short cut): the copy must find all of them.
            own = [not self.classify(a).shared for a in args if a is not None]
            return self._remember(value, self._try_copy(value) if any(own) else Slot(SHARE, value))
        if isinstance(value, (list, dict, set, bytearray, collections.deque)):
            # Containers of other kinds (OrderedDict, defaultdict, Counter, deque, ...).
            return self._remember(value, self._try_copy(value))
        own_type = self._modules.owns_class(t)
        if own_type or dataclasses.is_dataclass(t) or hasattr(t, "model_fields"):
            if plain_instance(value):
                # Rebuilt from its __dict__, by a slot per attribute: much cheaper than deepcopy,
                # and shared outright when nothing in it is ours or mutable.
                slot = self._remember(value, Slot(OBJECT, value, eager=False))
                state = self.classify(dict(value.__dict__))
                params = getattr(t, "__dataclass_params__", None)
                if (
                    params is not None
                    and params.frozen
                    and not own_type
                    and all(
                        self.classify(k).shared and self.classify(v).shared
                        for k, v in value.__dict__.items()
                    )
                ):
                    slot = self._remember(value, Slot(SHARE, value))
                else:
                    slot.parts = (self.classify(t), state)
                return slot
            return self._remember(value, self._try_copy(value))
        # An instance of a third-party class (a client, a tracer, a compiled pattern, ...):
        # shared between runs, as module-level service objects are meant to be.
        return self._remember(value, Slot(SHARE, value))

    def _classify_module(self, module: types.ModuleType) -> Slot:
        modules = self._modules
        if modules.owns_namespace(module.__dict__):
            # The module object itself: any of its names is reachable by attribute.
            self.reach.want_whole(module)
            return self._remember(module, Slot(MEMO, module))
        if modules.is_ancestor(module.__name__):
            for own in modules.descendants(module.__name__):
                self.reach.want_whole(own)
            return self._remember(module, Slot(VIEW, module, eager=False))
        return Slot(SHARE, module)

    @staticmethod
    def _fill_sequence(slot: Slot, parts: Sequence[Slot]) -> None:
        """A list, set or tuple: trivial parts prefilled, the others resolved per run."""
        if slot.kind == SET:
            slot.prefilled = {p.value for p in parts if p.kind <= SUBST}
            slot.parts = tuple((None, p) for p in parts if p.kind > SUBST)
        else:
            slot.prefilled = [p.value if p.kind <= SUBST else None for p in parts]
            slot.parts = tuple((i, p) for i, p in enumerate(parts) if p.kind > SUBST)
        slot.eager = all(p.eager for _, p in slot.parts if p is not slot)

    @staticmethod
    def _fill_dict(slot: Slot, pairs: Sequence[tuple[Slot, Slot]]) -> None:
        """A dict: trivial values prefilled in the template's key order, the others resolved per
        run into their place (keys made per run rebuild the dict, in order)."""
        if all(k.kind <= SUBST for k, _ in pairs):
            slot.prefilled = {k.value: v.value if v.kind <= SUBST else None for k, v in pairs}
            slot.parts = tuple((k.value, v) for k, v in pairs if v.kind > SUBST)
            slot.eager = all(v.eager for _, v in slot.parts if v is not slot)
        else:
            slot.parts = tuple(pairs)
            slot.eager = all(p.eager for pair in pairs for p in pair if p is not slot)

    def _wrapper(self, value: Any, wrapper: Any, inner: tuple[Any, ...], doc: Any = None) -> Slot:
        parts = tuple(self.classify(v) for v in inner)
        if all(p.shared for p in parts):
            return self._remember(value, Slot(SHARE, value))
        if wrapper is property:
            parts = (*parts, Slot(SHARE, doc))
        slot = Slot(WRAP, value, parts, wrapper, eager=all(p.eager for p in parts))
        return self._remember(value, slot)

    def _try_copy(self, value: Any) -> Slot:
        # Identity for everything this plan clones: the trial checks copyability only.
        memo: dict[int, Any] = dict(self._identity_memo())
        try:
            copy.deepcopy(value, memo)
        except Exception as err:
            self.copy_failures.append(f"{type(value).__qualname__} ({err})")
            return Slot(SHARE, value)
        self.reach.reach_inside(value)
        return Slot(COPY, value, eager=False)

    def _identity_memo(self) -> Iterable[tuple[int, Any]]:
        for ns_id, module in self._modules.by_namespace.items():
            yield ns_id, module.__dict__
            yield id(module), module
        for key, slot in self._slots.items():
            if slot.kind == MEMO:
                yield key, slot.value

    def _classify_function(self, fn: types.FunctionType) -> Slot:
        if self._modules.owns_namespace(fn.__globals__):
            return self._plan_function(fn)
        # A foreign function (a third-party decorator's wrapper) is copied only when it closes
        # over, or wraps, something of ours.
        self._remember(fn, Slot(SHARE, fn))  # provisional, breaks cycles
        refs = [c.cell_contents for c in fn.__closure__ or () if cell_filled(c)]
        wrapped = fn.__dict__.get("__wrapped__")
        if wrapped is not None:
            refs.append(wrapped)
        if any([not self.classify(r).shared for r in refs]):
            del self._slots[id(fn)]
            return self._plan_function(fn)
        return self._slots[id(fn)]

    def _plan_function(self, fn: types.FunctionType) -> Slot:
        slot = self._remember(fn, Slot(MEMO, fn))
        globals_id: int | None = None
        module = self._modules.by_namespace.get(id(fn.__globals__))
        if module is not None:
            globals_id = id(fn.__globals__)
            self.reach.namespace(module)
        for cell in fn.__closure__ or ():
            self.cells.setdefault(id(cell), cell)
        self.functions[id(fn)] = FunctionRecipe(fn, globals_id)
        self._pending_functions.append(fn)
        return slot

    def _plan_function_internals(self, fn: types.FunctionType) -> None:
        recipe = self.functions[id(fn)]
        recipe.defaults = self.classify(fn.__defaults__, stand_in_classes=True)
        recipe.kwdefaults = self.classify(fn.__kwdefaults__, stand_in_classes=True)
        recipe.attrs = self.classify(dict(fn.__dict__)) if fn.__dict__ else None
        recipe.annotations = self._annotations_slot(fn)
        for cell in fn.__closure__ or ():
            if id(cell) not in self.cell_slots:
                self.cell_slots[id(cell)] = (
                    self.classify(cell.cell_contents, stand_in_classes=True)
                    if cell_filled(cell)
                    else Slot(SHARE, EMPTY_CELL)
                )
        module = self._modules.by_namespace.get(id(fn.__globals__))
        if module is not None:
            self.reach.reach_code(module, fn.__code__)

    def _classify_class(self, cls: type) -> Slot:
        if not self._modules.owns_class(cls) or type(cls) not in CLONEABLE_METACLASSES:
            # Third-party classes, and own classes built by a custom metaclass (Enum, pydantic
            # models, TypedDict, Protocol, ...), are shared: re-running a metaclass per run is
            # neither cheap nor always free of side effects.
            return self._remember(cls, Slot(SHARE, cls))
        if self._pure_data_class(cls, set()):
            # No code of its own, no mutable class attribute: nothing to isolate, and sharing it
            # keeps payload types identical for converters (and their ABC caches small).
            return self._remember(cls, Slot(SHARE, cls))
        slot = self._remember(cls, Slot(MEMO, cls, eager=False))
        bases = tuple(self.classify(b) for b in cls.__bases__)
        items: list[tuple[str, Slot]] = []
        for key, value in cls.__dict__.items():
            if key in CLASS_SKIP:
                continue
            if isinstance(value, types.MemberDescriptorType) and value.__objclass__ is cls:
                continue  # __slots__ members: type() makes the run's own
            if key in CLASS_SHARE:
                items.append((key, Slot(SHARE, value)))
            elif key == "__annotations__":
                items.append((key, self._annotations_slot(cls)))
            else:
                items.append((key, self.classify(value, stand_in_classes=True)))
        self.classes[id(cls)] = ClassRecipe(cls, bases, items)
        return slot

    def _pure_data_class(self, cls: type, visiting: set[int]) -> bool:
        """A dataclass or attrs class whose methods are all generated, whose class attributes
        are immutable, and whose field types are shared too."""
        known = self._data_classes.get(id(cls))
        if known is not None:
            return known
        if id(cls) in visiting:
            return True
        visiting.add(id(cls))
        owns_class = self._modules.owns_class
        result = self._is_data_shaped(cls) and all(
            not owns_class(base) or self._pure_data_class(base, visiting)
            for base in cls.__bases__
        )
        if result:
            try:
                hints = typing.get_type_hints(cls, include_extras=True)
            except Exception:
                hints = {}
            for referenced in classes_in(hints.values()):
                if (
                    owns_class(referenced)
                    and type(referenced) in CLONEABLE_METACLASSES
                    and not self._pure_data_class(referenced, visiting)
                ):
                    result = False
                    break
        self._data_classes[id(cls)] = result
        return result

    def _foreign_function(self, fn: types.FunctionType) -> bool:
        """A function of a library (attrs' __getstate__, ...) that closes over nothing of ours."""
        if self._modules.owns_namespace(fn.__globals__):
            return False
        for cell in fn.__closure__ or ():
            if cell_filled(cell):
                content = cell.cell_contents
                if isinstance(content, types.FunctionType) and self._modules.owns_namespace(
                    content.__globals__
                ):
                    return False
                if isinstance(content, type) and self._modules.owns_class(content):
                    return False
        return True

    def _is_data_shaped(self, cls: type) -> bool:
        own = cls.__dict__
        if "__dataclass_fields__" not in own and "__attrs_attrs__" not in own:
            return False
        for key, value in own.items():
            if key in CLASS_SKIP or key in CLASS_SHARE or key == "__annotations__":
                continue
            if key.startswith("__attrs_") or isinstance(value, types.MemberDescriptorType):
                continue
            if isinstance(value, types.FunctionType):
                if not generated(value) and not self._foreign_function(value):
                    return False
            elif type(value) in ATOMIC or (
                isinstance(value, tuple) and all(type(v) in ATOMIC for v in value)
            ):
                continue
            else:
                return False
        return True

    def _annotations_slot(self, obj: Any) -> Slot:
        """Annotations resolved now, against the real modules (a string ``"datetime"`` means the
        real class, never the stand-in), remapped to the run's own classes per run."""
        # The object's own annotations only (a class's, not its bases'), unevaluated.
        raw = inspect.get_annotations(obj)
        if not raw:
            return Slot(SHARE, raw)
        try:
            hints = typing.get_type_hints(obj, include_extras=True)
            resolved = {k: hints.get(k, v) for k, v in raw.items()}
        except Exception:
            resolved = dict(raw)
        self.reach.reach_unresolved(obj, resolved.values())
        self._keep.append(resolved)
        # Every value classified (no short cut): the copy must find all of them.
        shared = [self.classify(v).shared for v in resolved.values()]
        if all(shared):
            return Slot(SUBST, resolved)
        return Slot(COPY, resolved, eager=False)
