"""Activities, remote and local: the schedule command, the handle's task, its resolution (a
result, a failure, a cancellation, or a local activity's backoff before its retry)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

import temporalio.bridge.proto.activity_result as activity_result
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.worker import StartActivityInput, StartLocalActivityInput
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import encoding
from temporay.runtime.engine.flags import LogicFlag
from temporay.runtime.engine.operations.awaiting import await_temporal_operation
from temporay.runtime.engine.operations.host import OperationHost


class ActivityBackoff(BaseException):
    """A local activity asks to be retried after a timer (raised into its handle's coroutine)."""

    def __init__(self, backoff: activity_result.DoBackoff) -> None:
        super().__init__("Backoff")
        self.backoff = backoff


def activity_serialization_context(
    ctx: OperationHost, input: StartActivityInput | StartLocalActivityInput
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
        ctx: OperationHost,
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

    def serialization_context(self) -> temporalio.converter.ActivitySerializationContext:
        """The context the Worker's codec uses for this activity's command."""
        return activity_serialization_context(self._ctx, self._input)

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

    def resolve(self, result: activity_result.ActivityResolution) -> None:
        """A ResolveActivity job: decode core's answer in the activity's own context."""
        ctx = self._ctx
        context = activity_serialization_context(ctx, self._input)
        payload_converter = ctx.payload_converter_with_context(context)
        failure_converter = ctx.failure_converter_with_context(context)
        if result.HasField("completed"):
            value: Any = None
            if result.completed.HasField("result"):
                ret_types = [self._input.ret_type] if self._input.ret_type else None
                value = encoding.decode_payloads(
                    [result.completed.result],
                    ret_types,
                    payload_converter,
                    ctx.workflow_is_failure_exception,
                )[0]
            self.resolve_success(value)
        elif result.HasField("failed"):
            self.resolve_failure(
                failure_converter.from_failure(result.failed.failure, payload_converter)
            )
        elif result.HasField("cancelled"):
            self.resolve_failure(
                failure_converter.from_failure(result.cancelled.failure, payload_converter)
            )
        elif result.HasField("backoff"):
            self.resolve_backoff(result.backoff)
        else:
            raise RuntimeError("Activity did not have result")

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
    ctx: OperationHost,
    input: StartActivityInput | StartLocalActivityInput,
    pending: dict[int, ActivityHandle],
) -> ActivityHandle:
    """The terminal outbound step of ``start_activity`` and ``start_local_activity``; the handle
    waits in ``pending`` (the run's activities by sequence number) for its resolution."""
    if not input.start_to_close_timeout and not input.schedule_to_close_timeout:
        raise ValueError("Activity must have start_to_close_timeout or schedule_to_close_timeout")
    handle: ActivityHandle

    async def run_activity() -> Any:
        handle._started = True
        while True:
            try:
                return await await_temporal_operation(
                    ctx.env,
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
                pending[handle._seq] = handle

    handle = ActivityHandle(ctx, input, run_activity())
    handle.apply_schedule_command()
    pending[handle._seq] = handle
    return handle


# Class names are observable (``type(err).__name__``, task reprs in logs and error messages):
# report the names the SDK's own classes have.
ActivityHandle.__name__ = ActivityHandle.__qualname__ = "_ActivityHandle"
ActivityBackoff.__name__ = ActivityBackoff.__qualname__ = "_ActivityDoBackoffError"
