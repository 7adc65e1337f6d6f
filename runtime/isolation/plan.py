"""Deciding, once per workflow class, what each run of it gets a copy of.

A run needs its own copy of whatever workflow code could mutate and another run could observe:
module globals, module-level containers and instances, class attributes, closures. But only of
what the run can reach: a module holding fifteen workflow classes must not make a run of one
of them copy the other fourteen. So the plan starts from the workflow class and follows what
its code can touch (:mod:`.isolation_reach`): the globals its functions name, what their
closures, defaults and annotations hold, the classes and containers those refer to, the modules
they import, transitively. Names no reachable code mentions are left out of the run's
namespaces. Code that can reach further than its bytecode says (``globals()``, ``eval``,
``__import__``) makes the plan copy every own module whole, as if nothing were known.

Values are classified into :class:`~.isolation_values.Slot` kinds; the result is a
:class:`~.isolation_clone.ClonePlan` that each run follows.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import gc
import inspect
import logging
import re
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from temporay.runtime.isolation.clone import (
    ClassRecipe,
    ClonePlan,
    FunctionRecipe,
    Instantiation,
    NamespaceRecipe,
)
from temporay.runtime.isolation.imports import WORKFLOW_BUILTINS
from temporay.runtime.isolation.modules import OwnModules, defined_in, home_module, resolve_import
from temporay.runtime.isolation.options import IsolationOptions
from temporay.runtime.isolation.reach import ImportSite, code_facts
from temporay.runtime.isolation.run_state import RunState
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
    NS_SHARE,
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

__all__ = ["CopyInventory", "ModulePlan", "UnsupportedWorkflowModuleError"]

logger = logging.getLogger(__name__)

_MISSING = object()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Objects visited looking for own code inside a deep-copied value before giving up on precision.
_WALK_BUDGET = 20_000


class UnsupportedWorkflowModuleError(TypeError):
    """The workflow's module cannot be given per-run state (names the offending object)."""


@dataclass(frozen=True)
class CopyInventory:
    """What a run of the plan copies: a diagnostic (and what the tests check), never used to
    decide anything."""

    modules: tuple[str, ...]
    """Own modules a run gets a namespace of (possibly partial)."""
    whole_modules: tuple[str, ...]
    """Of those, the ones copied whole (reached as module objects, imported, or an escape)."""
    classes: tuple[str, ...]
    """``module.QualName`` of the classes re-made per run."""
    functions: tuple[str, ...]
    """``module.QualName`` of the functions re-made per run."""
    names: dict[str, tuple[str, ...]]
    """Module name -> the module-level names made per run (not shared)."""


class ModulePlan:
    """How to make one run's copy of the modules a workflow class lives in.

    Built once per workflow class and process (milliseconds: it walks what the class can reach,
    resolves type annotations, reads the module source for ``imports_passed_through`` blocks);
    :meth:`instantiate` then costs tens of microseconds per run, in proportion to what the
    class reaches.
    """

    def __init__(self, cls: type, options: IsolationOptions, *, shims: bool) -> None:
        self.workflow_class = cls
        root = sys.modules.get(cls.__module__)
        if root is None or not defined_in(root, cls):
            raise UnsupportedWorkflowModuleError(
                f"workflow class {cls.__qualname__} is not reachable from its module "
                f"{cls.__module__!r} in sys.modules: isolation copies the state of the module the "
                "class is defined in (or pass isolation=False)"
            )
        modules = OwnModules(root, options)
        builder = _PlanBuilder(modules, shims=shims)
        self._clone = builder.build(cls)
        self.own_modules = modules.names
        """Every module whose state is per run (a run copies the part its class reaches)."""
        self.inventory = builder.inventory()
        if builder.copy_failures:
            logger.debug(
                "Shared between runs of %s (cannot be copied): %s",
                cls.__qualname__,
                ", ".join(builder.copy_failures),
            )
        # Instantiate once now: a plan that cannot produce a run fails at prepare time.
        self.instantiate(RunState(0))

    def instantiate(
        self, state: RunState, failure_types: Sequence[type[BaseException]] = ()
    ) -> Instantiation:
        """Make one run's copy; ``failure_types`` gain the run's versions of own classes."""
        return self._clone.instantiate(state, failure_types)


class _PlanBuilder:
    """Classifies what the workflow class reaches, following references as it goes."""

    def __init__(self, modules: OwnModules, *, shims: bool) -> None:
        self._modules = modules
        self._shims = shims
        self._slots: dict[int, Slot] = {}
        self._functions: dict[int, FunctionRecipe] = {}
        self._pending_functions: list[types.FunctionType] = []
        self._pending_modules: list[types.ModuleType] = []  # to reach whole
        self._classes: dict[int, ClassRecipe] = {}
        self._cells: dict[int, types.CellType] = {}
        self._cell_slots: dict[int, Slot] = {}
        self._data_classes: dict[int, bool] = {}
        self._namespaces: dict[int, NamespaceRecipe] = {}
        self._reached: dict[int, set[str]] = {}
        self._everything = False
        self.copy_failures: list[str] = []
        self._keep: list[Any] = []  # objects whose id() the plan keys on

    def build(self, cls: type) -> ClonePlan:
        # The workflow class is the run's even when its module does not bind it by name (a class
        # made in a function, or bound under another name).
        self.classify(cls)
        self._drain()
        for recipe in self._namespaces.values():
            # The template's order, whatever order the names were reached in.
            order = {name: i for i, name in enumerate(recipe.module.__dict__)}
            recipe.base = dict(sorted(recipe.base.items(), key=lambda item: order.get(item[0], -1)))
            recipe.dirty.sort(key=lambda item: order[item[0]])
        return ClonePlan(
            cls,
            list(self._namespaces.values()),
            list(self._cells),
            self._cell_slots,
            list(self._functions.items()),
            self._order_classes(),
            self._modules.tree(),
        )

    def inventory(self) -> CopyInventory:
        def qualified(obj: Any) -> str:
            return f"{obj.__module__}.{obj.__qualname__}"

        recipes = self._namespaces.values()
        return CopyInventory(
            modules=tuple(r.module.__name__ for r in recipes),
            whole_modules=tuple(r.module.__name__ for r in recipes if r.whole),
            classes=tuple(qualified(c.cls) for c in self._classes.values()),
            functions=tuple(qualified(f.fn) for f in self._functions.values()),
            names={r.module.__name__: tuple(name for name, _ in r.dirty) for r in recipes},
        )

    # -- reach --

    def _drain(self) -> None:
        # Iterative: function internals and whole modules are classified after what reached them.
        while self._pending_functions or self._pending_modules:
            if self._pending_modules:
                self._reach_module(self._pending_modules.pop())
            else:
                self._plan_function_internals(self._pending_functions.pop())

    def _namespace(self, module: types.ModuleType) -> NamespaceRecipe:
        recipe = self._namespaces.get(id(module.__dict__))
        if recipe is None:
            ns = module.__dict__
            base = {k: ns[k] for k in NS_SHARE if k in ns}
            base["__builtins__"] = WORKFLOW_BUILTINS
            recipe = self._namespaces[id(ns)] = NamespaceRecipe(module, base, [])
        return recipe

    def _want_whole(self, module: types.ModuleType) -> None:
        recipe = self._namespace(module)
        if not recipe.whole:
            recipe.whole = True
            self._pending_modules.append(module)

    def _reach_module(self, module: types.ModuleType) -> None:
        for name in list(module.__dict__):
            self._reach_name(module, name)

    def _reach_everything(self) -> None:
        if not self._everything:
            self._everything = True
            for module in self._modules.by_namespace.values():
                self._want_whole(module)

    def _reach_name(self, module: types.ModuleType, name: str) -> None:
        ns = module.__dict__
        reached = self._reached.setdefault(id(ns), set())
        if name in reached:
            return
        reached.add(name)
        if name == "__builtins__" or name in NS_SHARE or name not in ns:
            return  # a builtin, an attribute name, or a global bound later
        recipe = self._namespace(module)
        value = ns[name]
        origin = self._modules.facts[id(module)].imported_from.get(name)
        if origin is not None and self._owned_by_shared_module(value, *origin):
            # `from shared_module import STATE`: the shared module's object, as under the
            # SDK's sandbox for a passed-through module (shims still apply).
            stand_in = stand_in_for(value, classes=True) if self._shims else None
            recipe.base[name] = value if stand_in is None else stand_in
            return
        slot = self.classify(value, stand_in_classes=True)
        if slot.kind in (SHARE, SUBST):
            recipe.base[name] = slot.value
        else:
            recipe.dirty.append((name, slot))

    def _reach_code(self, module: types.ModuleType, code: types.CodeType) -> None:
        facts = code_facts(code)
        if facts.escapes:
            self._reach_everything()
        for name in facts.names:
            self._reach_name(module, name)
        for site in facts.imports:
            self._reach_import(module, site)

    def _reach_import(self, module: types.ModuleType, site: ImportSite) -> None:
        """An ``import`` in reachable code: the modules it can hand to the run are copied whole."""
        ns = module.__dict__
        package = ns.get("__package__")
        if package is None:  # what importlib falls back to
            is_package = "__path__" in ns
            package = module.__name__ if is_package else module.__name__.rpartition(".")[0]
        absolute = resolve_import(package, site.level, site.name or None)
        if not absolute:
            self._reach_everything()
            return
        modules = self._modules
        if not site.fromlist:
            # `import a.b.c` hands out `a`: anything below it is reachable by attribute.
            parts = absolute.split(".")
            for depth in range(1, len(parts) + 1):
                self._adopt(".".join(parts[:depth]))
            for own in modules.descendants(absolute.partition(".")[0]):
                self._want_whole(own)
            return
        for name in [absolute, *(f"{absolute}.{e}" for e in site.fromlist if e != "*")]:
            own_module = self._adopt(name)
            if own_module is not None:
                self._want_whole(own_module)

    def _adopt(self, name: str) -> types.ModuleType | None:
        """The own module ``name``, also one only ever imported inside functions.

        Packages are adopted only when discovery found them (a package above the workflow's
        modules is seen through a view, its ``__init__`` shared); a module not imported yet is
        shared: there is nothing to copy yet.
        """
        module = sys.modules.get(name)
        if module is None or not isinstance(module, types.ModuleType):
            return None
        modules = self._modules
        if modules.owns_namespace(module.__dict__):
            return module
        if "__path__" in module.__dict__ or not modules.adopt(module):
            return None
        if self._everything:
            for own in modules.by_namespace.values():
                self._want_whole(own)
        return module

    def _reach_inside(self, value: Any) -> None:
        """Classify the own functions, classes and modules inside a deep-copied value, so the
        copy finds the run's versions of them in the memo."""
        stack = [value]
        seen: set[int] = set()
        budget = _WALK_BUDGET
        modules = self._modules
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            budget -= 1
            if budget < 0:
                self._reach_everything()
                return
            t = type(obj)
            if t in ATOMIC:
                continue
            if t is types.ModuleType:
                if modules.owns_namespace(obj.__dict__):
                    self.classify(obj)
                continue
            if t is types.FunctionType:
                if modules.owns_namespace(obj.__globals__):
                    self.classify(obj)
                continue
            if isinstance(obj, type):
                if modules.owns_class(obj):
                    self.classify(obj)
                continue
            stack.extend(gc.get_referents(obj))

    # -- classification --

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
            self._want_whole(module)
            return self._remember(module, Slot(MEMO, module))
        if modules.is_ancestor(module.__name__):
            for own in modules.descendants(module.__name__):
                self._want_whole(own)
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
        self._reach_inside(value)
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
            self._namespace(module)
        for cell in fn.__closure__ or ():
            self._cells.setdefault(id(cell), cell)
        self._functions[id(fn)] = FunctionRecipe(fn, globals_id)
        self._pending_functions.append(fn)
        return slot

    def _plan_function_internals(self, fn: types.FunctionType) -> None:
        recipe = self._functions[id(fn)]
        recipe.defaults = self.classify(fn.__defaults__, stand_in_classes=True)
        recipe.kwdefaults = self.classify(fn.__kwdefaults__, stand_in_classes=True)
        recipe.attrs = self.classify(dict(fn.__dict__)) if fn.__dict__ else None
        recipe.annotations = self._annotations_slot(fn)
        for cell in fn.__closure__ or ():
            if id(cell) not in self._cell_slots:
                self._cell_slots[id(cell)] = (
                    self.classify(cell.cell_contents, stand_in_classes=True)
                    if cell_filled(cell)
                    else Slot(SHARE, EMPTY_CELL)
                )
        module = self._modules.by_namespace.get(id(fn.__globals__))
        if module is not None:
            self._reach_code(module, fn.__code__)

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
        self._classes[id(cls)] = ClassRecipe(cls, bases, items)
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
        self._reach_unresolved(obj, resolved.values())
        self._keep.append(resolved)
        # Every value classified (no short cut): the copy must find all of them.
        shared = [self.classify(v).shared for v in resolved.values()]
        if all(shared):
            return Slot(SUBST, resolved)
        return Slot(COPY, resolved, eager=False)

    def _reach_unresolved(self, obj: Any, hints: Iterable[Any]) -> None:
        """Names in annotations that stayed strings may still be resolved later, against the
        run's namespace: keep them in it."""
        strings = [h for h in hints if isinstance(h, str)]
        if not strings:
            return
        if isinstance(obj, types.FunctionType):
            module = self._modules.by_namespace.get(id(obj.__globals__))
        else:
            module = self._modules.by_name(getattr(obj, "__module__", ""))
        if module is None:
            return
        for text in strings:
            for name in _IDENTIFIER.findall(text):
                self._reach_name(module, name)

    def _owned_by_shared_module(self, value: Any, module_name: str, attr: str) -> bool:
        module = sys.modules.get(module_name)
        if module is None or self._modules.owns_namespace(module.__dict__):
            return False
        if getattr(module, attr, _MISSING) is not value:
            return False
        # A class or function defined in one of our modules and re-exported by a shared one is
        # still ours.
        home = home_module(value)
        return home is None or not self._modules.owns_namespace(home.__dict__)

    def _order_classes(self) -> list[ClassRecipe]:
        """Bases before subclasses: ``type()`` needs the run's bases to exist."""
        ordered: list[ClassRecipe] = []
        done: set[int] = set()

        def visit(recipe: ClassRecipe) -> None:
            if id(recipe.cls) in done:
                return
            done.add(id(recipe.cls))
            for base in recipe.cls.__bases__:
                base_recipe = self._classes.get(id(base))
                if base_recipe is not None:
                    visit(base_recipe)
            ordered.append(recipe)

        for recipe in list(self._classes.values()):
            visit(recipe)
        return ordered

