"""temporay's own workflow engine as a ``temporalio.worker.WorkflowRunner``.

``TemporayWorkflowRunner`` is selected with ``engine="temporay"``; each run gets a
``TemporayWorkflowInstance`` that owns its environment (``environment.RunEnvironment``), its
``workflow._Runtime`` (``context.WorkflowContext``) and its activator. The Worker calls
``activate`` on executor threads (one activation at a time per run) and asks for serialization
contexts from its event loop; every answer is the one the SDK's own instance gives.

The runner holds no state, so it pickles by reference into other processes (Ray shards build it
there through ``engines.EngineFactory``). Nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.api.enums.v1.command_type_pb2 import CommandType
from temporalio.converter import StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import (
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker._command_aware_visitor import CommandInfo

from temporay.runtime.engine.activator import Activator
from temporay.runtime.engine.context import WorkflowContext
from temporay.runtime.engine.environment import RunEnvironment
from temporay.runtime.run_info import RunDetails


class TemporayWorkflowRunner(WorkflowRunner):
    """Creates temporay workflow instances (our runtime, not the SDK's ``_WorkflowInstanceImpl``).

    Like the SDK's ``UnsandboxedWorkflowRunner`` it runs workflow code as is; isolation and
    shims are layered around it by the hosting code.
    """

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        """Nothing to prepare: definitions are read per run."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return self.prepare_instance(det).bind(RunDetails.of(det))

    def prepare_instance(self, det: WorkflowInstanceDetails) -> TemporayWorkflowInstance:
        """An instance not bound to a run yet (``runtime/prepared.py``); ``create_instance``
        makes every instance this way, so a prepared one is made exactly as any other."""
        return TemporayWorkflowInstance(det)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        """Nothing to validate ahead of time; the types arrive with each run's details."""

    def __reduce__(self) -> tuple[type[TemporayWorkflowRunner], tuple[()]]:
        return (TemporayWorkflowRunner, ())


class TemporayWorkflowInstance(WorkflowInstance):
    """One workflow run on temporay's engine."""

    __slots__ = ("_activator", "_ctx", "_env")

    def __init__(self, det: WorkflowInstanceDetails) -> None:
        """Not bound to a run yet: ``det``'s run fields are not read (``bind``)."""
        self._env = RunEnvironment(task_name_suffix="")  # type: ignore[abstract]
        self._ctx = WorkflowContext(self._env, det)
        self._activator = Activator(self._ctx)

    def bind(self, run: RunDetails) -> TemporayWorkflowInstance:
        """Make this instance ``run``'s (once, before its first activation)."""
        info = run.info
        self._env.task_name_suffix = (
            f" (workflow: {info.workflow_type}, id: {info.workflow_id}, run: {info.run_id})"
        )
        self._ctx.bind(run)
        return self

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        return self._activator.activate(act)

    def get_info(self) -> temporalio.workflow.Info:
        return self._ctx.info

    def get_thread_id(self) -> int | None:
        """The thread of the latest activation (kept afterwards, as the SDK does)."""
        return self._env.thread_id

    @property
    def context(self) -> WorkflowContext:
        """The run's ``workflow._Runtime`` (for tools and tests)."""
        return self._ctx

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        info = self._ctx.info
        pending = self._ctx.pending
        workflow_context = self._ctx.run_serialization_context
        if command_info is None:
            return workflow_context
        kind, seq = command_info.command_type, command_info.command_seq
        if kind == CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK and seq in pending.activities:
            return pending.activities[seq].serialization_context()
        if (
            kind == CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION
            and seq in pending.children
        ):
            return pending.children[seq].serialization_context()
        if (
            kind == CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION
            and seq in pending.external_signals
        ):
            return temporalio.converter.WorkflowSerializationContext(
                namespace=info.namespace,
                workflow_id=pending.external_signals[seq].target_workflow_id,
            )
        if kind == CommandType.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION and seq in pending.nexus:
            return pending.nexus[seq].serialization_context()
        return workflow_context

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        info = self._ctx.info
        pending = self._ctx.pending
        current = self._ctx.run_store_context
        if command_info is None:
            return current
        kind, seq = command_info.command_type, command_info.command_seq
        if (
            kind == CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION
            and seq in pending.children
        ):
            return pending.children[seq].store_context()
        if (
            kind == CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION
            and seq in pending.external_signals
        ):
            return StorageDriverStoreContext(
                target=StorageDriverWorkflowInfo(
                    id=pending.external_signals[seq].target_workflow_id, namespace=info.namespace
                )
            )
        if (
            kind == CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION
            and info.parent is not None
            and info.continued_run_id is None
        ):
            # A child's result is read by its parent: store it where the parent looks.
            return StorageDriverStoreContext(
                target=StorageDriverWorkflowInfo(
                    id=info.parent.workflow_id,
                    run_id=info.parent.run_id,
                    namespace=info.parent.namespace,
                )
            )
        return current
