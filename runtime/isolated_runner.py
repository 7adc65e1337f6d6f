"""Wrapping any engine so that each run gets its own module state, shims and I/O restrictions.

The engine (the SDK's own workflow instance, or temporay's) knows nothing of isolation: it is
handed a ``_Definition`` re-derived from the run's classes, failure exception types remapped to
them, and every activation runs with the run's :data:`CURRENT_RUN` set, which is all the shims,
the import hook and the audit hook look at.
"""

from __future__ import annotations

import logging
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

from temporay.runtime import frozen
from temporay.runtime.isolation.io import install_restrictions
from temporay.runtime.isolation.options import IsolationOptions
from temporay.runtime.isolation.plan import ModulePlan, UnsupportedWorkflowModuleError
from temporay.runtime.isolation.run_state import CURRENT_RUN, RunState
from temporay.runtime.prepared import PreparedInstance, prepare_instance
from temporay.runtime.run_info import RunDetails, timestamp_ns

logger = logging.getLogger(__name__)

__all__ = ["IsolatedInstance", "IsolatedWorkflowRunner"]


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
        self._plans: dict[type, ModulePlan | None] = {}
        self._plans_lock = threading.Lock()
        if self.options.restrict_io:
            install_restrictions()

    def plan(self, cls: type) -> ModulePlan | None:
        """The (cached) plan for a workflow class; built on first use."""
        plan = self._plans.get(cls)
        if plan is None:
            with self._plans_lock:
                plan = self._plans.get(cls)
                if plan is None:
                    plan = self._plans[cls] = self._build_plan(cls)
        return plan

    def _build_plan(self, cls: type) -> ModulePlan | None:
        """A plan, or ``None`` (runs share the class's modules) when analysis itself fails:
        isolation must never be the reason a valid workflow cannot run."""
        try:
            return ModulePlan(cls, self.options, shims=self.shims)
        except UnsupportedWorkflowModuleError:
            raise  # the workflow's own shape, which the error explains
        except Exception as err:
            logger.warning(
                "temporay isolation could not analyse workflow %s (%s: %s); its runs share "
                "the module's state instead of getting copies of it, as with isolation=False",
                cls.__qualname__,
                type(err).__name__,
                err,
            )
            return None

    def _new_state(self) -> RunState:
        """A run's state before its run is known: ``_PreparedIsolated.bind`` sets its seed and ID."""
        return RunState(
            0,
            run_id="",
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
        return self.prepare_instance(det).bind(RunDetails.of(det))

    def prepare_instance(self, det: WorkflowInstanceDetails) -> PreparedInstance:
        """The run's module copies and the engine's instance, before the run is known
        (``runtime/prepared.py``); ``create_instance`` makes every instance this way."""
        if not det.defn.sandboxed:
            # @workflow.defn(sandboxed=False): the author asked for no sandbox at all.
            return prepare_instance(self.engine, det)
        plan = self.plan(det.defn.cls) if self.isolation else None
        if plan is not None:
            # The module copies need nothing of the run.
            state = self._new_state()
            made = plan.instantiate(
                state, det.worker_level_failure_exception_types
            )
            det = frozen.replace(
                det,
                defn=made.defn,
                worker_level_failure_exception_types=made.failure_exception_types,
            )
        else:
            state = self._new_state()
            module = sys.modules.get(det.defn.cls.__module__)
            if module is not None:
                state.code_globals = frozenset({id(module.__dict__)})
        token = CURRENT_RUN.set(state)
        try:
            inner = prepare_instance(self.engine, det)
        finally:
            CURRENT_RUN.reset(token)
        return _PreparedIsolated(inner, state)


class _PreparedIsolated:
    """An engine's prepared instance and the run state (module copies) it was made in."""

    __slots__ = ("_inner", "_state")

    def __init__(self, inner: PreparedInstance, state: RunState) -> None:
        self._inner = inner
        self._state = state

    def bind(self, run: RunDetails) -> WorkflowInstance:
        state = self._state
        state.reseed(run.randomness_seed)
        state.run_id = run.info.run_id
        token = CURRENT_RUN.set(state)
        try:
            instance = self._inner.bind(run)
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
        state.time_ns = timestamp_ns(act.timestamp)
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
