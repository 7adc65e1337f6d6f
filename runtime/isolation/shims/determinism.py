"""The front of the shims: which real object of the standard library each deterministic
stand-in replaces.

Workflow code written for plain Python calls ``time.time()``, ``datetime.now()``,
``random.random()`` or ``uuid.uuid4()``. The SDK's sandbox refuses those calls; temporay answers
them deterministically instead: the time is the workflow's time (``workflow.now()``), the
randomness a per-run stream that is re-created identically on replay.

How the shims reach workflow code, and only workflow code (the libraries running on the same
thread must keep the real clock and randomness):

* They are **stand-in modules and objects** (:data:`STAND_INS`), put into the per-run module
  namespaces of the workflow's own modules by the isolation (:mod:`temporay.runtime.isolation`):
  ``import time`` in a workflow module binds the stand-in ``time`` module, ``from time import
  time`` the stand-in function. The real modules are never patched, so logging, Ray, gRPC and
  every other library keep the real clock even on the workflow's thread.
* They are **scoped by a per-run ContextVar**
  (:data:`~temporay.runtime.isolation.run_state.CURRENT_RUN`) that the isolation sets around
  each activation: a stand-in called outside an activation (another thread, a callback kept
  after the run, module import time) behaves exactly like the real one.
* ``strict`` runs refuse these calls like the SDK sandbox (``RestrictedWorkflowAccessError``), and
  ``workflow.unsafe.sandbox_unrestricted()`` turns the shims off (the real functions answer).

The shims themselves: the clock (:mod:`.clock`), the random stream (:mod:`.random`), and the
refusals of ``time.sleep`` and threads (:mod:`.blocking`); they answer from the run's state
(:mod:`temporay.runtime.isolation.run_state`). This module only maps real objects to them; it is
the one the isolation asks.
"""

from __future__ import annotations

import _thread
import datetime as _dt
import os as _os
import random as _random
import secrets as _secrets
import threading as _threading
import time as _time
import types
import uuid as _uuid
from typing import Any

from temporay.runtime.isolation.shims.blocking import (
    SLEEP_OVERRIDES,
    THREAD_OVERRIDES,
    THREADING_OVERRIDES,
)
from temporay.runtime.isolation.shims.clock import (
    DATETIME_BOUND,
    DATETIME_OVERRIDES,
    TIME_OVERRIDES,
)
from temporay.runtime.isolation.shims.random import (
    OS_OVERRIDES,
    RANDOM_BOUND,
    RANDOM_OVERRIDES,
    SECRETS_OVERRIDES,
    UUID_OVERRIDES,
)

__all__ = ["STAND_INS", "stand_in_for", "stand_in_module"]

# Real module -> the attributes its stand-in replaces.
_OVERRIDES: dict[types.ModuleType, dict[str, Any]] = {
    _time: {**TIME_OVERRIDES, **SLEEP_OVERRIDES},
    _dt: DATETIME_OVERRIDES,
    _random: RANDOM_OVERRIDES,
    _uuid: UUID_OVERRIDES,
    _os: OS_OVERRIDES,
    _secrets: SECRETS_OVERRIDES,
    _threading: THREADING_OVERRIDES,
    _thread: THREAD_OVERRIDES,
}


def _stand_in_module(real: types.ModuleType, overrides: dict[str, Any]) -> types.ModuleType:
    # A copy of the real namespace: everything not overridden is the real object.
    mod = types.ModuleType(real.__name__, real.__doc__)
    mod.__dict__.update(real.__dict__)
    mod.__dict__.update(overrides)
    return mod


_STAND_IN_MODULES: dict[str, types.ModuleType] = {
    real.__name__: _stand_in_module(real, overrides) for real, overrides in _OVERRIDES.items()
}


def _build_stand_ins() -> tuple[dict[int, Any], frozenset[int]]:
    table: dict[int, Any] = {}
    classes: set[int] = set()
    for real, overrides in _OVERRIDES.items():
        table[id(real)] = _STAND_IN_MODULES[real.__name__]
        for attr, stand_in in overrides.items():
            original = getattr(real, attr, None)
            if original is None:
                continue
            # Module attributes are stable objects (random.random is the one bound method
            # random._inst.random stored at import), so identity finds every `from x import y`.
            table[id(original)] = stand_in
            if isinstance(original, type):
                classes.add(id(original))
    return table, frozenset(classes)


STAND_INS, _STAND_IN_CLASSES = _build_stand_ins()
"""``id(real object) -> stand-in`` for modules, functions and classes workflow modules may bind
(``import time``, ``from time import time``, ``from datetime import datetime``)."""

# Bound methods whose identity changes on every access: (self, name) -> stand-in.
_BOUND_STAND_INS: dict[tuple[int, str], Any] = {**RANDOM_BOUND, **DATETIME_BOUND}


def stand_in_for(value: Any, *, classes: bool = True) -> Any:
    """The stand-in for ``value`` (a real module, function, class or bound method), or ``None``.

    ``classes=False`` leaves classes alone (only callables and modules are replaced): used for
    values that are type metadata rather than code's own references.
    """
    stand_in = STAND_INS.get(id(value))
    if stand_in is not None:
        if not classes and id(value) in _STAND_IN_CLASSES:
            return None
        return stand_in
    if isinstance(value, (types.BuiltinMethodType, types.MethodType)):
        owner = getattr(value, "__self__", None)
        if owner is not None:
            return _BOUND_STAND_INS.get((id(owner), value.__name__))
    return None


def stand_in_module(module: types.ModuleType) -> types.ModuleType | None:
    """The stand-in for a real module (``time``, ``datetime``, ...), or ``None``."""
    stand_in = STAND_INS.get(id(module))
    return stand_in if isinstance(stand_in, types.ModuleType) else None
