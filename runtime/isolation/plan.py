"""Deciding, once per workflow class, what each run of it gets a copy of (:class:`ModulePlan`).

A run needs its own copy of whatever workflow code could mutate and another run could observe:
module globals, module-level containers and instances, class attributes, closures. But only of
what the run can reach. So the plan starts from the workflow class and walks what its code can
touch (:mod:`.reachability`, reading bytecode with :mod:`.bytecode`), deciding for each value
reached how a run gets it (:mod:`.classify`, in the vocabulary of :mod:`.values`). The result is
a :class:`~.clone.ClonePlan` that each run follows.

This module is the front: it finds the workflow's own modules (:mod:`.modules`), runs the walk,
and assembles the recipes into the plan and its :class:`CopyInventory`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporay.runtime.isolation.classify import ValueClassifier
from temporay.runtime.isolation.clone import ClassRecipe, ClonePlan, Instantiation
from temporay.runtime.isolation.modules import OwnModules, defined_in
from temporay.runtime.isolation.options import IsolationOptions
from temporay.runtime.isolation.run_state import RunState

__all__ = ["CopyInventory", "ModulePlan", "UnsupportedWorkflowModuleError"]

logger = logging.getLogger(__name__)


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

    Built once per workflow class and process (it walks what the class can reach, resolves type
    annotations, reads the module source for ``imports_passed_through`` blocks);
    :meth:`instantiate` then costs, per run, in proportion to what the class reaches.
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
        classifier = ValueClassifier(modules, shims=shims)
        # The workflow class is the run's even when its module does not bind it by name (a class
        # made in a function, or bound under another name).
        classifier.classify(cls)
        classifier.drain()
        self._clone = _clone_plan(cls, classifier, modules)
        self.own_modules = modules.names
        """Every module whose state is per run (a run copies the part its class reaches)."""
        self.inventory = _inventory(classifier)
        if classifier.copy_failures:
            logger.debug(
                "Shared between runs of %s (cannot be copied): %s",
                cls.__qualname__,
                ", ".join(classifier.copy_failures),
            )
        # Instantiate once now: a plan that cannot produce a run fails at prepare time.
        self.instantiate(RunState(0))

    def instantiate(
        self, state: RunState, failure_types: Sequence[type[BaseException]] = ()
    ) -> Instantiation:
        """Make one run's copy; ``failure_types`` gain the run's versions of own classes."""
        return self._clone.instantiate(state, failure_types)


def _clone_plan(cls: type, classifier: ValueClassifier, modules: OwnModules) -> ClonePlan:
    """The recipes the walk and the classifier recorded, in the order a run follows them."""
    namespaces = classifier.reach.namespaces
    for recipe in namespaces.values():
        # The template's order, whatever order the names were reached in.
        order = {name: i for i, name in enumerate(recipe.module.__dict__)}
        recipe.base = dict(sorted(recipe.base.items(), key=lambda item: order.get(item[0], -1)))
        recipe.dirty.sort(key=lambda item: order[item[0]])
    return ClonePlan(
        cls,
        list(namespaces.values()),
        list(classifier.cells),
        classifier.cell_slots,
        list(classifier.functions.items()),
        _order_classes(classifier.classes),
        modules.tree(),
    )


def _inventory(classifier: ValueClassifier) -> CopyInventory:
    def qualified(obj: Any) -> str:
        return f"{obj.__module__}.{obj.__qualname__}"

    recipes = classifier.reach.namespaces.values()
    return CopyInventory(
        modules=tuple(r.module.__name__ for r in recipes),
        whole_modules=tuple(r.module.__name__ for r in recipes if r.whole),
        classes=tuple(qualified(c.cls) for c in classifier.classes.values()),
        functions=tuple(qualified(f.fn) for f in classifier.functions.values()),
        names={r.module.__name__: tuple(name for name, _ in r.dirty) for r in recipes},
    )


def _order_classes(classes: dict[int, ClassRecipe]) -> list[ClassRecipe]:
    """Bases before subclasses: ``type()`` needs the run's bases to exist."""
    ordered: list[ClassRecipe] = []
    done: set[int] = set()

    def visit(recipe: ClassRecipe) -> None:
        if id(recipe.cls) in done:
            return
        done.add(id(recipe.cls))
        for base in recipe.cls.__bases__:
            base_recipe = classes.get(id(base))
            if base_recipe is not None:
                visit(base_recipe)
        ordered.append(recipe)

    for recipe in list(classes.values()):
        visit(recipe)
    return ordered

