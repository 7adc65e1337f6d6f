"""Nexus operations: the schedule command, the handle (returned once started, awaited for its
result), the resolution of its start and of its result, and the context of its command."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar, cast

import temporalio.bridge.proto.nexus as nexus_proto
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.converter
import temporalio.nexus.system
import temporalio.workflow
from temporalio.worker import StartNexusOperationInput
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import encoding
from temporay.runtime.engine.operations.awaiting import (
    await_temporal_operation,
    fail_started_or_not,
)
from temporay.runtime.engine.operations.host import OperationHost

OutputT = TypeVar("OutputT")


class NexusOperationHandle(temporalio.workflow.NexusOperationHandle[OutputT], Generic[OutputT]):
    """A Nexus operation: returned once started (or resolved synchronously); awaiting it waits
    for the result. Not a task itself but backed by one."""

    def __init__(
        self,
        ctx: OperationHost,
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

    def serialization_context(self) -> temporalio.converter.SerializationContext | None:
        """The context the Worker's codec uses for this operation's command (a system
        operation's own, which may be none)."""
        input = self._input
        if temporalio.nexus.system.is_system_endpoint(input.endpoint):
            return temporalio.nexus.system._get_serialization_context(
                input.service, input.operation_name, input.input
            )
        return temporalio.converter.NexusSerializationContext(
            endpoint=input.endpoint, service=input.service, operation=input.operation_name
        )

    def resolve_start(self, job: wfact.ResolveNexusOperationStart) -> None:
        """A ResolveNexusOperationStart job: started (asynchronously: the result comes in a
        later activation; synchronously: in this same one), or failed to start."""
        if job.HasField("operation_token"):
            self.resolve_start_success(job.operation_token)
        elif job.HasField("started_sync"):
            self.resolve_start_success(None)
        elif job.HasField("failed"):
            self.resolve_failure(
                self._failure_converter.from_failure(job.failed, self._payload_converter)
            )
        else:
            raise ValueError(f"Unknown Nexus operation start status: {job}")

    def resolve(self, result: nexus_proto.NexusOperationResult) -> None:
        """A ResolveNexusOperation job: the output (a system operation's in its own context),
        or a failure, cancellation or timeout."""
        if result.HasField("completed"):
            ctx = self._ctx
            payload_converter = self._payload_converter
            input = self._input
            if temporalio.nexus.system.is_system_endpoint(input.endpoint):
                context = temporalio.nexus.system._get_serialization_context(
                    input.service, input.operation_name, input.input
                )
                if context is not None:
                    payload_converter = temporalio.nexus.system._get_payload_converter(
                        ctx.payload_converter_with_context(context),
                        ctx.failure_converter_with_context(context),
                    )
            [output] = encoding.decode_payloads(
                [result.completed],
                [input.output_type] if input.output_type else None,
                payload_converter,
                ctx.workflow_is_failure_exception,
            )
            self.resolve_success(output)
            return
        for outcome in ("failed", "cancelled", "timed_out"):
            if result.HasField(outcome):
                self.resolve_failure(
                    self._failure_converter.from_failure(
                        getattr(result, outcome), self._payload_converter
                    )
                )
                return
        raise RuntimeError("Nexus operation did not have a result")

    def resolve_start_success(self, operation_token: str | None) -> None:
        self._start_fut.set_result(operation_token)

    def resolve_success(self, result: Any) -> None:
        self._result_fut.set_result(result)

    def resolve_failure(self, err: BaseException) -> None:
        fail_started_or_not(self._start_fut, self._result_fut, err)

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
    ctx: OperationHost,
    input: StartNexusOperationInput[Any, OutputT],
    pending: dict[int, NexusOperationHandle[Any]],
) -> NexusOperationHandle[OutputT]:
    """The terminal outbound step of ``start_nexus_operation``: returns once started. The
    handle waits in ``pending`` (the run's operations by sequence number) for its start and
    then for its result."""
    env = ctx.env
    handle: NexusOperationHandle[OutputT]

    def apply_cancel(_err: asyncio.CancelledError) -> None:
        handle.apply_cancel_command(env.add_command())

    async def run_operation() -> OutputT:
        return cast(OutputT, await await_temporal_operation(env, handle._result_fut, apply_cancel))

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
    pending[handle._seq] = handle
    await await_temporal_operation(
        env, handle._start_fut, apply_cancel, reraise_on_workflow_cancellation=True
    )
    return handle


# Class names are observable (task reprs in logs and error messages): report the SDK's.
NexusOperationHandle.__name__ = NexusOperationHandle.__qualname__ = "_NexusOperationHandle"
