"""The workflow interceptor chain: the Worker's interceptor classes around our root handlers.

Inbound, the chain ends in ``RootInbound`` (run the workflow, call the handlers); outbound it
ends in ``RootOutbound`` (turn calls into commands). Both subclass the SDK's interceptor base
classes, so user interceptors compose with them exactly as with the SDK's own instance. The roots
add no awaits of their own: every extra suspension point would move commands relative to those
of concurrent coroutines.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol

import temporalio.workflow
from temporalio.nexus.system.workflow_service._system_nexus_interceptor import (
    _SystemNexusWorkflowOutboundInterceptorTerminal,
)
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    StartNexusOperationInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from temporay.runtime.engine.operations import (
    activities,
    child_workflows,
    continue_as_new,
    external_workflows,
    nexus,
)
from temporay.runtime.engine.operations.host import OperationHost
from temporay.runtime.engine.operations.pending import PendingOperations


class InterceptedRun(OperationHost, Protocol):
    """What the root interceptors need of their run (the context implements it): the workflow
    object and its handlers inbound; the operations' needs and their pending tables outbound."""

    @property
    def object(self) -> Any: ...

    @property
    def pending(self) -> PendingOperations: ...

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None: ...

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None: ...

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None: ...

    def workflow_get_update_validator(self, name: str | None) -> Callable[..., Any] | None: ...


class RootInbound(WorkflowInboundInterceptor):
    """The innermost inbound interceptor: calls into the workflow object."""

    def __init__(self, ctx: InterceptedRun) -> None:
        # The base class would want a ``next``; the root has none.
        self._ctx = ctx

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self._outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(self._ctx.object, *input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        ctx = self._ctx
        handler = ctx.workflow_get_signal_handler(input.signal) or ctx.workflow_get_signal_handler(
            None
        )
        assert handler
        if inspect.iscoroutinefunction(handler):
            await handler(*input.args)
        else:
            handler(*input.args)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        ctx = self._ctx
        handler = ctx.workflow_get_query_handler(input.query) or ctx.workflow_get_query_handler(
            None
        )
        assert handler
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        # No fallback to the dynamic validator: a named update without a validator has none.
        validator = self._ctx.workflow_get_update_validator(input.update)
        if validator is not None:
            validator(*input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        ctx = self._ctx
        handler = ctx.workflow_get_update_handler(input.update) or ctx.workflow_get_update_handler(
            None
        )
        assert handler
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)


class RootOutbound(_SystemNexusWorkflowOutboundInterceptorTerminal, WorkflowOutboundInterceptor):
    """The innermost outbound interceptor: turns calls into commands."""

    def __init__(self, ctx: InterceptedRun) -> None:
        self._ctx = ctx

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        continue_as_new.continue_as_new(self._ctx, input)

    def info(self) -> temporalio.workflow.Info:
        return self._ctx.info

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        return await external_workflows.signal_child_workflow(
            self._ctx, input, self._ctx.pending.external_signals
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await external_workflows.signal_external_workflow(
            self._ctx, input, self._ctx.pending.external_signals
        )

    def start_activity(self, input: StartActivityInput) -> temporalio.workflow.ActivityHandle[Any]:
        return activities.schedule_activity(self._ctx, input, self._ctx.pending.activities)

    def start_local_activity(
        self, input: StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        return activities.schedule_activity(self._ctx, input, self._ctx.pending.activities)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        return await child_workflows.start_child_workflow(
            self._ctx, input, self._ctx.pending.children
        )

    async def start_nexus_operation(
        self, input: StartNexusOperationInput[Any, Any]
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        return await nexus.start_nexus_operation(self._ctx, input, self._ctx.pending.nexus)

    async def _intercept_system_nexus_operation(
        self, input: StartNexusOperationInput[Any, Any]
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        # The typed system hooks come back here; send them through the whole chain.
        return await self._ctx.outbound.start_system_nexus_operation(input)

    async def start_system_nexus_operation(
        self, input: StartNexusOperationInput[Any, Any]
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        return await nexus.start_nexus_operation(self._ctx, input, self._ctx.pending.nexus)


def build_interceptor_chain(
    ctx: InterceptedRun, interceptor_classes: Sequence[type[WorkflowInboundInterceptor]]
) -> tuple[WorkflowInboundInterceptor, WorkflowOutboundInterceptor]:
    """Wrap the roots in the Worker's classes (first class outermost) and let them ``init``.

    ``ctx`` must be current on the environment's loop while this runs: interceptors may call
    ``workflow.info()`` from ``init``. Returns the outermost inbound and outbound interceptors.
    """
    root = RootInbound(ctx)
    inbound: WorkflowInboundInterceptor = root
    for interceptor_class in reversed(list(interceptor_classes)):
        inbound = interceptor_class(inbound)
    inbound.init(RootOutbound(ctx))
    return inbound, root._outbound
