"""Child workflows: the start command, the handle (started first, then its result), the
resolution of its start and of its result, and the contexts of its commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

import temporalio.api.enums.v1
import temporalio.bridge.proto.child_workflow as child_workflow
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.converter import StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import SignalChildWorkflowInput, StartChildWorkflowInput
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import encoding
from temporay.runtime.engine.operations.awaiting import (
    await_temporal_operation,
    fail_started_or_not,
)
from temporay.runtime.engine.operations.host import OperationHost


class ChildWorkflowHandle(temporalio.workflow.ChildWorkflowHandle[Any, Any]):
    """A child workflow: start is awaited before the handle is returned, then the result."""

    def __init__(
        self,
        ctx: OperationHost,
        seq: int,
        input: StartChildWorkflowInput,
        fn: Coroutine[Any, Any, Any],
    ) -> None:
        super().__init__(fn, loop=ctx.env)
        self._ctx = ctx
        self._seq = seq
        self._input = input
        self._start_fut: asyncio.Future[None] = ctx.env.create_future()
        self._result_fut: asyncio.Future[Any] = ctx.env.create_future()
        self._first_execution_run_id = "<unknown>"
        ctx.env.register_task(self, name=f"child: {input.workflow}")
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=ctx.info.namespace, workflow_id=input.id
        )
        self._payload_converter = ctx.payload_converter_with_context(context)
        self._failure_converter = ctx.failure_converter_with_context(context)
        self._event_group_markers = _capture_event_group_markers(input.event_groups)

    @property
    def id(self) -> str:
        return self._input.id

    @property
    def first_execution_run_id(self) -> str | None:
        return self._first_execution_run_id

    def serialization_context(self) -> temporalio.converter.WorkflowSerializationContext:
        """The context the Worker's codec uses for this child's commands."""
        return temporalio.converter.WorkflowSerializationContext(
            namespace=self._ctx.info.namespace, workflow_id=self._input.id
        )

    def store_context(self) -> StorageDriverStoreContext:
        """Where this child's start payloads are stored: with the child."""
        return StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=self._input.id, type=self._input.workflow, namespace=self._ctx.info.namespace
            )
        )

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = temporalio.common._arg_unset,
        *,
        args: Sequence[Any] = [],
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        self._ctx.env.assert_not_read_only("signal child handle")
        await self._ctx.outbound.signal_child_workflow(
            SignalChildWorkflowInput(
                signal=temporalio.workflow._SignalDefinition.must_name_from_fn_or_str(signal),
                args=temporalio.common._arg_or_args(arg, args),
                child_workflow_id=self._input.id,
                headers={},
                event_groups=event_groups,
            )
        )

    def resolve_start(self, job: wfact.ResolveChildWorkflowExecutionStart) -> None:
        """A ResolveChildWorkflowExecutionStart job: started (the handle then waits for the
        result), or failed to start, or cancelled before it started."""
        if job.HasField("succeeded"):
            self.resolve_start_success(job.succeeded.run_id)
        elif job.HasField("failed"):
            cause = job.failed.cause
            causes = child_workflow.StartChildWorkflowExecutionFailedCause
            if cause == causes.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS:
                self.resolve_failure(
                    temporalio.exceptions.WorkflowAlreadyStartedError(
                        job.failed.workflow_id, job.failed.workflow_type
                    )
                )
            elif (
                cause
                == causes.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_INVALID_VERSIONING_OVERRIDE
            ):
                self.resolve_failure(temporalio.exceptions.InvalidVersioningOverrideError())
            else:
                self.resolve_failure(RuntimeError(f"Unknown child start fail cause: {cause}"))
        elif job.HasField("cancelled"):
            self.resolve_failure(
                self._failure_converter.from_failure(job.cancelled.failure, self._payload_converter)
            )
        else:
            raise RuntimeError("Child workflow start did not have a known status")

    def resolve(self, result: child_workflow.ChildWorkflowResult) -> None:
        """A ResolveChildWorkflowExecution job: the child's result, failure or cancellation."""
        if result.HasField("completed"):
            value: Any = None
            if result.completed.HasField("result"):
                ret_types = [self._input.ret_type] if self._input.ret_type else None
                value = encoding.decode_payloads(
                    [result.completed.result],
                    ret_types,
                    self._payload_converter,
                    self._ctx.workflow_is_failure_exception,
                )[0]
            self.resolve_success(value)
        elif result.HasField("failed"):
            self.resolve_failure(
                self._failure_converter.from_failure(result.failed.failure, self._payload_converter)
            )
        elif result.HasField("cancelled"):
            self.resolve_failure(
                self._failure_converter.from_failure(
                    result.cancelled.failure, self._payload_converter
                )
            )
        else:
            raise RuntimeError("Child workflow did not have result")

    def resolve_start_success(self, run_id: str) -> None:
        self._first_execution_run_id = run_id
        self._start_fut.set_result(None)

    def resolve_success(self, result: Any) -> None:
        self._result_fut.set_result(result)

    def resolve_failure(self, err: BaseException) -> None:
        fail_started_or_not(self._start_fut, self._result_fut, err)

    def apply_start_command(self) -> None:
        input = self._input
        payloads = self._payload_converter.to_payloads(input.args) if input.args else None
        command = self._ctx.env.add_command()
        v = command.start_child_workflow_execution
        v.seq = self._seq
        v.namespace = self._ctx.info.namespace
        v.workflow_id = input.id
        v.workflow_type = input.workflow
        v.task_queue = input.task_queue or self._ctx.info.task_queue
        if payloads:
            v.input.extend(payloads)
        if input.execution_timeout:
            v.workflow_execution_timeout.FromTimedelta(input.execution_timeout)
        if input.run_timeout:
            v.workflow_run_timeout.FromTimedelta(input.run_timeout)
        if input.task_timeout:
            v.workflow_task_timeout.FromTimedelta(input.task_timeout)
        v.parent_close_policy = cast(
            "child_workflow.ParentClosePolicy.ValueType", int(input.parent_close_policy)
        )
        v.workflow_id_reuse_policy = cast(
            "temporalio.api.enums.v1.WorkflowIdReusePolicy.ValueType", int(input.id_reuse_policy)
        )
        if input.retry_policy:
            input.retry_policy.apply_to_proto(v.retry_policy)
        v.cron_schedule = input.cron_schedule
        if input.headers:
            temporalio.common._apply_headers(input.headers, v.headers)
        if input.memo:
            for key, value in input.memo.items():
                v.memo[key].CopyFrom(self._payload_converter.to_payloads([value])[0])
        if input.search_attributes:
            encoding.encode_search_attributes(
                input.search_attributes, v.search_attributes.indexed_fields
            )
        v.cancellation_type = cast(
            "child_workflow.ChildWorkflowCancellationType.ValueType", int(input.cancellation_type)
        )
        if input.versioning_intent:
            v.versioning_intent = input.versioning_intent._to_proto()
        if input.versioning_override:
            v.versioning_override.CopyFrom(input.versioning_override._to_proto())
        if input.static_summary:
            command.user_metadata.summary.CopyFrom(
                self._payload_converter.to_payload(input.static_summary)
            )
        if input.static_details:
            command.user_metadata.details.CopyFrom(
                self._payload_converter.to_payload(input.static_details)
            )
        command.event_group_markers.extend(self._event_group_markers)
        if input.priority:
            v.priority.CopyFrom(input.priority._to_proto())

    def apply_cancel_command(self, command: wfcmd.WorkflowCommand, *, reason: str = "") -> None:
        v = command.cancel_child_workflow_execution
        v.child_workflow_seq = self._seq
        v.reason = reason
        command.event_group_markers.extend(self._event_group_markers)


async def start_child_workflow(
    ctx: OperationHost, input: StartChildWorkflowInput, pending: dict[int, ChildWorkflowHandle]
) -> ChildWorkflowHandle:
    """The terminal outbound step of ``start_child_workflow``: returns once the child started.
    The handle waits in ``pending`` (the run's children by sequence number) for its start and
    then for its result."""
    env = ctx.env
    handle: ChildWorkflowHandle

    def apply_cancel(err: asyncio.CancelledError) -> None:
        command = env.add_command()
        # Task.cancel(msg) forwards msg as the cancellation reason.
        reason = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        handle.apply_cancel_command(command, reason=reason)

    async def run_child() -> Any:
        return await await_temporal_operation(env, handle._result_fut, apply_cancel)

    handle = ChildWorkflowHandle(ctx, env.next_seq("child_workflow"), input, run_child())
    handle.apply_start_command()
    pending[handle._seq] = handle
    await await_temporal_operation(
        env, handle._start_fut, apply_cancel, reraise_on_workflow_cancellation=True
    )
    return handle


# Class names are observable (task reprs in logs and error messages): report the SDK's.
ChildWorkflowHandle.__name__ = ChildWorkflowHandle.__qualname__ = "_ChildWorkflowHandle"
