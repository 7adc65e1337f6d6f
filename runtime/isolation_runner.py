"""Wrapping any engine so that each run gets its own module state, shims and I/O restrictions.

The engine (the SDK's own workflow instance, or temporay's) knows nothing of isolation: it is
handed a ``_Definition`` re-derived from the run's classes, failure exception types remapped to
them, and every activation runs with the run's :data:`CURRENT_RUN` set, which is all the shims,
the import hook and the audit hook look at.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo

from . import frozen
from .isolation_clone import Instantiation
from .isolation_io import install_restrictions
from .isolation_options import IsolationOptions
from .isolation_plan import ModulePlan
from .shims_state import CURRENT_RUN, RunState

__all__ = ["IsolatedInstance", "IsolatedWorkflowRunner"]

_ReadyKey = tuple[type, tuple[type[BaseException], ...]]


class IsolatedWorkflowRunner(WorkflowRunner):
    """Wraps any engine (a ``WorkflowRunner``) with per-run module state, shims and restrictions.

    For each run it makes the run's copy of the workflow's modules, re-derives the ``_Definition``
    and the failure exception types from the run's classes, creates the engine's instance with
    them, and scopes the run's ContextVar around every activation of that instance.

    Args:
        engine: The runner that executes workflow code (the SDK's ``UnsandboxedWorkflowRunner``,
            temporay's own engine, ...).
        isolation: Per-run module state.
        shims: Deterministic ``time``/``datetime``/``random``/``uuid``/``os``/``secrets`` in
            workflow modules (needs ``isolation``).
        strict: The shimmed calls raise ``RestrictedWorkflowAccessError`` instead, like the SDK.
        options: What is shared between runs, and whether I/O is restricted.
    """

    def __init__(
        self,
        engine: WorkflowRunner,
        *,
        isolation: bool = True,
        shims: bool = True,
        strict: bool = False,
        options: IsolationOptions | None = None,
    ) -> None:
        if (shims or strict) and not isolation:
            raise ValueError(
                "shims and strict mode reach workflow code through its per-run module namespace: "
                "they need isolation=True"
            )
        self.engine = engine
        self.isolation = isolation
        self.shims = shims or strict
        self.strict = strict
        self.options = options or IsolationOptions()
        self._plans: dict[type, ModulePlan] = {}
        self._plans_lock = threading.Lock()
        # Run copies made ahead of their runs (see ``make_ready``), per class and failure types.
        self._ready: dict[_ReadyKey, list[tuple[RunState, Instantiation]]] = {}
        self._making_ready = threading.Lock()
        if self.options.restrict_io:
            install_restrictions()

    def plan(self, cls: type) -> ModulePlan:
        """The (cached) plan for a workflow class; built on first use."""
        plan = self._plans.get(cls)
        if plan is None:
            with self._plans_lock:
                plan = self._plans.get(cls)
                if plan is None:
                    plan = self._plans[cls] = ModulePlan(cls, self.options, shims=self.shims)
        return plan

    def make_ready(
        self,
        defn: temporalio.workflow._Definition,
        failure_types: Sequence[type[BaseException]],
        count: int,
    ) -> int:
        """Make copies of ``defn``'s modules ahead of the runs that will use them, until
        ``count`` are ready; returns how many were made.

        A copy needs nothing of its run (the seed and run ID are bound when the run takes it), so
        a host that waits for work (a shard, between activations) makes them then, and a new
        run's creation skips its most expensive step."""
        if not (self.isolation and defn.sandboxed):
            return 0
        if not self._making_ready.acquire(blocking=False):
            return 0  # another thread is at it
        try:
            ready = self._ready.setdefault((defn.cls, tuple(failure_types)), [])
            made = 0
            while len(ready) < count:
                state = self._new_state(0, "")
                ready.append((state, self.plan(defn.cls).instantiate(state, failure_types)))
                made += 1
            return made
        finally:
            self._making_ready.release()

    def _take_ready(
        self, key: _ReadyKey, seed: int, run_id: str
    ) -> tuple[RunState, Instantiation] | None:
        ready = self._ready.get(key)
        if not ready:
            return None
        try:
            state, made = ready.pop()  # atomic: another thread may take the last one first
        except IndexError:
            return None
        state.reseed(seed)
        state.run_id = run_id
        return state, made

    def _new_state(self, seed: int, run_id: str) -> RunState:
        return RunState(
            seed,
            run_id=run_id,
            shims=self.shims,
            strict=self.strict,
            restrict_io=self.options.restrict_io,
        )

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.engine.prepare_workflow(defn)
        if self.isolation and defn.sandboxed:
            self.plan(defn.cls)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.engine.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        if not det.defn.sandboxed:
            # @workflow.defn(sandboxed=False): the author asked for no sandbox at all.
            return self.engine.create_instance(det)
        if self.isolation:
            failure_types = det.worker_level_failure_exception_types
            ready = self._take_ready(
                (det.defn.cls, tuple(failure_types)), det.randomness_seed, det.info.run_id
            )
            if ready is not None:
                state, made = ready
            else:
                state = self._new_state(det.randomness_seed, det.info.run_id)
                made = self.plan(det.defn.cls).instantiate(state, failure_types)
            det = frozen.replace(
                det,
                defn=made.defn,
                worker_level_failure_exception_types=made.failure_exception_types,
            )
        else:
            state = self._new_state(det.randomness_seed, det.info.run_id)
            module = sys.modules.get(det.defn.cls.__module__)
            if module is not None:
                state.code_globals = frozenset({id(module.__dict__)})
        token = CURRENT_RUN.set(state)
        try:
            instance = self.engine.create_instance(det)
        finally:
            CURRENT_RUN.reset(token)
        return IsolatedInstance(instance, state)


class IsolatedInstance(WorkflowInstance):
    """An engine's instance with the run's ContextVar set around every activation."""

    def __init__(self, inner: WorkflowInstance, state: RunState) -> None:
        self.inner = inner
        self.state = state

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        state = self.state
        state.time_ns = act.timestamp.ToNanoseconds()
        for job in act.jobs:
            if job.HasField("update_random_seed"):
                state.reseed(job.update_random_seed.randomness_seed)
        token = CURRENT_RUN.set(state)
        try:
            return self.inner.activate(act)
        finally:
            CURRENT_RUN.reset(token)

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.StorageDriverStoreContext:
        return self.inner.get_external_store_context(command_info)

    def __getattr__(self, name: str) -> Any:
        # Engine-specific extras (the hosting layer's context snapshots, ...) pass through.
        return getattr(self.inner, name)
