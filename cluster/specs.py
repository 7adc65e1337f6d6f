"""``module`` and ``module:Name,...`` specs on the command line, resolved to workflows and activities.

Resolved before anything is started, so a typo costs one line, not a Ray cluster and a dev server.
The current directory goes on ``sys.path`` first, as ``python -m`` puts it there: users run
``temporay worker --workflows myapp.workflows`` from their project's root.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal

Kind = Literal["workflow", "activity"]

_MARKERS: dict[Kind, str] = {
    "workflow": "__temporal_workflow_definition",
    "activity": "__temporal_activity_definition",
}
_DECORATORS: dict[Kind, str] = {"workflow": "@workflow.defn", "activity": "@activity.defn"}
_A: dict[Kind, str] = {"workflow": "a workflow", "activity": "an activity"}


class SpecError(ValueError):
    """A spec that names nothing usable; the message is the one line the user sees."""


def put_cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _import(module_name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise SpecError(
                f"{spec!r}: no module named {module_name!r} (looked in the current directory "
                f"{os.getcwd()} and the installed packages)"
            ) from err
        raise SpecError(f"{spec!r}: importing {module_name!r} failed: {err}") from err
    except Exception as err:
        raise SpecError(
            f"{spec!r}: importing {module_name!r} failed: {type(err).__name__}: {err}"
        ) from err


def _is(value: Any, kind: Kind) -> bool:
    return hasattr(value, _MARKERS[kind])


def _describe(value: Any, kind: Kind) -> str:
    other: Kind = "activity" if kind == "workflow" else "workflow"
    if _is(value, other):
        return f"is {_A[other]}, not {_A[kind]}"
    return f"is not {_A[kind]} (no {_DECORATORS[kind]})"


def load_objects(specs: Sequence[str], kind: Kind) -> list[Any]:
    """Every ``kind`` defined in each ``module``, or exactly the ones ``module:A,B`` names."""
    found: list[Any] = []
    for spec in specs:
        module_name, _, names = spec.partition(":")
        if not module_name:
            raise SpecError(f"{spec!r}: give a module, as module or module:Name")
        module = _import(module_name, spec)
        if names:
            for name in names.split(","):
                value = getattr(module, name, None)
                if value is None:
                    raise SpecError(f"{spec!r}: module {module_name!r} has no {name!r}")
                if not _is(value, kind):
                    raise SpecError(f"{spec!r}: {module_name}.{name} {_describe(value, kind)}")
                found.append(value)
            continue
        for _, value in inspect.getmembers(module):
            if getattr(value, "__module__", None) == module.__name__ and _is(value, kind):
                found.append(value)
    return found
