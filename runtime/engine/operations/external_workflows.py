"""Signals and cancellation requests to other workflows (children by id, or any workflow by
its ``ExternalWorkflowHandle``): the commands, and the requests waiting for core's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.worker import SignalChildWorkflowInput, SignalExternalWorkflowInput
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine.operations.awaiting import await_temporal_operation
from temporay.runtime.engine.operations.host import OperationHost


class ExternalRequest:
    """A signal or cancellation request sent to another workflow, until core says whether it
    was delivered; its failure is decoded in the target workflow's context."""

    __slots__ = ("_ctx", "done", "target_workflow_id")

    def __init__(self, ctx: OperationHost, target_workflow_id: str) -> None:
        self._ctx = ctx
        self.done: asyncio.Future[None] = ctx.env.create_future()
        self.target_workflow_id = target_workflow_id

    @property
    def abandoned(self) -> bool:
        """Whether its waiter gave up (a cancel request's awaiting task was cancelled, which
        cancels this future too): the request went out, and core still resolves it."""
        return self.done.cancelled()

    def resolve(
        self,
        job: wfact.ResolveSignalExternalWorkflow | wfact.ResolveRequestCancelExternalWorkflow,
    ) -> None:
        if job.HasField("failure"):
            ctx = self._ctx
            context = temporalio.converter.WorkflowSerializationContext(
                namespace=ctx.info.namespace, workflow_id=self.target_workflow_id
            )
            self.done.set_exception(
                ctx.failure_converter_with_context(context).from_failure(
                    job.failure, ctx.payload_converter_with_context(context)
                )
            )
        else:
            self.done.set_result(None)


PendingRequests = dict[int, ExternalRequest]
"""A run's signals (or its cancellation requests) to other workflows, by sequence number."""


async def _send_signal(
    ctx: OperationHost, command: wfcmd.WorkflowCommand, pending: PendingRequests
) -> None:
    env = ctx.env
    seq = env.next_seq("external_signal")
    signal = command.signal_external_workflow_execution
    signal.seq = seq
    target = signal.child_workflow_id or signal.workflow_execution.workflow_id
    request = pending[seq] = ExternalRequest(ctx, target)

    def apply_cancel(_err: asyncio.CancelledError) -> None:
        # A core-only command: it only withdraws a signal not yet sent to the server, so it
        # carries no event groups or metadata.
        env.add_command().cancel_signal_workflow.seq = seq

    await await_temporal_operation(env, request.done, apply_cancel)


async def signal_child_workflow(
    ctx: OperationHost, input: SignalChildWorkflowInput, pending: PendingRequests
) -> None:
    """The terminal outbound step of a child handle's ``signal``."""
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
    await _send_signal(ctx, command, pending)


async def signal_external_workflow(
    ctx: OperationHost, input: SignalExternalWorkflowInput, pending: PendingRequests
) -> None:
    """The terminal outbound step of an external handle's ``signal``."""
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
    await _send_signal(ctx, command, pending)


class ExternalWorkflowHandle(temporalio.workflow.ExternalWorkflowHandle[Any]):
    """Another workflow, by id: signal it or ask it to cancel (the request then waits in
    ``pending_cancels``, the run's cancellation requests by sequence number)."""

    def __init__(
        self, ctx: OperationHost, id: str, run_id: str | None, pending_cancels: PendingRequests
    ) -> None:
        super().__init__()
        self._ctx = ctx
        self._id = id
        self._run_id = run_id
        self._pending_cancels = pending_cancels

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
        request = ExternalRequest(self._ctx, self._id)
        v.seq = seq
        self._pending_cancels[seq] = request
        # A cancel request cannot itself be cancelled: wait plainly.
        await request.done


# Class names are observable (task reprs in logs and error messages): report the SDK's.
ExternalWorkflowHandle.__name__ = ExternalWorkflowHandle.__qualname__ = "_ExternalWorkflowHandle"
