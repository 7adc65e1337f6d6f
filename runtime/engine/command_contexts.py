"""Serialization contexts of a run, tracked where the run lives and mirrored where the Worker is.

The Worker applies the client's payload codec per activation and asks the run's instance, on its
event loop, which serialization context belongs to each command (1-6 calls per activation). When the
run lives in another process we cannot make a remote call there, so the process hosting the run
asks its real instance right after each activation, for exactly the commands that activation
touched, and ships the answers back with the completion; the Worker side answers from that mirror.

The instance is asked rather than the answers being derived from commands on purpose: the SDK's
activity context has ``activity_id=None`` when the user set none while the command carries
``str(seq)``, and only the instance knows which commands are still pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.api.enums.v1.command_type_pb2 import CommandType
from temporalio.converter import StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import WorkflowInstance
from temporalio.worker._command_aware_visitor import CommandInfo

CommandKey = tuple[int, int]
"""(CommandType value, seq): how the Worker's command-aware codec names a command."""

_RESOLVE_JOBS: dict[str, int] = {
    "resolve_activity": CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
    "resolve_child_workflow_execution_start": CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
    "resolve_child_workflow_execution": CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
    "resolve_signal_external_workflow": CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
    "resolve_request_cancel_external_workflow": CommandType.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
    "resolve_nexus_operation_start": CommandType.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
    "resolve_nexus_operation": CommandType.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
}

_SEQ_COMMANDS: dict[str, int] = {
    "schedule_activity": CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
    "schedule_local_activity": CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
    "start_child_workflow_execution": CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
    "signal_external_workflow_execution": CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
    "schedule_nexus_operation": CommandType.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
}

_COMPLETE = (CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION, 0)


@dataclass(frozen=True)
class CommandContexts:
    """What the instance answers for one command; both ``None`` means "the defaults again"."""

    key: CommandKey
    serialization: temporalio.converter.SerializationContext | None
    store: StorageDriverStoreContext | None


@dataclass(frozen=True)
class ContextDelta:
    """What an activation changed in the mirror: the defaults (``None``: as they were) and
    per-command entries (both contexts ``None``: the command is back to the defaults)."""

    default_serialization: temporalio.converter.SerializationContext | None
    default_store: StorageDriverStoreContext | None
    commands: tuple[CommandContexts, ...]


NO_CHANGE = ContextDelta(default_serialization=None, default_store=None, commands=())
"""The delta of an activation that changed nothing the mirror holds (the usual case)."""


def touched_commands(
    activation: wfact.WorkflowActivation, completion: wfcomp.WorkflowActivationCompletion
) -> list[CommandKey]:
    """Commands whose context may have changed: resolved by the activation or issued by the completion."""
    keys: list[CommandKey] = []
    for job in activation.jobs:
        job_kind = job.WhichOneof("variant")
        if job_kind in _RESOLVE_JOBS:
            keys.append((_RESOLVE_JOBS[job_kind], getattr(job, job_kind).seq))
    if completion.HasField("successful"):
        for command in completion.successful.commands:
            command_kind = command.WhichOneof("variant")
            if command_kind in _SEQ_COMMANDS:
                keys.append((_SEQ_COMMANDS[command_kind], getattr(command, command_kind).seq))
            elif command_kind == "complete_workflow_execution":
                keys.append(_COMPLETE)
    return keys


def default_contexts(
    info: temporalio.workflow.Info,
) -> tuple[temporalio.converter.WorkflowSerializationContext, StorageDriverStoreContext]:
    """What the SDK's instance answers for a run when no command is named.

    Both sides start from it: the Worker's mirror answers it before the first completion
    arrives, and the host sends the defaults only if the run's instance answers otherwise."""
    return (
        temporalio.converter.WorkflowSerializationContext(
            namespace=info.namespace, workflow_id=info.workflow_id
        ),
        StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        ),
    )


_PREDICTED = object()
"""The mirror holds the defaults ``default_contexts`` predicts from the run's Info."""


class ContextTracker:
    """What the Worker's mirror of one run already holds, kept where the run lives.

    Each completion then carries only what the mirror does not know yet: the defaults when they
    differ from what it holds (for the SDK's engines and ours, never: both sides predict them
    alike), and a command's entry when its contexts differ from the defaults or used to. A new
    run's first completion is usually empty, which spares encoding and decoding it on two cold
    processes."""

    __slots__ = ("_info", "_overridden", "_ser", "_store")

    def __init__(self, info: temporalio.workflow.Info) -> None:
        self._info = info
        # What the mirror holds: the defaults predicted from Info (_PREDICTED, compared by
        # field rather than built: a new run's creation is on the cold path) until the
        # instance's own answer is seen, then that answer itself, so that later activations
        # find the very same object and compare by identity.
        self._ser: object = _PREDICTED
        self._store: object = _PREDICTED
        self._overridden: set[CommandKey] = set()

    def capture(self, instance: WorkflowInstance, keys: Iterable[CommandKey]) -> ContextDelta:
        """Ask the live instance for the defaults and the contexts of ``keys``."""
        default_ser = instance.get_serialization_context(None)
        default_store = instance.get_external_store_context(None)
        send_ser = send_store = None
        # A default of None cannot be told from "unchanged" on the wire: the mirror keeps its own.
        if default_ser is not self._ser and default_ser is not None:
            if not self._holds_ser(default_ser):
                send_ser = default_ser
            self._ser = default_ser
        if default_store is not self._store:
            if not self._holds_store(default_store):
                send_store = default_store
            self._store = default_store
        commands: list[CommandContexts] = []
        seen: set[CommandKey] = set()
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            info = CommandInfo(command_type=key[0], command_seq=key[1])  # type: ignore[arg-type]
            ser = instance.get_serialization_context(info)
            store = instance.get_external_store_context(info)
            # Equal when the same object, else only if of the same type (skips __eq__ calls).
            own_ser = (
                None
                if ser is default_ser or (type(ser) is type(default_ser) and ser == default_ser)
                else ser
            )
            own_store = (
                None
                if store is default_store
                or (type(store) is type(default_store) and store == default_store)
                else store
            )
            if own_ser is None and own_store is None:
                if key not in self._overridden:
                    continue  # the mirror answers the defaults for it already
                self._overridden.discard(key)
            else:
                self._overridden.add(key)
            commands.append(CommandContexts(key=key, serialization=own_ser, store=own_store))
        if not commands and send_ser is None and send_store is None:
            return NO_CHANGE
        return ContextDelta(
            default_serialization=send_ser, default_store=send_store, commands=tuple(commands)
        )

    def _holds_ser(self, ser: temporalio.converter.SerializationContext) -> bool:
        """Whether the mirror's default serialization context equals ``ser``."""
        if self._ser is not _PREDICTED:
            return ser == self._ser
        info = self._info
        return (
            type(ser) is temporalio.converter.WorkflowSerializationContext
            and ser.namespace == info.namespace
            and ser.workflow_id == info.workflow_id
        )

    def _holds_store(self, store: StorageDriverStoreContext | None) -> bool:
        """Whether the mirror's default store context equals ``store``."""
        if self._store is not _PREDICTED:
            return store == self._store
        if type(store) is not StorageDriverStoreContext:
            return False
        target, info = store.target, self._info
        return (
            type(target) is StorageDriverWorkflowInfo
            and target.id == info.workflow_id
            and target.run_id == info.run_id
            and target.type == info.workflow_type
            and target.namespace == info.namespace
        )
