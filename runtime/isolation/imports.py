"""Imports executed by workflow code resolve to the run's copies, never to ``sys.modules``.

The global ``sys.modules`` is shared by every run and every thread of the worker, so it is never
touched. Instead every per-run namespace gets :data:`WORKFLOW_BUILTINS`, whose ``__import__`` does
the real import (shared, cached) and then swaps the result for what this run should see: its own
copy of one of the workflow's modules, a view of a shared package above them, or a shim's
stand-in module. The run is found through :data:`CURRENT_RUN`, so one builtins dict serves all
runs, and its identity marks a frame as workflow code for the I/O restrictions.
"""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Sequence
from typing import Any

import temporalio.workflow

from temporay.runtime.isolation.modules import OwnModuleTree
from temporay.runtime.isolation.run_state import CURRENT_RUN, RunState
from temporay.runtime.isolation.shims.determinism import stand_in_module

__all__ = ["WORKFLOW_BUILTINS", "UnreachedModuleError", "package_view"]

_unsafe = temporalio.workflow.unsafe
_real_import = builtins.__import__


class UnreachedModuleError(ImportError):
    """Workflow code imported one of its own modules that the run's copy left out.

    The run copies what its workflow class can reach; an import the analysis did not foresee
    would otherwise hand the run the shared module (its state seen by every run).
    """


def package_view(st: RunState, tree: OwnModuleTree, package: types.ModuleType) -> types.ModuleType:
    """A run's view of a shared package above its own modules: the package's attributes, with
    the run's copies of the own submodules (``import pkg.mod`` then ``pkg.mod.X``, or ``from pkg
    import mod`` executed by workflow code)."""
    view = st.modules.get(id(package))
    if view is not None:
        return view
    view = types.ModuleType(package.__name__)
    ns = view.__dict__
    ns.update(package.__dict__)
    st.modules[id(package)] = view
    for child in tree.children.get(package.__name__, ()):
        template = sys.modules.get(f"{package.__name__}.{child}")
        if template is None:
            continue
        per_run = st.modules.get(id(template))
        if per_run is None and id(template) in tree.ancestor_ids:
            per_run = package_view(st, tree, template)
        if per_run is not None:
            ns[child] = per_run
        elif ns.get(child) is template:
            # Not reached by this run: absent rather than the shared module.
            del ns[child]
    return view


def _workflow_import(
    name: str,
    globals: dict[str, Any] | None = None,
    locals: Any = None,
    fromlist: Sequence[str] = (),
    level: int = 0,
) -> types.ModuleType:
    """``__import__`` of workflow code: the run's copy of its own modules, the stand-ins of the
    shimmed standard library modules, the shared module otherwise."""
    module = _real_import(name, globals, locals, fromlist, level)
    st = CURRENT_RUN.get()
    if st is None:
        return module
    if not _unsafe.is_imports_passed_through():
        per_run = st.modules.get(id(module))
        if per_run is not None:
            return per_run
        tree = st.module_tree
        if tree is not None:
            if id(module) in tree.ancestor_ids:
                return package_view(st, tree, module)
            if id(module) in tree.module_ids:
                raise UnreachedModuleError(
                    f"workflow code imported {module.__name__!r}, which this run's copy of the "
                    "workflow's modules does not include (temporay did not foresee the import). "
                    "Share the module between runs (shared_modules=[...] or "
                    "workflow.unsafe.imports_passed_through()), or report this."
                )
    if st.shims:
        # As for imports at module level: passed through means shared, not unshimmed.
        stand_in = stand_in_module(module)
        if stand_in is not None:
            return stand_in
    return module


WORKFLOW_BUILTINS: dict[str, Any] = dict(builtins.__dict__)
"""``__builtins__`` of every per-run module namespace (one dict for all runs). Its identity also
marks a frame as workflow code for the I/O restrictions."""
WORKFLOW_BUILTINS["__import__"] = _workflow_import
