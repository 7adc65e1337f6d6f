"""Walking what a workflow class can reach: which names of which own modules a run needs.

A run needs its own copy of whatever workflow code could mutate and another run could observe,
but only of what the run can reach: a module holding fifteen workflow classes must not make a
run of one of them copy the other fourteen. So the walk follows what code can touch, read from
its bytecode (:mod:`.bytecode`): the globals its functions name, the modules they import, the
names in annotations that stayed strings, the own objects inside a deep-copied value,
transitively. Names no reachable code mentions are left out of the run's namespaces. Code that
can reach further than its bytecode says (``globals()``, ``eval``, ``__import__``) makes every
own module copied whole, as if nothing were known.

The walk records, per own module, a :class:`~.clone.NamespaceRecipe`; each value it reaches is
handed to the classifier (:mod:`.classify`), which decides how a run gets it and hands back the
code it finds (functions, classes, modules) to walk on. The classifier is seen here only through
the narrow :class:`Classifier` protocol, so the walk does not depend on it.
"""

from __future__ import annotations

import gc
import re
import sys
import types
from collections.abc import Iterable
from typing import Any, Protocol

from temporay.runtime.isolation.bytecode import ImportSite, code_facts
from temporay.runtime.isolation.clone import NamespaceRecipe
from temporay.runtime.isolation.imports import WORKFLOW_BUILTINS
from temporay.runtime.isolation.modules import OwnModules, home_module, resolve_import
from temporay.runtime.isolation.shims.determinism import stand_in_for
from temporay.runtime.isolation.values import ATOMIC, NS_SHARE, SHARE, SUBST, Slot

__all__ = ["Classifier", "Reachability"]

_MISSING = object()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Objects visited looking for own code inside a deep-copied value before giving up on precision.
_WALK_BUDGET = 20_000


class Classifier(Protocol):
    """What the walk hands every reached value to (:class:`~.classify.ValueClassifier`)."""

    def classify(self, value: Any, *, stand_in_classes: bool = False) -> Slot:
        """How a run gets its version of ``value`` (recording what must be cloned)."""
        ...


class Reachability:
    """The names of the own modules that what the workflow class reaches can use, module by
    module, as the namespace recipes of a run."""

    def __init__(self, modules: OwnModules, classifier: Classifier, *, shims: bool) -> None:
        self._modules = modules
        self._classifier = classifier
        self._shims = shims
        self.namespaces: dict[int, NamespaceRecipe] = {}
        """id(template namespace) -> the recipe of the run's namespace of that module."""
        self._pending_modules: list[types.ModuleType] = []  # to reach whole
        self._reached: dict[int, set[str]] = {}
        self._everything = False

    def namespace(self, module: types.ModuleType) -> NamespaceRecipe:
        """The recipe of the run's namespace of an own module (empty until names are reached)."""
        recipe = self.namespaces.get(id(module.__dict__))
        if recipe is None:
            ns = module.__dict__
            base = {k: ns[k] for k in NS_SHARE if k in ns}
            base["__builtins__"] = WORKFLOW_BUILTINS
            recipe = self.namespaces[id(ns)] = NamespaceRecipe(module, base, [])
        return recipe

    def want_whole(self, module: types.ModuleType) -> None:
        """Every name of ``module`` is reachable (the module object itself was reached)."""
        recipe = self.namespace(module)
        if not recipe.whole:
            recipe.whole = True
            self._pending_modules.append(module)

    def reach_pending_module(self) -> bool:
        """Reach every name of one module wanted whole; ``False`` when none is left."""
        if not self._pending_modules:
            return False
        module = self._pending_modules.pop()
        for name in list(module.__dict__):
            self._reach_name(module, name)
        return True

    def _reach_everything(self) -> None:
        if not self._everything:
            self._everything = True
            for module in self._modules.by_namespace.values():
                self.want_whole(module)

    def _reach_name(self, module: types.ModuleType, name: str) -> None:
        ns = module.__dict__
        reached = self._reached.setdefault(id(ns), set())
        if name in reached:
            return
        reached.add(name)
        if name == "__builtins__" or name in NS_SHARE or name not in ns:
            return  # a builtin, an attribute name, or a global bound later
        recipe = self.namespace(module)
        value = ns[name]
        origin = self._modules.facts[id(module)].imported_from.get(name)
        if origin is not None and self._owned_by_shared_module(value, *origin):
            # `from shared_module import STATE`: the shared module's object, as under the
            # SDK's sandbox for a passed-through module (shims still apply).
            stand_in = stand_in_for(value, classes=True) if self._shims else None
            recipe.base[name] = value if stand_in is None else stand_in
            return
        slot = self._classifier.classify(value, stand_in_classes=True)
        if slot.kind in (SHARE, SUBST):
            recipe.base[name] = slot.value
        else:
            recipe.dirty.append((name, slot))

    def reach_code(self, module: types.ModuleType, code: types.CodeType) -> None:
        """What a function of ``module`` can reach through its code: names and imports."""
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
                self.want_whole(own)
            return
        for name in [absolute, *(f"{absolute}.{e}" for e in site.fromlist if e != "*")]:
            own_module = self._adopt(name)
            if own_module is not None:
                self.want_whole(own_module)

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
                self.want_whole(own)
        return module

    def reach_inside(self, value: Any) -> None:
        """Classify the own functions, classes and modules inside a deep-copied value, so the
        copy finds the run's versions of them in the memo."""
        stack = [value]
        seen: set[int] = set()
        budget = _WALK_BUDGET
        modules = self._modules
        classify = self._classifier.classify
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
                    classify(obj)
                continue
            if t is types.FunctionType:
                if modules.owns_namespace(obj.__globals__):
                    classify(obj)
                continue
            if isinstance(obj, type):
                if modules.owns_class(obj):
                    classify(obj)
                continue
            stack.extend(gc.get_referents(obj))

    def reach_unresolved(self, obj: Any, hints: Iterable[Any]) -> None:
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
