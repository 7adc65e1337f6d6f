"""Handles for the operations a workflow starts: activities, child workflows, external workflows,
Nexus operations, and the continue-as-new request.

Each operation is a command now and a result later (a resolve job, matched by sequence number).
The handles are asyncio tasks (as the SDK's public handle types require) whose coroutine waits on
the result future behind a shield, so a task cancellation becomes a Temporal cancel command and
the result decides the outcome. The number of tasks and awaits per operation is exactly the SDK's:
an extra hop through the loop would reorder commands between concurrent coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, cast

import temporalio.api.enums.v1
import temporalio.bridge.proto.activity_result as activity_result
import temporalio.bridge.proto.child_workflow as child_workflow
import temporalio.bridge.proto.nexus as nexus_proto
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.common
import temporalio.converter
import temporalio.nexus.system
import temporalio.workflow
from temporalio.worker import (
    ContinueAsNewInput,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    StartNexusOperationInput,
)
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine.flags import LogicFlag, record_completed_cancellation

if TYPE_CHECKING:
    from temporay.runtime.engine.context import WorkflowContext

_T = TypeVar("_T")
OutputT = TypeVar("OutputT")


async def shield_await(fut: asyncio.Future[_T]) -> _T:
    """Await ``fut`` without cancelling it when the awaiting task is cancelled.

    ``asyncio.shield`` would do, but logs a spurious "exception in shielded future" on 3.11+.
    """
    await asyncio.wait([fut])
    return fut.result()


async def await_temporal_operation(
    ctx: WorkflowContext,
    fut: asyncio.Future[_T],
    apply_cancel: Callable[[asyncio.CancelledError], None],
    *,
    completed_cancellation_flag: LogicFlag | None = None,
    reraise_on_workflow_cancellation: bool = False,
) -> _T:
    """Wait for an operation's result; a task cancellation issues the cancel command instead.

    The operation's own result (often a cancellation failure from the server) then decides
    what the awaiting code sees.
    """
    env = ctx.env
    while True:
        try:
            return await shield_await(fut)
        except asyncio.CancelledError as err:
            if fut.done():
                # Retrying the shield now would return the result and swallow the cancellation.
                if env.single_batch:
                    raise
                if record_completed_cancellation(env, completed_cancellation_flag):
                    raise
            apply_cancel(err)
            # Clear the task's cancellation count so the next await does not re-raise at once.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if reraise_on_workflow_cancellation and (env.cancel_reason is not None or env.deleting):
                raise


# --- activities --------------------------------------------------------------------------------


class ActivityBackoff(BaseException):
    """A local activity asks to be retried after a timer (raised into its handle's coroutine)."""

    def __init__(self, backoff: activity_result.DoBackoff) -> None:
        super().__init__("Backoff")
        self.backoff = backoff


def activity_serialization_context(
    ctx: WorkflowContext, input: StartActivityInput | StartLocalActivityInput
) -> temporalio.converter.ActivitySerializationContext:
    info = ctx.info
    is_remote = isinstance(input, StartActivityInput)
    return temporalio.converter.ActivitySerializationContext(
        namespace=info.namespace,
        workflow_id=info.workflow_id,
        workflow_type=info.workflow_type,
        activity_type=input.activity,
        activity_id=input.activity_id,
        activity_task_queue=(
            (input.task_queue or info.task_queue) if is_remote else info.task_queue  # type: ignore[union-attr]
        ),
        is_local=not is_remote,
    )


class ActivityHandle(temporalio.workflow.ActivityHandle[Any]):
    """An activity (remote or local): a task running ``run`` over the result future."""

    def __init__(
        self,
        ctx: WorkflowContext,
        input: StartActivityInput | StartLocalActivityInput,
        fn: Coroutine[Any, Any, Any],
    ) -> None:
        super().__init__(fn, loop=ctx.env)
        self._ctx = ctx
        self._seq = ctx.env.next_seq("activity")
        self._input = input
        self._result_fut: asyncio.Future[Any] = ctx.env.create_future()
        self._started = False
        self._cancel_command_seq: int | None = None
        ctx.env.register_task(self, name=f"activity: {input.activity}")
        self._payload_converter = ctx.payload_converter_with_context(
            activity_serialization_context(ctx, input)
        )
        self._event_group_markers = _capture_event_group_markers(input.event_groups)

    @property
    def is_local(self) -> bool:
        return isinstance(self._input, StartLocalActivityInput)

    def cancel(self, msg: Any | None = None) -> bool:
        env = self._ctx.env
        # The task still gets cancelled while evicting; only the command is skipped.
        if not env.deleting:
            env.assert_not_read_only("cancel activity handle")
            # Cancelled before its coroutine ever ran: nothing is there to trap the
            # cancellation and send the command, so send it here.
            if not self._started and not self.done():
                self.request_cancel()
        return super().cancel(msg)

    def request_cancel(self) -> None:
        env = self._ctx.env
        # While evicting, add_command must still run: the eviction error it raises is what
        # ends this handle's task.
        if self._cancel_command_seq == self._seq and not env.deleting:
            return
        self._cancel_command_seq = self._seq
        command = env.add_command()
        if self.is_local:
            command.request_cancel_local_activity.seq = self._seq
        else:
            command.request_cancel_activity.seq = self._seq
        command.event_group_markers.extend(self._event_group_markers)

    def resolve_success(self, result: Any) -> None:
        self._result_fut.set_result(result)

    def resolve_failure(self, err: BaseException) -> None:
        # Never started means cancelled before it ran: nobody awaits the future.
        if self._started:
            self._result_fut.set_exception(err)

    def resolve_backoff(self, backoff: activity_result.DoBackoff) -> None:
        # The retry is a new activity with a new seq, scheduled after a backoff timer.
        self._seq = self._ctx.env.next_seq("activity")
        self._result_fut.set_exception(ActivityBackoff(backoff))
        self._result_fut = self._ctx.env.create_future()

    def apply_schedule_command(self, backoff: activity_result.DoBackoff | None = None) -> None:
        input = self._input
        # Convert first: a conversion error must not leave half a command behind.
        payloads = self._payload_converter.to_payloads(input.args) if input.args else None
        command = self._ctx.env.add_command()
        v: wfcmd.ScheduleActivity | wfcmd.ScheduleLocalActivity = (
            command.schedule_local_activity if self.is_local else command.schedule_activity
        )
        v.seq = self._seq
        v.activity_id = input.activity_id or str(self._seq)
        v.activity_type = input.activity
        if input.headers:
            temporalio.common._apply_headers(input.headers, v.headers)
        if payloads:
            v.arguments.extend(payloads)
        if input.schedule_to_close_timeout:
            v.schedule_to_close_timeout.FromTimedelta(input.schedule_to_close_timeout)
        if input.schedule_to_start_timeout:
            v.schedule_to_start_timeout.FromTimedelta(input.schedule_to_start_timeout)
        if input.start_to_close_timeout:
            v.start_to_close_timeout.FromTimedelta(input.start_to_close_timeout)
        if input.retry_policy:
            input.retry_policy.apply_to_proto(v.retry_policy)
        if input.summary:
            command.user_metadata.summary.CopyFrom(
                self._payload_converter.to_payload(input.summary)
            )
        command.event_group_markers.extend(self._event_group_markers)
        v.cancellation_type = cast(
            "wfcmd.ActivityCancellationType.ValueType", int(input.cancellation_type)
        )
        if isinstance(input, StartActivityInput):
            remote = command.schedule_activity
            remote.task_queue = input.task_queue or self._ctx.info.task_queue
            if input.heartbeat_timeout:
                remote.heartbeat_timeout.FromTimedelta(input.heartbeat_timeout)
            remote.do_not_eagerly_execute = input.disable_eager_execution
            if input.versioning_intent:
                remote.versioning_intent = input.versioning_intent._to_proto()
            if input.priority:
                remote.priority.CopyFrom(input.priority._to_proto())
        else:
            local = command.schedule_local_activity
            if input.local_retry_threshold:
                local.local_retry_threshold.FromTimedelta(input.local_retry_threshold)
            if backoff:
                local.attempt = backoff.attempt
                local.original_schedule_time.CopyFrom(backoff.original_schedule_time)


def schedule_activity(
    ctx: WorkflowContext, input: StartActivityInput | StartLocalActivityInput
) -> ActivityHandle:
    """The terminal outbound step of ``start_activity`` and ``start_local_activity``."""
    if not input.start_to_close_timeout and not input.schedule_to_close_timeout:
        raise ValueError("Activity must have start_to_close_timeout or schedule_to_close_timeout")
    handle: ActivityHandle

    async def run_activity() -> Any:
        handle._started = True
        while True:
            try:
                return await await_temporal_operation(
                    ctx,
                    handle._result_fut,
                    lambda _err: handle.request_cancel(),
                    completed_cancellation_flag=LogicFlag.RAISE_ON_CANCELLING_COMPLETED_ACTIVITY,
                )
            except ActivityBackoff as err:
                # The backoff is a plain timer, cancellable like any other.
                await ctx.workflow_sleep(
                    err.backoff.backoff_duration.ToTimedelta().total_seconds(),
                    event_groups=input.event_groups,
                )
                handle.apply_schedule_command(err.backoff)
                ctx.env.pending_activities[handle._seq] = handle

    handle = ActivityHandle(ctx, input, run_activity())
    handle.apply_schedule_command()
    ctx.env.pending_activities[handle._seq] = handle
    return handle


# --- child workflows ---------------------------------------------------------------------------


class ChildWorkflowHandle(temporalio.workflow.ChildWorkflowHandle[Any, Any]):
    """A child workflow: start is awaited before the handle is returned, then the result."""

    def __init__(
        self,
        ctx: WorkflowContext,
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

    def resolve_start_success(self, run_id: str) -> None:
        self._first_execution_run_id = run_id
        self._start_fut.set_result(None)

    def resolve_success(self, result: Any) -> None:
        self._result_fut.set_result(result)

    def resolve_failure(self, err: BaseException) -> None:
        if self._start_fut.done():
            self._result_fut.set_exception(err)
        else:
            self._start_fut.set_exception(err)
            # Resolve the result too, or asyncio warns about a future nobody retrieved.
            self._result_fut.set_result(None)

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
            encode_search_attributes(input.search_attributes, v.search_attributes.indexed_fields)
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
    ctx: WorkflowContext, input: StartChildWorkflowInput
) -> ChildWorkflowHandle:
    """The terminal outbound step of ``start_child_workflow``: returns once the child started."""
    env = ctx.env
    handle: ChildWorkflowHandle

    def apply_cancel(err: asyncio.CancelledError) -> None:
        command = env.add_command()
        # Task.cancel(msg) forwards msg as the cancellation reason.
        reason = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        handle.apply_cancel_command(command, reason=reason)

    async def run_child() -> Any:
        return await await_temporal_operation(ctx, handle._result_fut, apply_cancel)

    handle = ChildWorkflowHandle(ctx, env.next_seq("child_workflow"), input, run_child())
    handle.apply_start_command()
    env.pending_children[handle._seq] = handle
    await await_temporal_operation(
        ctx, handle._start_fut, apply_cancel, reraise_on_workflow_cancellation=True
    )
    return handle


# --- signals and cancels to other workflows ----------------------------------------------------


async def _send_signal(ctx: WorkflowContext, command: wfcmd.WorkflowCommand) -> None:
    env = ctx.env
    seq = env.next_seq("external_signal")
    done: asyncio.Future[None] = env.create_future()
    signal = command.signal_external_workflow_execution
    signal.seq = seq
    target = signal.child_workflow_id or signal.workflow_execution.workflow_id
    env.pending_external_signals[seq] = (done, target)

    def apply_cancel(_err: asyncio.CancelledError) -> None:
        # A core-only command: it only withdraws a signal not yet sent to the server, so it
        # carries no event groups or metadata.
        env.add_command().cancel_signal_workflow.seq = seq

    await await_temporal_operation(ctx, done, apply_cancel)


async def signal_child_workflow(ctx: WorkflowContext, input: SignalChildWorkflowInput) -> None:
    converter = ctx.payload_converter_with_context(
        temporalio.converter.WorkflowSerializationContext(
            namespace=ctx.info.namespace, workflow_id=input.child_workflow_id
        )
    )
    payloads = converter.to_payloads(input.args) if input.args else None
    markers = _capture_event_group_markers(input.event_groups)
    command = ctx.env.add_command()
    v = command.signal_external_workflow_execution
    v.child_workflow_id = input.child_workflow_id
    v.signal_name = input.signal
    if payloads:
        v.args.extend(payloads)
    if input.headers:
        temporalio.common._apply_headers(input.headers, v.headers)
    command.event_group_markers.extend(markers)
    await _send_signal(ctx, command)


async def signal_external_workflow(
    ctx: WorkflowContext, input: SignalExternalWorkflowInput
) -> None:
    converter = ctx.payload_converter_with_context(
        temporalio.converter.WorkflowSerializationContext(
            namespace=input.namespace, workflow_id=input.workflow_id
        )
    )
    payloads = converter.to_payloads(input.args) if input.args else None
    markers = _capture_event_group_markers(input.event_groups)
    command = ctx.env.add_command()
    v = command.signal_external_workflow_execution
    v.workflow_execution.namespace = input.namespace
    v.workflow_execution.workflow_id = input.workflow_id
    if input.workflow_run_id:
        v.workflow_execution.run_id = input.workflow_run_id
    v.signal_name = input.signal
    if payloads:
        v.args.extend(payloads)
    if input.headers:
        temporalio.common._apply_headers(input.headers, v.headers)
    command.event_group_markers.extend(markers)
    await _send_signal(ctx, command)


class ExternalWorkflowHandle(temporalio.workflow.ExternalWorkflowHandle[Any]):
    """Another workflow, by id: signal it or ask it to cancel."""

    def __init__(self, ctx: WorkflowContext, id: str, run_id: str | None) -> None:
        super().__init__()
        self._ctx = ctx
        self._id = id
        self._run_id = run_id

    @property
    def id(self) -> str:
        return self._id

    @property
    def run_id(self) -> str | None:
        return self._run_id

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = temporalio.common._arg_unset,
        *,
        args: Sequence[Any] = [],
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        self._ctx.env.assert_not_read_only("signal external handle")
        await self._ctx.outbound.signal_external_workflow(
            SignalExternalWorkflowInput(
                signal=temporalio.workflow._SignalDefinition.must_name_from_fn_or_str(signal),
                args=temporalio.common._arg_or_args(arg, args),
                namespace=self._ctx.info.namespace,
                workflow_id=self._id,
                workflow_run_id=self._run_id,
                headers={},
                event_groups=event_groups,
            )
        )

    async def cancel(
        self,
        *,
        reason: str = "",
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        env = self._ctx.env
        env.assert_not_read_only("cancel external handle")
        markers = _capture_event_group_markers(event_groups)
        command = env.add_command()
        command.event_group_markers.extend(markers)
        v = command.request_cancel_external_workflow_execution
        v.workflow_execution.namespace = self._ctx.info.namespace
        v.workflow_execution.workflow_id = self._id
        if self._run_id:
            v.workflow_execution.run_id = self._run_id
        v.reason = reason
        seq = env.next_seq("external_cancel")
        done: asyncio.Future[None] = env.create_future()
        v.seq = seq
        env.pending_external_cancels[seq] = (done, self._id)
        # A cancel request cannot itself be cancelled: wait plainly.
        await done


# --- Nexus operations --------------------------------------------------------------------------


class NexusOperationHandle(temporalio.workflow.NexusOperationHandle[OutputT], Generic[OutputT]):
    """A Nexus operation: returned once started (or resolved synchronously); awaiting it waits
    for the result. Not a task itself but backed by one."""

    def __init__(
        self,
        ctx: WorkflowContext,
        seq: int,
        input: StartNexusOperationInput[Any, OutputT],
        fn: Coroutine[Any, Any, OutputT],
        payload_converter: temporalio.converter.PayloadConverter,
        failure_converter: temporalio.converter.FailureConverter,
    ) -> None:
        self._ctx = ctx
        self._seq = seq
        self._input = input
        self._task = ctx.env.create_task(fn, name=f"nexus: {input.service}/{input.operation_name}")
        self._start_fut: asyncio.Future[str | None] = ctx.env.create_future()
        self._result_fut: asyncio.Future[OutputT | None] = ctx.env.create_future()
        self._payload_converter = payload_converter
        self._failure_converter = failure_converter
        self._event_group_markers = _capture_event_group_markers(input.event_groups)

    @property
    def operation_token(self) -> str | None:
        try:
            return self._start_fut.result()
        except BaseException:
            return None

    def __await__(self) -> Generator[Any, Any, OutputT]:
        return self._task.__await__()

    def cancel(self) -> bool:
        return self._task.cancel()

    def resolve_start_success(self, operation_token: str | None) -> None:
        self._start_fut.set_result(operation_token)

    def resolve_success(self, result: Any) -> None:
        self._result_fut.set_result(result)

    def resolve_failure(self, err: BaseException) -> None:
        if self._start_fut.done():
            self._result_fut.set_exception(err)
        else:
            self._start_fut.set_exception(err)
            self._result_fut.set_result(None)

    def apply_schedule_command(self) -> None:
        input = self._input
        payload = self._payload_converter.to_payload(input.input)
        command = self._ctx.env.add_command()
        v = command.schedule_nexus_operation
        v.seq = self._seq
        v.endpoint = input.endpoint
        v.service = input.service
        v.operation = input.operation_name
        v.input.CopyFrom(payload)
        if input.schedule_to_close_timeout is not None:
            v.schedule_to_close_timeout.FromTimedelta(input.schedule_to_close_timeout)
        if input.schedule_to_start_timeout is not None:
            v.schedule_to_start_timeout.FromTimedelta(input.schedule_to_start_timeout)
        if input.start_to_close_timeout is not None:
            v.start_to_close_timeout.FromTimedelta(input.start_to_close_timeout)
        v.cancellation_type = cast(
            "nexus_proto.NexusOperationCancellationType.ValueType", int(input.cancellation_type)
        )
        if input.headers:
            for key, value in input.headers.items():
                v.nexus_header[key] = value
        if input.summary:
            command.user_metadata.summary.CopyFrom(
                self._payload_converter.to_payload(input.summary)
            )
        command.event_group_markers.extend(self._event_group_markers)

    def apply_cancel_command(self, command: wfcmd.WorkflowCommand) -> None:
        command.request_cancel_nexus_operation.seq = self._seq
        command.event_group_markers.extend(self._event_group_markers)


async def start_nexus_operation(
    ctx: WorkflowContext, input: StartNexusOperationInput[Any, OutputT]
) -> NexusOperationHandle[OutputT]:
    """The terminal outbound step of ``start_nexus_operation``: returns once started."""
    env = ctx.env
    handle: NexusOperationHandle[OutputT]

    def apply_cancel(_err: asyncio.CancelledError) -> None:
        handle.apply_cancel_command(env.add_command())

    async def run_operation() -> OutputT:
        return cast(OutputT, await await_temporal_operation(ctx, handle._result_fut, apply_cancel))

    payload_converter: temporalio.converter.PayloadConverter
    failure_converter: temporalio.converter.FailureConverter
    if temporalio.nexus.system.is_system_endpoint(input.endpoint):
        context = temporalio.nexus.system._get_serialization_context(
            input.service, input.operation_name, input.input
        )
        user_payload = ctx.context_free_payload_converter
        user_failure = ctx.context_free_failure_converter
        if context is not None:
            user_payload = ctx.payload_converter_with_context(context)
            user_failure = ctx.failure_converter_with_context(context)
        payload_converter = temporalio.nexus.system._get_payload_converter(
            user_payload, user_failure
        )
        failure_converter = user_failure
    else:
        nexus_context = temporalio.converter.NexusSerializationContext(
            endpoint=input.endpoint, service=input.service, operation=input.operation_name
        )
        payload_converter = ctx.payload_converter_with_context(nexus_context)
        failure_converter = ctx.failure_converter_with_context(nexus_context)
    handle = NexusOperationHandle(
        ctx,
        env.next_seq("nexus_operation"),
        input,
        run_operation(),
        payload_converter,
        failure_converter,
    )
    handle.apply_schedule_command()
    env.pending_nexus[handle._seq] = handle
    await await_temporal_operation(
        ctx, handle._start_fut, apply_cancel, reraise_on_workflow_cancellation=True
    )
    return handle


# --- continue-as-new ---------------------------------------------------------------------------


class ContinueAsNewRequest(temporalio.workflow.ContinueAsNewError):
    """Raised by ``workflow.continue_as_new``; the top-level function turns it into the command."""

    def __init__(self, ctx: WorkflowContext, input: ContinueAsNewInput) -> None:
        super().__init__("Continue as new")
        self._ctx = ctx
        self._input = input
        self._event_group_markers = _capture_event_group_markers(input.event_groups)

    def apply_command(self) -> None:
        input = self._input
        converter = self._ctx.workflow_payload_converter()
        payloads = converter.to_payloads(input.args) if input.args else None
        memo = (
            {key: converter.to_payloads([value])[0] for key, value in input.memo.items()}
            if input.memo
            else None
        )
        command = self._ctx.env.add_command()
        v = command.continue_as_new_workflow_execution
        v.SetInParent()
        if input.workflow:
            v.workflow_type = input.workflow
        if input.task_queue:
            v.task_queue = input.task_queue
        if payloads:
            v.arguments.extend(payloads)
        if input.run_timeout:
            v.workflow_run_timeout.FromTimedelta(input.run_timeout)
        if input.task_timeout:
            v.workflow_task_timeout.FromTimedelta(input.task_timeout)
        if input.backoff_start_interval:
            v.backoff_start_interval.FromTimedelta(input.backoff_start_interval)
        if input.headers:
            temporalio.common._apply_headers(input.headers, v.headers)
        if input.retry_policy:
            input.retry_policy.apply_to_proto(v.retry_policy)
        if memo:
            for key, payload in memo.items():
                v.memo[key].CopyFrom(payload)
        if input.search_attributes:
            encode_search_attributes(input.search_attributes, v.search_attributes.indexed_fields)
        if input.versioning_intent:
            v.versioning_intent = input.versioning_intent._to_proto()
        if input.initial_versioning_behavior:
            v.initial_versioning_behavior = cast(
                "temporalio.api.enums.v1.ContinueAsNewVersioningBehavior.ValueType",
                int(input.initial_versioning_behavior),
            )
        command.event_group_markers.extend(self._event_group_markers)


def continue_as_new(ctx: WorkflowContext, input: ContinueAsNewInput) -> NoReturn:
    raise ContinueAsNewRequest(ctx, input)


def encode_search_attributes(
    attributes: temporalio.common.SearchAttributes | temporalio.common.TypedSearchAttributes,
    payloads: Any,
) -> None:
    """Write search attributes (typed or the deprecated untyped mapping) into a proto map."""
    if isinstance(attributes, temporalio.common.TypedSearchAttributes):
        for pair in attributes:
            payloads[pair.key.name].CopyFrom(
                temporalio.converter.encode_typed_search_attribute_value(pair.key, pair.value)
            )
    else:
        for key, values in attributes.items():
            payloads[key].CopyFrom(temporalio.converter.encode_search_attribute_values(values))


# Class names are observable (``type(err).__name__``, task reprs in logs and error messages):
# report the names the SDK's own classes have.
for _cls, _sdk_name in (
    (ActivityHandle, "_ActivityHandle"),
    (ActivityBackoff, "_ActivityDoBackoffError"),
    (ChildWorkflowHandle, "_ChildWorkflowHandle"),
    (ExternalWorkflowHandle, "_ExternalWorkflowHandle"),
    (NexusOperationHandle, "_NexusOperationHandle"),
    (ContinueAsNewRequest, "_ContinueAsNewError"),
):
    _cls.__name__ = _cls.__qualname__ = _sdk_name
